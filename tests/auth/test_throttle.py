"""Login throttling with a fake clock: delays, sliding windows, lockouts, memory."""

from __future__ import annotations

import pytest

import pillarbox.auth.throttle as throttle_module
from pillarbox.auth.throttle import LoginThrottle, Refused, ThrottlePolicy, client_key

POLICY = ThrottlePolicy(
    failure_delay=1.5, window=60, max_failures_per_ip=3, max_failures_per_account=5, lockout=300
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[LoginThrottle, FakeClock]:
    clock = FakeClock()
    return LoginThrottle(POLICY, clock), clock


def test_failure_returns_the_configured_delay() -> None:
    throttle, _ = make()
    assert throttle.record_failure("192.0.2.1", "jane@example.org") == 1.5


def test_address_locked_after_limit_then_released() -> None:
    throttle, clock = make()
    for user in ("a", "b", "c"):
        assert throttle.check("192.0.2.1", user) is None
        throttle.record_failure("192.0.2.1", user)
    refused = throttle.check("192.0.2.1", "d")
    assert refused == Refused(300, "address")
    assert throttle.check("192.0.2.2", "d") is None  # another address is not affected
    clock.now += 299
    assert isinstance(throttle.check("192.0.2.1", "d"), Refused)
    clock.now += 1
    assert throttle.check("192.0.2.1", "d") is None


def test_window_slides() -> None:
    throttle, clock = make()
    throttle.record_failure("192.0.2.1", "a")
    throttle.record_failure("192.0.2.1", "a")
    clock.now += 61  # the first two fall out of the window
    throttle.record_failure("192.0.2.1", "a")
    throttle.record_failure("192.0.2.1", "a")
    assert throttle.check("192.0.2.1", "a") is None
    throttle.record_failure("192.0.2.1", "a")
    assert throttle.check("192.0.2.1", "a") == Refused(300, "address")


def test_account_locked_across_many_addresses() -> None:
    throttle, _ = make()
    for i in range(5):
        throttle.record_failure(f"198.51.100.{i}", "Jane@example.org")
    assert throttle.check("203.0.113.9", "jane@example.org") == Refused(300, "account")
    assert throttle.check("203.0.113.9", "john@example.org") is None


def test_address_that_logged_in_before_passes_an_account_lock() -> None:
    throttle, _ = make()
    throttle.record_success("192.0.2.50", "jane@example.org")
    for i in range(5):
        throttle.record_failure(f"198.51.100.{i}", "jane@example.org")
    assert throttle.check("192.0.2.50", "jane@example.org") is None
    assert isinstance(throttle.check("203.0.113.1", "jane@example.org"), Refused)


def test_success_clears_account_failures_but_not_address_failures() -> None:
    throttle, _ = make()
    throttle.record_failure("192.0.2.1", "jane")
    throttle.record_failure("192.0.2.1", "jane")
    throttle.record_success("192.0.2.1", "jane")
    throttle.record_failure("192.0.2.1", "john")
    assert isinstance(throttle.check("192.0.2.1", "anyone"), Refused)


def test_ipv6_counted_per_64() -> None:
    throttle, _ = make()
    for i in range(3):
        throttle.record_failure(f"2001:db8:1:2::{i + 1}", f"u{i}")
    assert isinstance(throttle.check("2001:db8:1:2:ffff::9", "x"), Refused)
    assert throttle.check("2001:db8:1:3::1", "x") is None


def test_client_key_forms() -> None:
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("2001:db8::1") == "2001:db8::/64"
    assert client_key("unix-socket") == "unix-socket"


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_module, "MAX_TRACKED_KEYS", 10)
    throttle, clock = make()
    for i in range(50):
        clock.now += 1
        throttle.record_failure(f"10.0.0.{i}", f"user{i}")
    assert len(throttle._by_ip) <= 10
    assert len(throttle._by_account) <= 10
