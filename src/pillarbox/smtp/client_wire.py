"""SMTP client wire pieces (pure): replies, EHLO capabilities, the message and data forms.

Used by the client engine (`smtp/client.py`): reading the server's replies (RFC 5321 §4.2),
reading its EHLO keywords, fitting a message to the peer (SMTPUTF8, 8BITMIME downgrade,
SIZE) and writing MAIL/RCPT with their parameters and the dot-stuffed, CRLF-only data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from pillarbox.mime import downgrade as mime_downgrade
from pillarbox.smtp.params import encode_xtext

# RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; real servers send longer lines,
# so we accept up to this many before calling the reply malformed.
MAX_REPLY_LINE: Final = 4096
# Lines of one multi-line reply (EHLO answers have about twenty).
MAX_REPLY_LINES: Final = 200

_REPLY_LINE_RE: Final = re.compile(rb"([2-5][0-9][0-9])([ -]?)(.*)")
_STATUS_RE: Final = re.compile(r"([245]\.\d{1,3}\.\d{1,3})(?:\s|$)")
_LINE_END_RE: Final = re.compile(rb"\r\n|\r|\n")
_EIGHT_BIT_RE: Final = re.compile(rb"[\x80-\xff]")
_UNSAFE_ARG_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


class ProtocolError(Exception):
    """The server sent something that is not an SMTP reply."""


@dataclass(frozen=True, slots=True)
class ServerReply:
    """One reply from the server (RFC 5321 §4.2), with its lines' text after the code."""

    code: int
    lines: tuple[str, ...]

    @property
    def status(self) -> str | None:
        """The RFC 3463 enhanced status code of the first line, if any (RFC 2034 §3)."""
        match = _STATUS_RE.match(self.lines[0]) if self.lines else None
        if match is None or match.group(1)[0] != str(self.code)[0]:
            return None
        return match.group(1)

    @property
    def positive(self) -> bool:
        return self.code < 400

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        return f"{self.code} " + " / ".join(self.lines)


def synthetic(code: int, status: str, text: str) -> ServerReply:
    """A reply we make up ourselves (connection failures, refusals before sending)."""
    return ServerReply(code, (f"{status} {text}",))


# Refusals decided before anything is sent for a message.
TOO_BIG: Final = synthetic(552, "5.3.4", "Message too big for the next hop (SIZE)")  # RFC 1870
NEEDS_SMTPUTF8: Final = synthetic(  # RFC 6531 §3.2: no SMTPUTF8 at the next hop
    553, "5.6.7", "Next hop does not support SMTPUTF8 and the message requires it"
)
CONVERSION_FAILED: Final = synthetic(554, "5.6.3", "Conversion to 7bit failed")  # RFC 3463
CONNECTION_LOST: Final = synthetic(421, "4.4.2", "Connection lost")
TLS_FAILED: Final = synthetic(421, "4.7.0", "TLS handshake failed")
TLS_REQUIRED: Final = synthetic(451, "4.7.10", "TLS required but not offered by the server")
AUTH_UNAVAILABLE: Final = synthetic(
    454, "4.7.0", "Cannot authenticate: no common mechanism or no TLS"
)


class ReplyReader:
    """Assembles reply lines into `ServerReply` values (RFC 5321 §4.2.1)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._code: int | None = None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_reply(self) -> ServerReply | None:
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY_LINE:
                    raise ProtocolError("reply line too long")
                return None
            raw = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            reply = self._line(raw)
            if reply is not None:
                return reply

    def _line(self, raw: bytes) -> ServerReply | None:
        match = _REPLY_LINE_RE.fullmatch(raw)
        if match is None or len(raw) > MAX_REPLY_LINE:
            raise ProtocolError("malformed reply line")
        code = int(match.group(1))
        if self._code is not None and code != self._code:
            raise ProtocolError("reply code changed inside a multi-line reply")
        self._code = code
        self._lines.append(match.group(3).decode("utf-8", "replace").strip())
        if len(self._lines) > MAX_REPLY_LINES:
            raise ProtocolError("too many reply lines")
        if match.group(2) == b"-":
            return None
        reply = ServerReply(code, tuple(self._lines))
        self._lines, self._code = [], None
        return reply

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished reply are buffered."""
        return bool(self._buffer) or bool(self._lines)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server said it supports in its EHLO reply (RFC 5321 §4.1.1.1)."""

    esmtp: bool = False
    pipelining: bool = False
    size: int | None = None  # None: SIZE not offered; 0: offered without a limit
    eightbitmime: bool = False
    smtputf8: bool = False
    dsn: bool = False
    starttls: bool = False
    chunking: bool = False
    auth: frozenset[str] = frozenset()


def parse_ehlo(reply: ServerReply) -> Capabilities:
    """The keywords after the greeting line of a 250 EHLO reply."""
    keywords: dict[str, list[str]] = {}
    for line in reply.lines[1:]:
        words = line.split()
        if words:
            keywords[words[0].upper()] = words[1:]
    size: int | None = None
    if "SIZE" in keywords:
        value = keywords["SIZE"]
        size = int(value[0]) if value and value[0].isdigit() else 0  # RFC 1870 §4
    return Capabilities(
        esmtp=True,
        pipelining="PIPELINING" in keywords,
        size=size,
        eightbitmime="8BITMIME" in keywords,
        smtputf8="SMTPUTF8" in keywords,
        dsn="DSN" in keywords,
        starttls="STARTTLS" in keywords,
        chunking="CHUNKING" in keywords,
        auth=frozenset(m.upper() for m in keywords.get("AUTH", ())),
    )


@dataclass(frozen=True, slots=True)
class RecipientSpec:
    """One envelope recipient with its RFC 3461 §4 parameters."""

    address: str
    notify: tuple[str, ...] = ()
    orcpt: str | None = None  # "rfc822;addr", decoded


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for one transaction: the envelope and the body as stored (CRLF text)."""

    sender: str  # "" for the null reverse-path
    recipients: tuple[RecipientSpec, ...]
    body: bytes
    body_type: str = "7BIT"  # 7BIT, 8BITMIME or BINARYMIME as received
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientResult:
    address: str
    reply: ServerReply

    @property
    def accepted(self) -> bool:
        return self.reply.positive


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    results: tuple[RecipientResult, ...]
    dsn_passed: bool = False  # the peer offered DSN, so it takes over the notifications


