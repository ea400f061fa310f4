"""MAIL FROM / RCPT TO parameters (RFC 5321 §4.1.2 Mail-parameters) and xtext."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from pillarbox.smtp import replies
from pillarbox.smtp.events import MailParams, RcptParams
from pillarbox.smtp.replies import Reply


class Extension(enum.StrEnum):
    """Service extensions the engine can refuse when a listener does not offer them."""

    SIZE = "SIZE"  # RFC 1870
    CHUNKING = "CHUNKING"  # RFC 3030 (BDAT)
    BINARYMIME = "BINARYMIME"  # RFC 3030 (needs CHUNKING)
    SMTPUTF8 = "SMTPUTF8"  # RFC 6531
    DSN = "DSN"  # RFC 3461
    AUTH = "AUTH"  # RFC 4954
    STARTTLS = "STARTTLS"  # RFC 3207
    ETRN = "ETRN"  # RFC 1985
    SENDMAIL = "SENDMAIL"  # VERB and ONEX


ALL_EXTENSIONS: Final = frozenset(Extension)

# RFC 1870 §3: size-value ::= 1*20DIGIT.
MAX_SIZE_DIGITS: Final = 20
# RFC 3461 §4.4: ENVID may be up to 100 characters (before xtext decoding we allow encoding).
MAX_ENVID: Final = 100
# RFC 3461 §4.2: the whole ORCPT parameter may be up to 500 characters.
MAX_ORCPT: Final = 500

# RFC 5321 §4.1.2: esmtp-keyword and esmtp-value (plus UTF8-non-ascii, RFC 6531 §3.3).
_PARAM_RE: Final = re.compile(
    r"([A-Za-z0-9][A-Za-z0-9\-]*)(?:=([\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+))?"
)
# RFC 3461 §4: xtext = *( xchar / hexchar ); xchar excludes "+" and "=".
_XTEXT_RE: Final = re.compile(rb"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e\x80-\xff]|\+[0-9A-F]{2})*")
_HEXCHAR_RE: Final = re.compile(rb"\+([0-9A-F]{2})")
_ADDR_TYPE_RE: Final = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_NOTIFY_EVENTS: Final = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class ParamError(Exception):
    """A parameter problem, carrying the reply that refuses the command."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def decode_xtext(text: str) -> str:
    """Decode RFC 3461 §4 xtext ("+2B" is "+"); raises ParamError on bad syntax."""
    raw = text.encode()
    if not _XTEXT_RE.fullmatch(raw):
        raise ParamError(replies.BAD_PARAMETER)
    decoded = _HEXCHAR_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    return decoded.decode("utf-8", "replace")


