"""Password hashing with argon2id, verification off the event loop, and a short-lived cache.

The cache works like Dovecot's auth cache: a successful verification is remembered for a
minute under a keyed hash (HMAC with a per-process random key) of user, password and
stored hash, so mail clients that reconnect every minute skip the argon2 cost. Only
successes are cached, so a wrong password always pays the full price; changing the
password changes the stored hash and so misses the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Final

import argon2
from argon2 import profiles
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106 §4 second recommended option (argon2id, t=3, m=64 MiB, p=4): about 50-200 ms.
DEFAULT_PARAMETERS: Final = profiles.RFC_9106_LOW_MEMORY
# How long a successful verification is trusted without running argon2 again.
CACHE_TTL_SECONDS: Final = 60.0
# Bounds the cache's memory: one entry is ~100 bytes, so this is a few MB at most.
MAX_CACHE_ENTRIES: Final = 20_000
# A password longer than this is refused before hashing (bounds the work per attempt).
MAX_PASSWORD_OCTETS: Final = 1024

Verifier = Callable[[str, str], bool]
"""A blocking check: (stored_hash, password) -> matches. Injected by tests."""

_DEFAULT_HASHER: Final = argon2.PasswordHasher.from_parameters(DEFAULT_PARAMETERS)


def _hasher(params: argon2.Parameters) -> argon2.PasswordHasher:
    if params == DEFAULT_PARAMETERS:
        return _DEFAULT_HASHER
    return argon2.PasswordHasher.from_parameters(params)  # cheap: holds only the numbers


def hash_password(password: str, params: argon2.Parameters = DEFAULT_PARAMETERS) -> str:
    """The argon2id encoded hash of `password` (blocking: ~50-200 ms with the defaults)."""
    return _hasher(params).hash(password)


def argon2_verify(stored_hash: str, password: str) -> bool:
    """Blocking argon2 check; False for a mismatch or a malformed stored hash."""
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_OCTETS:
        return False
    try:
        # The parameters come from the encoded hash, so any hasher verifies any hash.
        return _DEFAULT_HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, params: argon2.Parameters = DEFAULT_PARAMETERS) -> bool:
    """True when the hash was made with other parameters (rehash after a good login)."""
    try:
        return _hasher(params).check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


class VerifyCache:
    """Recently verified (user, password, stored hash) triples, kept as keyed hashes."""

    def __init__(
        self,
        ttl: float = CACHE_TTL_SECONDS,
        max_entries: int = MAX_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)  # per process: entries mean nothing elsewhere
        self._expiry: dict[bytes, float] = {}  # insertion order = expiry order

    def __len__(self) -> int:
        return len(self._expiry)

    def _digest(self, user: str, password: str, stored_hash: str) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user, password, stored_hash):
            data = part.encode("utf-8", "surrogatepass")
            mac.update(len(data).to_bytes(4, "big"))  # length prefix: no field ambiguity
            mac.update(data)
        return mac.digest()

    def hit(self, user: str, password: str, stored_hash: str) -> bool:
        """True if this exact triple was verified within the TTL."""
        key = self._digest(user, password, stored_hash)
        expiry = self._expiry.get(key)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[key]
            return False
        return True

    def remember(self, user: str, password: str, stored_hash: str) -> None:
        """Record a successful verification (never call this for a failure)."""
        now = self._clock()
        key = self._digest(user, password, stored_hash)
        self._expiry.pop(key, None)
        self._expiry[key] = now + self._ttl
        self._prune(now)

    def forget_all(self) -> None:
        self._expiry.clear()

    def _prune(self, now: float) -> None:
        # Entries are in expiry order (fixed TTL, re-inserted on refresh).
        while self._expiry:
            oldest, expiry = next(iter(self._expiry.items()))
            if expiry > now and len(self._expiry) <= self._max_entries:
                break
            del self._expiry[oldest]


async def verify(
    stored_hash: str,
    password: str,
    *,
    user: str = "",
    cache: VerifyCache | None = None,
    verifier: Verifier = argon2_verify,
) -> bool:
    """Check `password` against `stored_hash` off the event loop, using `cache` if given."""
    if cache is not None and cache.hit(user, password, stored_hash):
        return True
    ok = await asyncio.to_thread(verifier, stored_hash, password)
    if ok and cache is not None:
        cache.remember(user, password, stored_hash)
    return ok


class DummyHash:
    """A hash of a random password, made once, so unknown users cost a real verify."""

    def __init__(self, params: argon2.Parameters = DEFAULT_PARAMETERS) -> None:
        self._params = params
        self._hash: str | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            if self._hash is None:
                self._hash = await asyncio.to_thread(
                    hash_password, secrets.token_urlsafe(24), self._params
                )
            return self._hash
