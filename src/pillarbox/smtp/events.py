"""Events the SMTP server engine produces, one per command (or per message body)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from pillarbox.smtp.replies import Reply


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "NEED_DATA"


#: Returned by ``ServerEngine.next_event()`` when more bytes must be received.
NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class MailParams:
    """Parameters of MAIL FROM (RFC 1870, 6152, 3030, 3461 §4, 4954 §5, 6531)."""

    size: int | None = None
    body: Literal["7BIT", "8BITMIME", "BINARYMIME"] = "7BIT"
    ret: Literal["FULL", "HDRS"] | None = None
    envid: str | None = None  # decoded xtext
    smtputf8: bool = False
    auth: str | None = None  # decoded xtext; "<>" when the submitter is unknown


@dataclass(frozen=True, slots=True)
class RcptParams:
    """Parameters of RCPT TO (RFC 3461 §4.1-4.2)."""

    notify: tuple[str, ...] = ()  # ("NEVER",) or a subset of SUCCESS, FAILURE, DELAY
    orcpt: str | None = None  # "rfc822;addr", xtext decoded


@dataclass(frozen=True, slots=True)
class Helo:
    """HELO (``extended=False``) or EHLO (``extended=True``)."""

    name: str
    extended: bool


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM; ``address`` is "" for the null reverse-path ``<>``."""

    address: str
    params: MailParams


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO; ``address`` is the forward-path without source route (RFC 5321 §4.1.2)."""

    address: str
    params: RcptParams


@dataclass(frozen=True, slots=True)
class Data:
    """DATA command: answer 354 to receive the body, or an error."""


@dataclass(frozen=True, slots=True)
class MessageData:
    """A complete DATA body: CRLF line ends, dot-unstuffed, without the final ``.CRLF``."""

    body: bytes


@dataclass(frozen=True, slots=True)
class BdatChunk:
    """One BDAT chunk (RFC 3030): exactly the announced octets."""

    data: bytes
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET."""


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (any argument is ignored, RFC 5321 §4.1.1.9)."""


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT: answer 221 and the engine closes."""


@dataclass(frozen=True, slots=True)
class Help:
    """HELP [topic]."""

    topic: str | None


@dataclass(frozen=True, slots=True)
class Vrfy:
    """VRFY string."""

    arg: str


@dataclass(frozen=True, slots=True)
class Expn:
    """EXPN string."""

    arg: str


@dataclass(frozen=True, slots=True)
class StartTls:
    """STARTTLS (RFC 3207): answering 220 discards buffered input and resets the state."""


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH mechanism [initial-response] (RFC 4954 §4)."""

    mechanism: str  # upper case
    initial: bytes | None  # decoded base64; b"" for "="; None when absent


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A client line during a SASL exchange, raw without CRLF (``b"*"`` cancels)."""

    line: bytes


@dataclass(frozen=True, slots=True)
class Etrn:
    """ETRN node (RFC 1985)."""

    arg: str


@dataclass(frozen=True, slots=True)
class Verb:
    """VERB [arg] (Sendmail extension)."""

    arg: str | None


@dataclass(frozen=True, slots=True)
class Onex:
    """ONEX (Sendmail extension)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The engine decided the reply itself; the session sends ``reply`` back unchanged."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection."""


Event = (
    Helo
    | MailFrom
    | RcptTo
    | Data
    | MessageData
    | BdatChunk
    | Rset
    | Noop
    | Quit
    | Help
    | Vrfy
    | Expn
    | StartTls
    | Auth
    | AuthResponse
    | Etrn
    | Verb
    | Onex
    | Rejected
    | ConnectionClosed
)
