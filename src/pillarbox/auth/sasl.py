"""SASL mechanisms as tiny pure exchanges, shared by SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE.

An exchange takes decoded client responses and answers with the next challenge, the
credentials it gathered, or a failure. Base64 belongs to the protocol layer; the helpers
`decode_b64_response` and `encode_challenge` below do it the same way for all three.

    exchange = start("PLAIN", initial)   # initial: decoded initial response, or None
    step = exchange.step(None)           # begin: Challenge, Credentials or SaslFailure
    while isinstance(step, Challenge):
        ...send encode_challenge(step.data), read a line...
        step = exchange.step(decode_b64_response(line))   # None there means "*" cancel
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final, Protocol

# RFC 4616 §2: servers must accept at least 255 octets per field; we refuse anything
# much longer so that a hostile client cannot make us hash megabytes.
MAX_FIELD_OCTETS: Final = 1024
# PLAIN takes one client message, LOGIN two; anything beyond that is a broken client.
MAX_STEPS: Final = 4

MECHANISMS: Final = ("PLAIN", "LOGIN")

# draft-murchison-sasl-login-00 §2: the two server challenges (sent base64-encoded).
LOGIN_USERNAME_CHALLENGE: Final = b"Username:"
LOGIN_PASSWORD_CHALLENGE: Final = b"Password:"

# RFC 4954 §4 / RFC 5034 §4 / RFC 3501 §6.2.2: a line holding a single "*" cancels.
CANCEL_LINE: Final = b"*"
# RFC 4954 §4 / RFC 4959 §3 / RFC 5034 §4: "=" is a response that is present but empty.
EMPTY_RESPONSE: Final = b"="
# RFC 4954 §4: only the base64 alphabet, padding only at the end, whole quanta.
_BASE64_RE: Final = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class InvalidBase64Error(ValueError):
    """A client response that is not valid base64 (SMTP 501 5.5.2, IMAP BAD, POP3 -ERR)."""


class UnsupportedMechanismError(ValueError):
    """The client asked for a mechanism not in MECHANISMS (SMTP 504 5.5.4, IMAP NO)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send `data` (base64-encoded by the protocol) and feed the reply to `step`."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Credentials:
    """The exchange finished: check `password` for `authcid` (acting as `authzid`)."""

    authcid: str
    password: str
    authzid: str = ""  # "" when the client asked to act as itself

    def __repr__(self) -> str:
        # Secrets never reach the logs, not even through a repr.
        return f"Credentials(authcid={self.authcid!r}, password=<hidden>, authzid={self.authzid!r})"


@dataclass(frozen=True, slots=True)
class SaslFailure:
    """The exchange failed; `reason` is for the log, not for the client."""

    reason: str


SaslStep = Challenge | Credentials | SaslFailure

CANCELLED: Final = SaslFailure("authentication cancelled by the client")


class SaslExchange(Protocol):
    """One authentication exchange. Call `step(None)` first, then once per client line."""

    @property
    def mechanism(self) -> str: ...

    def step(self, response: bytes | None) -> SaslStep: ...


def decode_b64_response(line: bytes) -> bytes | None:
    """Decode one client response line (CRLF optional): None for the "*" cancel line.

    "=" is an empty response (RFC 4954 §4, RFC 4959 §3); an empty line is one too.
    Raises InvalidBase64Error for anything outside the base64 grammar of RFC 4954 §4.
    """
    data = line.rstrip(b"\r\n")
    if data == CANCEL_LINE:
        return None
    if data == EMPTY_RESPONSE:
        return b""
    if _BASE64_RE.fullmatch(data) is None:
        raise InvalidBase64Error("response is not base64")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the regex admits only valid input
        raise InvalidBase64Error("response is not base64") from exc


def encode_challenge(challenge: bytes) -> bytes:
    """The base64 text of a challenge, without line end; b"" for an empty challenge.

    The protocol prefixes it: "334 " (RFC 4954 §4), "+ " (RFC 5034 §4, RFC 3501 §7.5).
    """
    return base64.b64encode(challenge)