def encode_xtext(text: str) -> str:
    """Encode text as RFC 3461 §4 xtext (used by tests and the outbound client)."""
    out: list[str] = []
    for byte in text.encode():
        if 0x21 <= byte <= 0x7E and byte not in (0x2B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def _split(text: str, extended: bool) -> list[tuple[str, str | None]]:
    """Split " KEY=value KEY" into (upper keyword, value) pairs; duplicates are refused."""
    words = text.split(" ")
    if words[0] != "":
        raise ParamError(replies.SYNTAX_ERROR)  # RFC 5321 §4.1.2: SP before each parameter
    pairs: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for word in words[1:]:
        if not word:
            continue  # be liberal about repeated spaces
        match = _PARAM_RE.fullmatch(word)
        if match is None:
            raise ParamError(replies.SYNTAX_ERROR)
        if not extended:
            raise ParamError(replies.UNKNOWN_PARAMETER)  # RFC 1869: parameters need EHLO
        keyword = match.group(1).upper()
        if keyword in seen:
            raise ParamError(replies.BAD_PARAMETER)  # RFC 3461 §5.1: at most once each
        seen.add(keyword)
        pairs.append((keyword, match.group(2)))
    return pairs


@dataclass(slots=True)
class _MailBuilder:
    max_size: int
    extensions: frozenset[Extension]
    size: int | None = None
    body: Literal["7BIT", "8BITMIME", "BINARYMIME"] = "7BIT"
    ret: Literal["FULL", "HDRS"] | None = None
    envid: str | None = None
    smtputf8: bool = False
    auth: str | None = None


def _need(value: str | None) -> str:
    if value is None:
        raise ParamError(replies.BAD_PARAMETER)
    return value


def _mail_size(b: _MailBuilder, value: str | None) -> None:
    text = _need(value)
    if not text.isascii() or not text.isdigit() or len(text) > MAX_SIZE_DIGITS:
        raise ParamError(replies.BAD_PARAMETER)  # RFC 1870 §3
    b.size = int(text)
    if b.max_size and b.size > b.max_size:
        raise ParamError(replies.MESSAGE_TOO_BIG)  # RFC 1870 §6.1: 552 at MAIL


def _mail_body(b: _MailBuilder, value: str | None) -> None:
    body = _need(value).upper()
    if body == "7BIT":
        b.body = "7BIT"
    elif body == "8BITMIME":  # RFC 6152 §2
        b.body = "8BITMIME"
    elif body == "BINARYMIME" and Extension.BINARYMIME in b.extensions:  # RFC 3030 §3
        b.body = "BINARYMIME"
    else:
        raise ParamError(replies.UNKNOWN_PARAMETER)


def _mail_ret(b: _MailBuilder, value: str | None) -> None:
    ret = _need(value).upper()
    if ret == "FULL":  # RFC 3461 §4.3
        b.ret = "FULL"
    elif ret == "HDRS":
        b.ret = "HDRS"
    else:
        raise ParamError(replies.BAD_PARAMETER)


def _mail_envid(b: _MailBuilder, value: str | None) -> None:
    envid = decode_xtext(_need(value))
    if len(envid) > MAX_ENVID:
        raise ParamError(replies.BAD_PARAMETER)  # RFC 3461 §4.4
    b.envid = envid


def _mail_smtputf8(b: _MailBuilder, value: str | None) -> None:
    if value is not None:
        raise ParamError(replies.BAD_PARAMETER)  # RFC 6531 §3.4: no value
    b.smtputf8 = True


def _mail_auth(b: _MailBuilder, value: str | None) -> None:
    b.auth = decode_xtext(_need(value))  # RFC 4954 §5: AUTH=<> or AUTH=xtext mailbox


_MailHandler = Callable[[_MailBuilder, str | None], None]
# Keyword -> (extension that must be enabled, handler).  BODY=8BITMIME is always offered.
_MAIL_PARAMS: Final[dict[str, tuple[Extension | None, _MailHandler]]] = {
    "SIZE": (Extension.SIZE, _mail_size),
    "BODY": (None, _mail_body),
    "RET": (Extension.DSN, _mail_ret),
    "ENVID": (Extension.DSN, _mail_envid),
    "SMTPUTF8": (Extension.SMTPUTF8, _mail_smtputf8),
    "AUTH": (Extension.AUTH, _mail_auth),
}


def parse_mail_params(
    text: str, *, extended: bool, extensions: frozenset[Extension], max_size: int
) -> MailParams:
    """Parse the parameters after the MAIL FROM reverse-path; raises ParamError."""
    builder = _MailBuilder(max_size=max_size, extensions=extensions)
    for keyword, value in _split(text, extended):
        entry = _MAIL_PARAMS.get(keyword)
        if entry is None or (entry[0] is not None and entry[0] not in extensions):
            raise ParamError(replies.UNKNOWN_PARAMETER)  # RFC 5321 §4.1.1.11: 555
        entry[1](builder, value)
    return MailParams(
        size=builder.size,
        body=builder.body,
        ret=builder.ret,
        envid=builder.envid,
        smtputf8=builder.smtputf8,
        auth=builder.auth,
    )


@dataclass(slots=True)
class _RcptBuilder:
    notify: tuple[str, ...] = field(default=())
    orcpt: str | None = None


def _rcpt_notify(b: _RcptBuilder, value: str | None) -> None:
    events = tuple(word.upper() for word in _need(value).split(","))
    if events == ("NEVER",):  # RFC 3461 §4.1: NEVER stands alone
        b.notify = events
        return
    if len(set(events)) != len(events) or not set(events) <= _NOTIFY_EVENTS:
        raise ParamError(replies.BAD_PARAMETER)
    b.notify = events


def _rcpt_orcpt(b: _RcptBuilder, value: str | None) -> None:
    text = _need(value)
    addr_type, semicolon, xtext = text.partition(";")
    if len(text) > MAX_ORCPT or not semicolon or not xtext:
        raise ParamError(replies.BAD_PARAMETER)  # RFC 3461 §4.2
    if _ADDR_TYPE_RE.fullmatch(addr_type) is None:
        raise ParamError(replies.BAD_PARAMETER)
    b.orcpt = f"{addr_type};{decode_xtext(xtext)}"


_RcptHandler = Callable[[_RcptBuilder, str | None], None]
_RCPT_PARAMS: Final[dict[str, tuple[Extension, _RcptHandler]]] = {
    "NOTIFY": (Extension.DSN, _rcpt_notify),
    "ORCPT": (Extension.DSN, _rcpt_orcpt),
}


def parse_rcpt_params(text: str, *, extended: bool, extensions: frozenset[Extension]) -> RcptParams:
    """Parse the parameters after the RCPT TO forward-path; raises ParamError."""
    builder = _RcptBuilder()
    for keyword, value in _split(text, extended):
        entry = _RCPT_PARAMS.get(keyword)
        if entry is None or entry[0] not in extensions:
            raise ParamError(replies.UNKNOWN_PARAMETER)  # RFC 5321 §4.1.1.11: 555
        entry[1](builder, value)
    return RcptParams(notify=builder.notify, orcpt=builder.orcpt)
