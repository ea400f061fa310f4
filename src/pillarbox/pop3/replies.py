"""POP3 responses as values, their wire encoding, and the standard replies by meaning.

A session never writes raw status lines: it returns `Ok`, `Err` or `Challenge` values, mostly
built by the functions and constants below, and `Pop3Engine.send` turns them into bytes.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pillarbox.pop3.message import dot_stuff

# RFC 2449 §4: the first line of a response, greeting included, is at most 512 octets
# with its CRLF.
MAX_RESPONSE_LINE: Final = 512
_CRLF: Final = b"\r\n"
_MAX_STATUS: Final = MAX_RESPONSE_LINE - len(_CRLF)


class ResponseCode(enum.StrEnum):
    """RFC 2449 §8 extended response codes, written in brackets after the status."""

    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 §8.1.1
    IN_USE = "IN-USE"  # RFC 2449 §8.1.2
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 §4: transient system problem, retry later
    SYS_PERM = "SYS/PERM"  # RFC 3206 §4: permanent system problem, ask an administrator
    AUTH = "AUTH"  # RFC 3206 §5: the credentials are at fault
    UTF8 = "UTF8"  # RFC 6856 §2: the command needs UTF8 mode first


@dataclass(frozen=True, slots=True)
class Ok:
    """+OK response. With `lines` or `body` it is multi-line (RFC 1939 §3): the engine
    byte-stuffs and terminates it. `body` is a message (RETR/TOP), `lines` short text
    lines. `wire` is the whole response made beforehand (see `retrieved`), sent as is."""

    text: str = ""
    code: ResponseCode | None = None
    lines: tuple[str, ...] | None = None
    body: bytes | None = field(default=None, repr=False)
    wire: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Err:
    """-ERR response. `closes` ends the connection after it is written (timeouts, abuse)."""

    text: str = ""
    code: ResponseCode | None = None
    closes: bool = False


@dataclass(frozen=True, slots=True)
class Challenge:
    """RFC 5034 §4 server challenge inside AUTH: "+ " base64 CRLF."""

    data: bytes = field(default=b"", repr=False)


Response = Ok | Err | Challenge


def _status_line(status: bytes, text: str, code: ResponseCode | None) -> bytes:
    if "\r" in text or "\n" in text:
        raise ValueError("response text must be one line")
    if code is not None:
        status += f" [{code.value}]".encode("ascii")
    line = status + b" " + text.encode("utf-8") if text else status
    # RFC 2449 §4: cut over-long text rather than break the line limit.
    if len(line) > _MAX_STATUS:
        line = line[:_MAX_STATUS]
    return line + _CRLF


def _multiline(lines: Iterable[str]) -> bytes:
    """The lines, byte-stuffed, and the terminating ".CRLF" (RFC 1939 §3). Built as one
    string (a LIST or UIDL of a large maildrop has a line per message)."""
    lines = tuple(lines)
    if not lines:
        return b"." + _CRLF
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("multi-line response lines must not contain CR or LF")
    text = "\r\n".join(lines)
    if text.startswith(".") or "\r\n." in text:
        # RFC 1939 §3: a line starting with the termination octet is byte-stuffed.
        text = "\r\n".join("." + line if line.startswith(".") else line for line in lines)
    return text.encode("utf-8") + b"\r\n.\r\n"


def encode(response: Response) -> bytes:
    """Wire bytes of one response, multi-line ones stuffed and terminated."""
    if isinstance(response, Challenge):
        # RFC 5034 §4: continuation "+" SP [base64] CRLF.
        return b"+ " + base64.b64encode(response.data) + _CRLF
    if isinstance(response, Err):
        return _status_line(b"-ERR", response.text, response.code)
    if response.wire is not None:
        return response.wire
    first = _status_line(b"+OK", response.text, response.code)
    if response.body is not None:
        return dot_stuff(response.body, first)  # one copy of a large body
    if response.lines is not None:
        return first + _multiline(response.lines)
    return first


def _messages(count: int, size: int) -> str:
    noun = "message" if count == 1 else "messages"
    return f"{count} {noun} ({size} octets)"


# --- AUTHORIZATION state -------------------------------------------------------------


def apop_timestamp(pid: int, clock: int, hostname: str) -> str:
    """RFC 1939 §7: the greeting's msg-id style timestamp, unique per connection."""
    return f"<{pid}.{clock}@{hostname}>"


def greeting(timestamp: str | None, implementation: str = "Pillarbox") -> Ok:
    """RFC 1939 §4 greeting; with a timestamp the server offers APOP (§7)."""
    text = f"{implementation} POP3 server ready"
    return Ok(f"{text} {timestamp}" if timestamp else text)