# -- the wire form of data ----------------------------------------------------------------


def normalize_line_ends(body: bytes) -> bytes:
    """Every CR, LF and CRLF becomes CRLF (RFC 5321 §2.3.8: we never emit a bare one)."""
    crlf = body.count(b"\r\n")
    if body.count(b"\r") == crlf and body.count(b"\n") == crlf:
        return body
    return _LINE_END_RE.sub(b"\r\n", body)


def encode_data(body: bytes) -> bytes:
    """DATA content: CRLF line ends, dots stuffed (RFC 5321 §4.5.2), then CRLF "." CRLF."""
    text = normalize_line_ends(body)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"  # RFC 5321 §4.1.1.4: the terminator follows a line end
    if text.startswith(b"."):
        text = b"." + text
    return text.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def _arg(text: str) -> str:
    if _UNSAFE_ARG_RE.search(text):  # never let a value inject a command line
        raise ValueError("control character in an SMTP command argument")
    return text


def command_line(line: str) -> bytes:
    return _arg(line).encode("utf-8") + b"\r\n"


# -- preparing a message for the peer's capabilities -----------------------------------------


def _needs_smtputf8(message: OutboundMessage) -> bool:
    addresses = [message.sender, *(r.address for r in message.recipients)]
    return message.smtputf8 or any(not a.isascii() for a in addresses)


def prepare(message: OutboundMessage, caps: Capabilities) -> OutboundMessage | ServerReply:
    """Fit the message to the peer, or the permanent refusal that fails all its recipients."""
    if _needs_smtputf8(message) and not caps.smtputf8:
        return NEEDS_SMTPUTF8  # RFC 6531 §3.2
    body = message.body
    eight_bit = message.body_type != "7BIT" and _EIGHT_BIT_RE.search(body) is not None
    if eight_bit and (not caps.eightbitmime or message.body_type == "BINARYMIME"):
        try:  # RFC 6152 §3: convert to 7bit for a peer without 8BITMIME
            body = mime_downgrade.downgrade(body)
        except Exception:  # a body the MIME parser cannot convert
            return CONVERSION_FAILED
        eight_bit = False
    body = normalize_line_ends(body)
    if caps.size and len(body) > caps.size:
        return TOO_BIG  # RFC 1870 §6.1: do not send what the server will refuse
    return replace(message, body=body, body_type="8BITMIME" if eight_bit else "7BIT")


def mail_command(message: OutboundMessage, caps: Capabilities) -> bytes:
    """MAIL FROM with the parameters the peer understands (RFC 5321 §4.1.1.2)."""
    parts = [f"MAIL FROM:<{message.sender}>"]
    if caps.size is not None:
        parts.append(f"SIZE={len(message.body)}")  # RFC 1870 §6
    if message.body_type == "8BITMIME" and caps.eightbitmime:
        parts.append("BODY=8BITMIME")  # RFC 6152 §2
    if _needs_smtputf8(message) and caps.smtputf8:
        parts.append("SMTPUTF8")  # RFC 6531 §3.4
    if caps.dsn:  # RFC 3461 §4.3, §4.4
        if message.ret:
            parts.append(f"RET={message.ret}")
        if message.envid:
            parts.append(f"ENVID={encode_xtext(message.envid)}")
    return command_line(" ".join(parts))


def rcpt_command(recipient: RecipientSpec, caps: Capabilities) -> bytes:
    """RCPT TO with NOTIFY and ORCPT when the peer offers DSN (RFC 3461 §4.1, §4.2)."""
    parts = [f"RCPT TO:<{recipient.address}>"]
    if caps.dsn:
        if recipient.notify:
            parts.append("NOTIFY=" + ",".join(recipient.notify))
        if recipient.orcpt:
            kind, _, address = recipient.orcpt.partition(";")
            parts.append(f"ORCPT={kind.strip()};{encode_xtext(address.strip())}")
    return command_line(" ".join(parts))
