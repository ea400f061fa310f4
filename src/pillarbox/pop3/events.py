"""Events the POP3 engine hands to the session: one per client command line.

Every event except `ConnectionClosed` awaits exactly one response from the session
(`Pop3Engine.send`). `Rejected` carries the response the engine already decided on
(unknown command, wrong state, bad arguments, over-long line); the session sends it as is.
Secrets (passwords, digests, SASL data) are kept out of `repr` so they never reach a log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, Literal

from pillarbox.pop3.replies import Err


class _Sentinel(enum.Enum):
    NEED_DATA = enum.auto()


# Returned by `Pop3Engine.next_event` when no complete command line is buffered.
NEED_DATA: Final = _Sentinel.NEED_DATA
NeedData = Literal[_Sentinel.NEED_DATA]


@dataclass(frozen=True, slots=True)
class User:
    """RFC 1939 §7 USER name."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """RFC 1939 §7 PASS string, with the name of the preceding accepted USER."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Apop:
    """RFC 1939 §7 APOP name digest (digest: 32 lowercase hex digits)."""

    name: str
    digest: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 5034 §4 AUTH mechanism [initial-response]; mechanism upper-cased,
    initial response base64-decoded (None when absent, b"" for "=")."""

    mechanism: str
    initial: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """RFC 5034 §4: one base64-decoded client response inside a SASL exchange."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Stat:
    """RFC 1939 §5 STAT."""


@dataclass(frozen=True, slots=True)
class List:
    """RFC 1939 §5 LIST [msg]."""

    number: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RFC 1939 §5 RETR msg."""

    number: int


@dataclass(frozen=True, slots=True)
class Dele:
    """RFC 1939 §5 DELE msg."""

    number: int


@dataclass(frozen=True, slots=True)
class Noop:
    """RFC 1939 §5 NOOP."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RFC 1939 §5 RSET."""


@dataclass(frozen=True, slots=True)
class Quit:
    """RFC 1939 §4/§6 QUIT. `update` is True when sent in TRANSACTION state: the session
    must apply the deletions (UPDATE state) before answering."""

    update: bool = False


@dataclass(frozen=True, slots=True)
class Top:
    """RFC 1939 §7 TOP msg n."""

    number: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """RFC 1939 §7 UIDL [msg]."""

    number: int | None = None


@dataclass(frozen=True, slots=True)
class Capa:
    """RFC 2449 §5 CAPA."""


@dataclass(frozen=True, slots=True)
class Stls:
    """RFC 2595 §4 STLS (only emitted when TLS is available and not yet active)."""


@dataclass(frozen=True, slots=True)
class Utf8:
    """RFC 6856 §2 UTF8."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command line the engine refused itself; send `response` unchanged."""

    response: Err


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (receive_data(b"")); nothing is applied, RFC 1939 §6."""


Event = (
    User
    | Pass
    | Apop
    | Auth
    | AuthResponse
    | Stat
    | List
    | Retr
    | Dele
    | Noop
    | Rset
    | Quit
    | Top
    | Uidl
    | Capa
    | Stls
    | Utf8
    | Rejected
    | ConnectionClosed
)
