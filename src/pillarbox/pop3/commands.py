"""POP3 command grammar: one parser per command, the command table, and the commands each
state allows (RFC 1939 §3-§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4, RFC 6856 §2).

A parser turns the argument bytes of one command line into an event, or raises `CommandError`
with the -ERR the engine then hands out as `Rejected`.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox.pop3 import replies
from pillarbox.pop3.events import (
    Apop,
    Auth,
    AuthResponse,
    Capa,
    Dele,
    Event,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)
from pillarbox.pop3.replies import Err
from pillarbox.pop3.states import (
    Authorization,
    Closed,
    SaslExchange,
    State,
    TlsPending,
    Transaction,
    Update,
    UserGiven,
)

# RFC 1939 §3: "arguments may be up to 40 characters long". Applied to numbers and
# mechanism names; user names and passwords may use the whole 255-octet line (RFC 2449
# §4 raised the line limit, and real addresses and passphrases exceed 40 characters).
MAX_ARGUMENT: Final = 40
# RFC 4422 §3.1: a SASL mechanism name is 1 to 20 characters.
MAX_MECHANISM: Final = 20
_MECHANISM: Final = re.compile(rb"[A-Z0-9_-]{1,%d}" % MAX_MECHANISM)
# RFC 1939 §7: the APOP digest is 32 hex digits (lowercase in the RFC; case tolerated).
_DIGEST: Final = re.compile(rb"[0-9a-fA-F]{32}")
# RFC 5034 §4: only the base64 alphabet, padding only at the end.
_BASE64: Final = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# RFC 2595 §2.3 / RFC 8314 §3: mechanisms that reveal the password to an eavesdropper.
PLAINTEXT_MECHANISMS: Final = frozenset({"PLAIN", "LOGIN"})
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

TOO_MANY_ARGUMENTS: Final = Err("Too many arguments")
INVALID_BASE64: Final = Err("Invalid base64 data")
INVALID_UTF8: Final = Err("Invalid UTF-8 in argument")


class CommandError(Exception):
    """A command line the engine refuses; `response` is the -ERR to send."""

    def __init__(self, response: Err) -> None:
        super().__init__(response.text)
        self.response = response


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a parser may consult about the connection."""

    state: State
    config_mechanisms: tuple[str, ...]
    plaintext_allowed: bool
    tls_available: bool
    tls_active: bool
    apop_offered: bool


Parser = Callable[[ParseContext, bytes], Event]


def _arguments(raw: bytes, verb: str, least: int, most: int) -> list[bytes]:
    arguments = raw.split()
    if len(arguments) < least:
        raise CommandError(Err(f"{verb} needs more arguments"))
    if len(arguments) > most:
        raise CommandError(TOO_MANY_ARGUMENTS)
    return arguments


def _number(raw: bytes, what: str) -> int:
    # bytes.isdigit: ASCII digits only, False for b"" (a number is 1 to 40 of them).
    if not (raw.isdigit() and len(raw) <= MAX_ARGUMENT):
        raise CommandError(Err(f"Invalid {what}"))
    return int(raw)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")  # RFC 6856 §2 "UTF8 USER": UTF-8 names and passwords
    except UnicodeDecodeError:
        raise CommandError(INVALID_UTF8) from None


def decode_base64(raw: bytes) -> bytes:
    """Strict RFC 5034 §4 base64: any other character, or misplaced padding, is refused."""
    if not _BASE64.fullmatch(raw):
        raise CommandError(INVALID_BASE64)
    try:
        return binascii.a2b_base64(raw)
    except binascii.Error:  # pragma: no cover - the regex admits only valid input
        raise CommandError(INVALID_BASE64) from None


def _parse_user(context: ParseContext, raw: bytes) -> Event:
    if not context.plaintext_allowed:
        raise CommandError(replies.PLAINTEXT_DISALLOWED)  # RFC 2595 §2.3 / RFC 8314 §3
    (name,) = _arguments(raw, "USER", 1, 1)
    text = _text(name)
    if _CONTROL.search(text):
        raise CommandError(Err("Invalid user name"))
    return User(text)


def _parse_pass(context: ParseContext, raw: bytes) -> Event:
    assert isinstance(context.state, UserGiven)  # ALLOWED admits PASS only there
    # RFC 1939 §7: PASS has one argument, so spaces belong to the password.
    if not raw:
        raise CommandError(Err("PASS needs more arguments"))
    return Pass(context.state.name, _text(raw))


def _parse_apop(context: ParseContext, raw: bytes) -> Event:
    if not context.apop_offered:
        raise CommandError(Err("APOP is not available"))
    name, digest = _arguments(raw, "APOP", 2, 2)
    if not _DIGEST.fullmatch(digest):
        raise CommandError(Err("Invalid APOP digest"))
    return Apop(_text(name), digest.decode("ascii").lower())


