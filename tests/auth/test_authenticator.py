"""The authenticator: throttle, lookup, cached verify, dummy verify for unknown users, APOP."""

from __future__ import annotations

import asyncio

import pytest

from pillarbox.auth.authenticator import Authenticator, AuthResult, Outcome, apop_digest
from pillarbox.auth.passwords import VerifyCache
from pillarbox.auth.throttle import LoginThrottle, ThrottlePolicy

from ..directory.fakes import FakeStore

POLICY = ThrottlePolicy(failure_delay=1.5, max_failures_per_ip=3, max_failures_per_account=10)
FAKE_HASH = "$argon2id$fake$jane"


class Recorder:
    """Plays argon2 and asyncio.sleep: records what they were asked."""

    def __init__(self) -> None:
        self.verified: list[str] = []
        self.slept: list[float] = []

    def verifier(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        return stored_hash == FAKE_HASH and password == "right"

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class StubDummy:
    async def get(self) -> str:
        return "$argon2id$dummy"


@pytest.fixture
def store() -> FakeStore:
    store = FakeStore(["example.org"])
    store.user("jane@example.org", "Jane", password_hash=FAKE_HASH, apop_secret="tanstaaf")
    store.user("locked@example.org", "No password", password_hash="")
    return store


def make(store: FakeStore) -> tuple[Authenticator, Recorder]:
    recorder = Recorder()
    auth = Authenticator(
        store,
        VerifyCache(),
        LoginThrottle(POLICY),
        verifier=recorder.verifier,
        sleep=recorder.sleep,
        dummy=StubDummy(),  # type: ignore[arg-type]
    )
    return auth, recorder


def login(auth: Authenticator, user: str, password: str, ip: str = "192.0.2.1") -> AuthResult:
    return asyncio.run(auth.authenticate(user, password, ip))


def test_good_login_returns_the_account_without_delay(store: FakeStore) -> None:
    auth, recorder = make(store)
    result = login(auth, "jane@EXAMPLE.org", "right")
    assert result.ok
    assert result.account == store.accounts["jane@example.org"]
    assert recorder.slept == []


def test_second_login_hits_the_cache(store: FakeStore) -> None:
    auth, recorder = make(store)
    assert login(auth, "jane@example.org", "right").ok
    assert login(auth, "jane@example.org", "right").ok
    assert recorder.verified == [FAKE_HASH]


def test_wrong_password_fails_after_the_delay(store: FakeStore) -> None:
    auth, recorder = make(store)
    result = login(auth, "jane@example.org", "wrong")
    assert result == AuthResult(Outcome.FAILED)
    assert recorder.slept == [1.5]
    assert login(auth, "jane@example.org", "wrong").outcome is Outcome.FAILED
    assert recorder.verified == [FAKE_HASH, FAKE_HASH]  # failures are not cached


def test_unknown_user_still_runs_a_verify(store: FakeStore) -> None:
    auth, recorder = make(store)
    assert login(auth, "nobody@example.org", "right").outcome is Outcome.FAILED
    assert recorder.verified == ["$argon2id$dummy"]
    assert recorder.slept == [1.5]


def test_account_without_password_cannot_log_in(store: FakeStore) -> None:
    auth, _ = make(store)
    assert not login(auth, "locked@example.org", "").ok


def test_throttled_client_is_refused_without_verifying(store: FakeStore) -> None:
    auth, recorder = make(store)
    for _ in range(3):
        login(auth, "jane@example.org", "wrong")
    result = login(auth, "jane@example.org", "right")
    assert result.outcome is Outcome.REFUSED
    assert result.retry_after > 0
    assert len(recorder.verified) == 3
    assert login(auth, "jane@example.org", "right", ip="198.51.100.7").ok


def test_apop_rfc1939_example_digest() -> None:
    assert (
        apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
        == "c4c9334bac560ecc979e58001b3e22fb"
    )


def test_apop_login(store: FakeStore) -> None:
    auth, recorder = make(store)
    banner = "<1896.697170952@dbc.mtview.ca.us>"
    good = asyncio.run(
        auth.authenticate_apop(
            "jane@example.org", banner, "C4C9334BAC560ECC979E58001B3E22FB", "192.0.2.1"
        )
    )
    assert good.ok
    bad = asyncio.run(auth.authenticate_apop("jane@example.org", banner, "0" * 32, "192.0.2.1"))
    assert bad.outcome is Outcome.FAILED
    assert recorder.slept == [1.5]


def test_apop_without_secret_fails(store: FakeStore) -> None:
    auth, _ = make(store)
    banner = "<1.2@x>"
    for user in ("locked@example.org", "nobody@example.org"):
        digest = apop_digest(banner, "")
        result = asyncio.run(auth.authenticate_apop(user, banner, digest, "192.0.2.1"))
        assert result.outcome is Outcome.FAILED


def test_real_argon2_end_to_end(store: FakeStore) -> None:
    from argon2 import profiles

    from pillarbox.auth.passwords import DummyHash, hash_password

    store.user("real@example.org", password_hash=hash_password("pw", profiles.CHEAPEST))
    auth = Authenticator(
        store,
        VerifyCache(),
        LoginThrottle(POLICY),
        sleep=Recorder().sleep,
        dummy=DummyHash(profiles.CHEAPEST),
    )

    async def main() -> tuple[bool, bool, bool]:
        await auth.prepare()
        good = await auth.authenticate("real@example.org", "pw", "192.0.2.9")
        bad = await auth.authenticate("real@example.org", "pW", "192.0.2.9")
        unknown = await auth.authenticate("ghost@example.org", "pw", "192.0.2.9")
        return good.ok, bad.ok, unknown.ok

    assert asyncio.run(main()) == (True, False, False)