def maildrop_ready(count: int, size: int) -> Ok:
    """RFC 1939 §7 reply to a successful PASS/APOP/AUTH."""
    return Ok(f"maildrop has {_messages(count, size)}")


def capability_list(capabilities: Iterable[str]) -> Ok:
    """RFC 2449 §5 CAPA reply."""
    return Ok("Capability list follows", lines=tuple(capabilities))


USER_ACCEPTED: Final = Ok("send PASS")
AUTH_FAILED: Final = Err("Authentication failed.", ResponseCode.AUTH)
IN_USE: Final = Err("Maildrop is locked by another session.", ResponseCode.IN_USE)
LOGIN_DELAY: Final = Err("Logged in too recently, try again later.", ResponseCode.LOGIN_DELAY)
SYSTEM_TEMPORARY: Final = Err("Temporary server problem, try again later.", ResponseCode.SYS_TEMP)
SYSTEM_PERMANENT: Final = Err("Server problem, contact the administrator.", ResponseCode.SYS_PERM)
# Dovecot's wording for RFC 2595 §2.3's "no clear-text passwords without TLS" rule.
PLAINTEXT_DISALLOWED: Final = Err(
    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
    ResponseCode.AUTH,
)
AUTH_CANCELLED: Final = Err("Authentication cancelled.")
TLS_STARTING: Final = Ok("Begin TLS negotiation")  # RFC 2595 §4
UTF8_ENABLED: Final = Ok("UTF8 enabled")  # RFC 6856 §2
IDLE_TIMEOUT: Final = Err("Disconnected for inactivity.", closes=True)

# --- TRANSACTION state ---------------------------------------------------------------


def stat(count: int, size: int) -> Ok:
    """RFC 1939 §5 STAT: "+OK nn mm"."""
    return Ok(f"{count} {size}")


def scan_listing(entries: Iterable[tuple[int, int]], count: int, size: int) -> Ok:
    """RFC 1939 §5 LIST without argument: one "msg size" line per undeleted message."""
    return Ok(_messages(count, size), lines=tuple(f"{n} {s}" for n, s in entries))


def scan_line(number: int, size: int) -> Ok:
    """RFC 1939 §5 LIST msg."""
    return Ok(f"{number} {size}")


def uidl_listing(entries: Iterable[tuple[int, str]]) -> Ok:
    """RFC 1939 §7 UIDL without argument."""
    return Ok("Unique-ID listing follows", lines=tuple(f"{n} {u}" for n, u in entries))


def uidl_line(number: int, uid: str) -> Ok:
    """RFC 1939 §7 UIDL msg."""
    return Ok(f"{number} {uid}")


def _octets(size: int) -> str:
    return f"{size} octets"


def message(size: int, body: bytes) -> Ok:
    """RFC 1939 §5 RETR: the whole message, byte-stuffed by the engine."""
    return Ok(_octets(size), body=body)


def message_status(size: int) -> bytes:
    """The status line of `message(size, ...)` on the wire."""
    return _status_line(b"+OK", _octets(size), None)


def retrieved(size: int, wire: bytes) -> Ok:
    """RFC 1939 §5 RETR made beforehand: `wire` is `message.dot_stuff(body,
    message_status(size))`, the same octets `message(size, body)` encodes to, but made
    without copying a large message once more."""
    return Ok(_octets(size), wire=wire)


def top(body: bytes) -> Ok:
    """RFC 1939 §7 TOP: headers, blank line and the first lines of the body."""
    return Ok("top of message follows", body=body)


def deleted(number: int) -> Ok:
    """RFC 1939 §5 DELE."""
    return Ok(f"message {number} deleted")


def reset(count: int, size: int) -> Ok:
    """RFC 1939 §5 RSET."""
    return Ok(f"maildrop has {_messages(count, size)}")


# RFC 1939 §5: a number out of range or marked deleted.
NO_SUCH_MESSAGE: Final = Err("no such message")


def already_deleted(number: int) -> Err:
    """RFC 1939 §5 DELE of a message marked deleted."""
    return Err(f"message {number} already deleted")


NOOP: Final = Ok()


def signing_off(remaining: int | None = None) -> Ok:
    """RFC 1939 §4/§6 QUIT; `remaining` is the count left after UPDATE."""
    if remaining is None:
        return Ok("Pillarbox POP3 server signing off")
    left = "maildrop empty" if remaining == 0 else f"{_messages_only(remaining)} left"
    return Ok(f"Pillarbox POP3 server signing off ({left})")


def _messages_only(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"


# RFC 1939 §6: the UPDATE state could not remove every deleted message.
DELETIONS_FAILED: Final = Err("some deleted messages not removed", ResponseCode.SYS_TEMP)