def _parse_auth(context: ParseContext, raw: bytes) -> Event:
    arguments = _arguments(raw, "AUTH", 1, 2)
    mechanism = arguments[0].upper()
    if not _MECHANISM.fullmatch(mechanism):
        raise CommandError(Err("Invalid mechanism name"))
    name = mechanism.decode("ascii")
    if name not in context.config_mechanisms:
        raise CommandError(Err("Unsupported authentication mechanism"))  # RFC 5034 §4
    if name in PLAINTEXT_MECHANISMS and not context.plaintext_allowed:
        raise CommandError(replies.PLAINTEXT_DISALLOWED)
    if len(arguments) == 1:
        return Auth(name)
    # RFC 5034 §4: "=" is a present but empty initial response.
    initial = b"" if arguments[1] == b"=" else decode_base64(arguments[1])
    return Auth(name, initial)


def parse_sasl_response(line: bytes) -> Event:
    """RFC 5034 §4: a client response line inside AUTH; "*" cancels."""
    if line == b"*":
        raise CommandError(replies.AUTH_CANCELLED)
    return AuthResponse(decode_base64(line))


def _parse_stls(context: ParseContext, raw: bytes) -> Event:
    _arguments(raw, "STLS", 0, 0)
    if context.tls_active:
        raise CommandError(Err("Command not permitted when TLS active"))  # RFC 2595 §4
    if not context.tls_available:
        raise CommandError(Err("STLS is not available"))
    return Stls()


def _parse_quit(context: ParseContext, raw: bytes) -> Event:
    _arguments(raw, "QUIT", 0, 0)
    return Quit(update=isinstance(context.state, Transaction))  # RFC 1939 §6


def _bare(verb: str, event: Event) -> Parser:
    """A parser for a command without arguments that always yields `event`."""

    def parse(context: ParseContext, raw: bytes) -> Event:
        del context
        _arguments(raw, verb, 0, 0)
        return event

    return parse


def _parse_list(context: ParseContext, raw: bytes) -> Event:
    arguments = _arguments(raw, "LIST", 0, 1)
    return List(_number(arguments[0], "message number") if arguments else None)


def _parse_uidl(context: ParseContext, raw: bytes) -> Event:
    arguments = _arguments(raw, "UIDL", 0, 1)
    return Uidl(_number(arguments[0], "message number") if arguments else None)


def _parse_retr(context: ParseContext, raw: bytes) -> Event:
    (number,) = _arguments(raw, "RETR", 1, 1)
    return Retr(_number(number, "message number"))


def _parse_dele(context: ParseContext, raw: bytes) -> Event:
    (number,) = _arguments(raw, "DELE", 1, 1)
    return Dele(_number(number, "message number"))


def _parse_top(context: ParseContext, raw: bytes) -> Event:
    number, lines = _arguments(raw, "TOP", 2, 2)
    return Top(_number(number, "message number"), _number(lines, "line count"))


# Every command the engine knows, by upper-cased verb.
COMMANDS: Final[dict[bytes, Parser]] = {
    b"USER": _parse_user,
    b"PASS": _parse_pass,
    b"APOP": _parse_apop,
    b"AUTH": _parse_auth,
    b"STLS": _parse_stls,
    b"UTF8": _bare("UTF8", Utf8()),
    b"CAPA": _bare("CAPA", Capa()),
    b"QUIT": _parse_quit,
    b"STAT": _bare("STAT", Stat()),
    b"LIST": _parse_list,
    b"RETR": _parse_retr,
    b"DELE": _parse_dele,
    b"NOOP": _bare("NOOP", Noop()),
    b"RSET": _bare("RSET", Rset()),
    b"TOP": _parse_top,
    b"UIDL": _parse_uidl,
}

# RFC 1939 §4, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4, RFC 6856 §2.
_LOGIN: Final = frozenset({b"USER", b"APOP", b"AUTH", b"STLS", b"UTF8", b"CAPA", b"QUIT"})
# RFC 1939 §5 and §7, RFC 2449 §5.
_MAILDROP: Final = frozenset(
    {b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"CAPA", b"QUIT"}
)
# The commands each state accepts; lines in the other states are not commands at all.
ALLOWED: Final[dict[type[State], frozenset[bytes]]] = {
    Authorization: _LOGIN,
    UserGiven: _LOGIN | {b"PASS"},
    Transaction: _MAILDROP,
    SaslExchange: frozenset(),
    TlsPending: frozenset(),
    Update: frozenset(),
    Closed: frozenset(),
}
