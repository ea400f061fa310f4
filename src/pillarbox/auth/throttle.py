"""Login throttling: failures are delayed, counted per client address and per account in
sliding windows, and over the limit further attempts are refused for a while.

Pure: no I/O, an injectable clock. The caller sleeps for the returned delay before it
answers a failure, and answers a refusal with a temporary error (SMTP 454 4.7.0,
IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) without checking the password at all.

A per-account limit lets an attacker lock a user out; to blunt that, an address that
logged in to the account successfully in the last day is exempt from the account's lock
(not from its own per-address lock).
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# IPv6 clients usually hold a whole /64, so failures are counted per /64.
IPV6_PREFIX: Final = 64
# Bounds memory under a spray of addresses: beyond this many tracked keys, the idle ones go.
MAX_TRACKED_KEYS: Final = 100_000
# How long a successful (address, account) pair is trusted past an account lock.
TRUSTED_PAIR_SECONDS: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    failure_delay: float = 1.5  # seconds to wait before answering a failed login
    window: float = 600.0  # sliding window in which failures are counted
    max_failures_per_ip: int = 10  # failures from one address (or /64) in the window
    max_failures_per_account: int = 30  # failures for one account in the window
    lockout: float = 900.0  # how long a key over its limit is refused


@dataclass(frozen=True, slots=True)
class Refused:
    """Too many failures: answer with a temporary error; retry after `retry_after` s."""

    retry_after: float
    reason: str  # "address" or "account", for the log


@dataclass(slots=True)
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


def client_key(client_ip: str) -> str:
    """The counting key of a client address: the address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class LoginThrottle:
    """Counts failed logins and decides when to refuse. Not thread-safe: one event loop."""

    def __init__(
        self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._by_ip: dict[str, _Counter] = {}
        self._by_account: dict[str, _Counter] = {}
        self._trusted: dict[tuple[str, str], float] = {}  # (ip key, account) -> until

    def check(self, client_ip: str, account: str) -> Refused | None:
        """Before verifying a password: None to go ahead, or Refused."""
        now = self._clock()
        ip = client_key(client_ip)
        ip_counter = self._by_ip.get(ip)
        if ip_counter is not None and ip_counter.locked_until > now:
            return Refused(ip_counter.locked_until - now, "address")
        account_counter = self._by_account.get(account.lower())
        trusted = self._trusted.get((ip, account.lower()), 0.0) > now
        if account_counter is not None and account_counter.locked_until > now and not trusted:
            return Refused(account_counter.locked_until - now, "account")
        return None

    def record_failure(self, client_ip: str, account: str) -> float:
        """Count a failed login; returns the seconds to wait before answering it."""
        now = self._clock()
        self._count(self._by_ip, client_key(client_ip), now, self.policy.max_failures_per_ip)
        self._count(self._by_account, account.lower(), now, self.policy.max_failures_per_account)
        return self.policy.failure_delay

    def record_success(self, client_ip: str, account: str) -> None:
        """A good login: the account's failures are forgotten and the pair trusted."""
        now = self._clock()
        self._by_account.pop(account.lower(), None)
        # The address keeps its failures: one valid account must not reset a guesser.
        self._trusted[(client_key(client_ip), account.lower())] = now + TRUSTED_PAIR_SECONDS
        if len(self._trusted) > MAX_TRACKED_KEYS:
            self._trusted = {k: v for k, v in self._trusted.items() if v > now}

    def _count(self, table: dict[str, _Counter], key: str, now: float, limit: int) -> None:
        counter = table.get(key)
        if counter is None:
            if len(table) >= MAX_TRACKED_KEYS:
                self._prune(table, now)
            counter = table[key] = _Counter()
        failures = counter.failures
        while failures and failures[0] <= now - self.policy.window:
            failures.popleft()
        failures.append(now)
        if len(failures) >= limit:
            counter.locked_until = now + self.policy.lockout
            failures.clear()  # after the lock, the count starts again

    def _prune(self, table: dict[str, _Counter], now: float) -> None:
        horizon = now - self.policy.window
        idle = [
            key
            for key, counter in table.items()
            if counter.locked_until <= now
            and (not counter.failures or counter.failures[-1] <= horizon)
        ]
        for key in idle:
            del table[key]
        if len(table) >= MAX_TRACKED_KEYS:  # still full: drop the oldest half
            for key in list(table)[: len(table) // 2]:
                del table[key]
