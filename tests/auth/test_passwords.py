"""argon2 hashing, verification off the loop, and the success-only verification cache."""

from __future__ import annotations

import asyncio
import threading

from argon2 import profiles

from pillarbox.auth import passwords
from pillarbox.auth.passwords import VerifyCache

CHEAP = profiles.CHEAPEST


class CountingVerifier:
    """Stands in for argon2: records calls and the thread they ran on."""

    def __init__(self, result: bool = True) -> None:
        self.result = result
        self.calls = 0
        self.threads: list[int] = []

    def __call__(self, stored_hash: str, password: str) -> bool:
        self.calls += 1
        self.threads.append(threading.get_ident())
        return self.result


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hash_and_verify_roundtrip() -> None:
    stored = passwords.hash_password("correct horse", CHEAP)
    assert stored.startswith("$argon2id$")
    assert passwords.argon2_verify(stored, "correct horse")
    assert not passwords.argon2_verify(stored, "Correct horse")


def test_default_parameters_are_rfc9106_argon2id() -> None:
    stored = passwords.hash_password("pw")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.argon2_verify(stored, "pw")
    assert not passwords.needs_rehash(stored)
    assert passwords.needs_rehash(passwords.hash_password("pw", CHEAP))


def test_verify_rejects_malformed_hash_and_huge_password() -> None:
    assert not passwords.argon2_verify("not a hash", "pw")
    stored = passwords.hash_password("x" * 2000, CHEAP)
    assert not passwords.argon2_verify(stored, "x" * 2000)


def test_async_verify_runs_off_the_event_loop_thread() -> None:
    verifier = CountingVerifier()

    async def main() -> int:
        await passwords.verify("h", "pw", verifier=verifier)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert verifier.calls == 1
    assert verifier.threads[0] != loop_thread


def test_cache_hit_skips_argon2() -> None:
    cache = VerifyCache()
    verifier = CountingVerifier()

    async def main() -> list[bool]:
        return [
            await passwords.verify("h", "pw", user="jane", cache=cache, verifier=verifier)
            for _ in range(3)
        ]

    assert asyncio.run(main()) == [True, True, True]
    assert verifier.calls == 1


def test_failures_are_never_cached() -> None:
    cache = VerifyCache()
    verifier = CountingVerifier(result=False)

    async def main() -> list[bool]:
        return [
            await passwords.verify("h", "bad", user="jane", cache=cache, verifier=verifier)
            for _ in range(2)
        ]

    assert asyncio.run(main()) == [False, False]
    assert verifier.calls == 2
    assert len(cache) == 0


def test_cache_keys_on_user_password_and_hash() -> None:
    cache = VerifyCache()
    cache.remember("jane", "pw", "hash1")
    assert cache.hit("jane", "pw", "hash1")
    assert not cache.hit("jane", "pw2", "hash1")
    assert not cache.hit("john", "pw", "hash1")
    assert not cache.hit("jane", "pw", "hash2")  # password changed: stored hash differs
    # Length prefixes: moving bytes between fields gives another key.
    assert not cache.hit("janep", "w", "hash1")


def test_cache_entries_expire() -> None:
    clock = FakeClock()
    cache = VerifyCache(ttl=60, clock=clock)
    cache.remember("jane", "pw", "h")
    clock.now += 59
    assert cache.hit("jane", "pw", "h")
    clock.now += 2
    assert not cache.hit("jane", "pw", "h")
    assert len(cache) == 0


def test_cache_is_bounded() -> None:
    cache = VerifyCache(max_entries=3)
    for i in range(5):
        cache.remember(f"user{i}", "pw", "h")
    assert len(cache) == 3
    assert not cache.hit("user0", "pw", "h")
    assert cache.hit("user4", "pw", "h")


def test_cache_does_not_hold_the_password() -> None:
    cache = VerifyCache()
    cache.remember("jane", "hunter2", "h")
    assert all(b"hunter2" not in key for key in cache._expiry)


def test_dummy_hash_is_a_real_hash_made_once() -> None:
    dummy = passwords.DummyHash(CHEAP)

    async def main() -> tuple[str, str]:
        return await dummy.get(), await dummy.get()

    first, second = asyncio.run(main())
    assert first == second
    assert first.startswith("$argon2id$")
