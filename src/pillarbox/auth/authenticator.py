"""One place where SMTP AUTH, POP3 USER/PASS/APOP/AUTH and IMAP LOGIN/AUTHENTICATE check
credentials: throttle, look the account up, verify (cached), delay failures.

Store failures (StoreUnavailable) propagate: the session answers with a temporary error.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from pillarbox.auth.passwords import DummyHash, Verifier, VerifyCache, argon2_verify, verify
from pillarbox.auth.throttle import LoginThrottle
from pillarbox.store.api import Account, NotFound

# RFC 1939 §7: the APOP digest is 16 octets of MD5, sent as 32 lower-case hex digits.
APOP_DIGEST_HEX_LENGTH: Final = 32


class AuthStore(Protocol):
    """The one store method the authenticator reads."""

    async def get_account(self, address: str) -> Account: ...


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"  # wrong credentials (SMTP 535 5.7.8, IMAP NO [AUTHENTICATIONFAILED])
    REFUSED = "refused"  # throttled: temporary error (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE])


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: Outcome
    account: Account | None = None  # set when outcome is OK
    retry_after: float = 0.0  # for REFUSED: seconds until the lock ends

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def _login_key(login: str) -> str:
    """The name failures and cache entries are counted under: the domain lower-cased."""
    local, at, domain = login.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else login.strip()


def apop_digest(timestamp: str, secret: str) -> str:
    """RFC 1939 §7: hex MD5 of the greeting's timestamp followed by the shared secret."""
    data = (timestamp + secret).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Authenticator:
    """Checks credentials; failed attempts are delayed (awaited here) and throttled."""

    def __init__(
        self,
        store: AuthStore,
        cache: VerifyCache | None,
        throttle: LoginThrottle,
        *,
        verifier: Verifier = argon2_verify,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        dummy: DummyHash | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._throttle = throttle
        self._verifier = verifier
        self._sleep = sleep
        self._dummy = dummy or DummyHash()

    async def prepare(self) -> None:
        """Make the dummy hash now (at startup), so the first unknown login costs no extra."""
        await self._dummy.get()

    async def _account(self, login: str) -> Account | None:
        local, _, domain = login.rpartition("@")
        candidates = [login] if not local else [login, f"{local.lower()}@{domain}"]
        for candidate in dict.fromkeys(candidates):
            try:
                return await self._store.get_account(candidate)
            except NotFound:
                continue
        return None

    async def authenticate(self, login: str, password: str, client_ip: str) -> AuthResult:
        """Check a login name and password (SASL PLAIN/LOGIN, IMAP LOGIN, POP3 USER/PASS)."""
        key = _login_key(login)
        refused = self._throttle.check(client_ip, key)
        if refused is not None:
            return AuthResult(Outcome.REFUSED, retry_after=refused.retry_after)
        account = await self._account(key)
        usable = account is not None and bool(account.password_hash)
        # An unknown user still costs one real argon2 run: timing must not reveal existence.
        stored = (
            account.password_hash if account is not None and usable else await self._dummy.get()
        )
        good = await verify(stored, password, user=key, cache=self._cache, verifier=self._verifier)
        return await self._finish(good and usable, account, key, client_ip)

    async def authenticate_apop(
        self, login: str, timestamp_banner: str, digest_hex: str, client_ip: str
    ) -> AuthResult:
        """RFC 1939 §7 APOP: `digest_hex` must be MD5(timestamp + the account's apop_secret)."""
        key = _login_key(login)
        refused = self._throttle.check(client_ip, key)
        if refused is not None:
            return AuthResult(Outcome.REFUSED, retry_after=refused.retry_after)
        account = await self._account(key)
        secret = account.apop_secret if account is not None else None
        # No secret (or no account): compare against a random one, so the work is the same.
        expected = apop_digest(timestamp_banner, secret or secrets.token_hex(16))
        given = digest_hex.strip().lower()
        good = len(given) == APOP_DIGEST_HEX_LENGTH and hmac.compare_digest(
            expected.encode("ascii"), given.encode("ascii", "replace")
        )
        return await self._finish(good and secret is not None, account, key, client_ip)

    async def _finish(
        self, good: bool, account: Account | None, key: str, client_ip: str
    ) -> AuthResult:
        if good and account is not None:
            self._throttle.record_success(client_ip, key)
            return AuthResult(Outcome.OK, account=account)
        await self._sleep(self._throttle.record_failure(client_ip, key))
        return AuthResult(Outcome.FAILED)