def _field(raw: bytes, name: str) -> str | SaslFailure:
    """Decode one identity or password field: UTF-8, bounded, no NUL (RFC 4616 §2)."""
    if len(raw) > MAX_FIELD_OCTETS:
        return SaslFailure(f"{name} longer than {MAX_FIELD_OCTETS} octets")
    if b"\0" in raw:
        return SaslFailure(f"{name} contains NUL")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return SaslFailure(f"{name} is not UTF-8")


def parse_plain(message: bytes) -> Credentials | SaslFailure:
    """RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        return SaslFailure("PLAIN message needs exactly two NUL separators")
    fields: list[str] = []
    for raw, name in zip(parts, ("authzid", "authcid", "password"), strict=True):
        value = _field(raw, name)
        if isinstance(value, SaslFailure):
            return value
        fields.append(value)
    authzid, authcid, password = fields
    if not authcid or not password:  # RFC 4616 §2: authcid and passwd are 1*SAFE
        return SaslFailure("PLAIN needs a non-empty authcid and password")
    # RFC 4616 §2: acting as another identity is not permitted here (no proxy rights).
    if authzid and authzid != authcid:
        return SaslFailure("authorization identity differs from authentication identity")
    return Credentials(authcid=authcid, password=password, authzid=authzid)


class _Exchange:
    """Shared bookkeeping: step counting, cancel handling, finished state."""

    mechanism = ""

    def __init__(self, initial: bytes | None) -> None:
        self._initial = initial
        self._steps = 0
        self._done = False

    def step(self, response: bytes | None) -> SaslStep:
        if self._done:
            return SaslFailure("exchange already finished")
        first = self._steps == 0
        self._steps += 1
        if self._steps > MAX_STEPS:
            return self._finish(SaslFailure("too many steps"))
        if not first and response is None:
            return self._finish(CANCELLED)
        result = self._begin() if first else self._next(response or b"")
        if not isinstance(result, Challenge):
            self._done = True
        return result

    def _finish(self, result: SaslFailure) -> SaslFailure:
        self._done = True
        return result

    def _begin(self) -> SaslStep:
        raise NotImplementedError

    def _next(self, response: bytes) -> SaslStep:
        raise NotImplementedError


class PlainExchange(_Exchange):
    """RFC 4616: the client sends everything in one message (often the initial response)."""

    mechanism = "PLAIN"

    def _begin(self) -> SaslStep:
        if self._initial is None:
            return Challenge(b"")  # RFC 4616 §2: the server's first challenge is empty
        return parse_plain(self._initial)

    def _next(self, response: bytes) -> SaslStep:
        return parse_plain(response)


class LoginExchange(_Exchange):
    """draft-murchison-sasl-login: "Username:" then "Password:" challenges."""

    mechanism = "LOGIN"

    def __init__(self, initial: bytes | None) -> None:
        super().__init__(initial)
        self._username: str | None = None

    def _begin(self) -> SaslStep:
        if self._initial is None:
            return Challenge(LOGIN_USERNAME_CHALLENGE)
        # Common practice (Postfix, Dovecot): an initial response is the user name.
        return self._take_username(self._initial)

    def _next(self, response: bytes) -> SaslStep:
        if self._username is None:
            return self._take_username(response)
        password = _field(response, "password")
        if isinstance(password, SaslFailure):
            return password
        if not password:
            return SaslFailure("empty password")
        return Credentials(authcid=self._username, password=password)

    def _take_username(self, raw: bytes) -> SaslStep:
        username = _field(raw, "username")
        if isinstance(username, SaslFailure):
            return username
        if not username:
            return SaslFailure("empty username")
        self._username = username
        return Challenge(LOGIN_PASSWORD_CHALLENGE)


_FACTORIES: Final[dict[str, type[_Exchange]]] = {
    "PLAIN": PlainExchange,
    "LOGIN": LoginExchange,
}


def start(mechanism: str, initial: bytes | None = None) -> SaslExchange:
    """Begin an exchange; `initial` is the decoded initial response (RFC 4954, RFC 4959).

    Mechanism names match case-insensitively. Raises UnsupportedMechanismError.
    """
    factory = _FACTORIES.get(mechanism.upper())
    if factory is None:
        raise UnsupportedMechanismError(mechanism)
    return factory(initial)
