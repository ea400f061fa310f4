"""Command-line parsing for the SMTP server engine: one pure parser per verb.

A parser takes the argument text (after the verb and its space) and a
:class:`CommandContext`, and returns an event or raises :class:`CommandError`
carrying the reply that refuses the command.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox.smtp import replies
from pillarbox.smtp.address import AddressError, parse_forward_path, parse_reverse_path
from pillarbox.smtp.events import (
    Auth,
    Data,
    Etrn,
    Event,
    Expn,
    Helo,
    Help,
    MailFrom,
    Noop,
    Onex,
    Quit,
    RcptTo,
    Rset,
    StartTls,
    Verb,
    Vrfy,
)
from pillarbox.smtp.params import Extension, ParamError, parse_mail_params, parse_rcpt_params
from pillarbox.smtp.replies import Reply

# RFC 4422 §3.1: sasl-mech = 1*20mech-char (upper-case letters, digits, "-" and "_").
_SASL_MECH_RE: Final = re.compile(r"[A-Z0-9_\-]{1,20}")
# RFC 3030 §2: chunk-size = 1*DIGIT; we bound the digits so int() stays cheap.
MAX_CHUNK_SIZE_DIGITS: Final = 20
_BDAT_RE: Final = re.compile(rf"(\d{{1,{MAX_CHUNK_SIZE_DIGITS}}})(?: +(LAST))? *", re.IGNORECASE)


class CommandError(Exception):
    """A command refused by the engine, carrying its reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What a parser needs to know about the session so far."""

    extended: bool  # EHLO (not HELO) was accepted
    extensions: frozenset[Extension]
    max_message_size: int  # 0 = unlimited
    smtputf8: bool  # the current transaction's MAIL had SMTPUTF8


def _no_args(args: str) -> None:
    if args.strip(" "):
        raise CommandError(replies.SYNTAX_NO_ARGUMENTS)


def _required(args: str) -> str:
    arg = args.strip(" ")
    if not arg:
        raise CommandError(replies.SYNTAX_ARGUMENT_REQUIRED)
    return arg


def _helo(args: str, _ctx: CommandContext) -> Event:
    name = args.strip(" ")
    if not name:
        raise CommandError(replies.SYNTAX_HELO)  # RFC 5321 §4.1.1.1: domain required
    return Helo(name, extended=False)


def _ehlo(args: str, ctx: CommandContext) -> Event:
    helo = _helo(args, ctx)
    assert isinstance(helo, Helo)
    return Helo(helo.name, extended=True)


def _strip_prefix(args: str, prefix: str, syntax: Reply) -> str:
    """Remove "FROM:" / "TO:" (any case); spaces after the colon are tolerated."""
    if args[: len(prefix)].upper() != prefix:
        raise CommandError(syntax)
    return args[len(prefix) :].lstrip(" ")


def _mail(args: str, ctx: CommandContext) -> Event:
    text = _strip_prefix(args, "FROM:", replies.SYNTAX_MAIL)  # RFC 5321 §4.1.1.2
    try:
        path = parse_reverse_path(text)
    except AddressError:
        raise CommandError(replies.BAD_SENDER_SYNTAX) from None
    try:
        params = parse_mail_params(
            path.rest,
            extended=ctx.extended,
            extensions=ctx.extensions,
            max_size=ctx.max_message_size,
        )
    except ParamError as exc:
        raise CommandError(exc.reply) from None
    if not path.address.isascii() and not params.smtputf8:
        raise CommandError(replies.NON_ASCII_SENDER)  # RFC 6531 §3.5
    return MailFrom(path.address, params)


def _rcpt(args: str, ctx: CommandContext) -> Event:
    text = _strip_prefix(args, "TO:", replies.SYNTAX_RCPT)  # RFC 5321 §4.1.1.3
    try:
        path = parse_forward_path(text)
    except AddressError:
        raise CommandError(replies.BAD_RECIPIENT_SYNTAX) from None
    try:
        params = parse_rcpt_params(path.rest, extended=ctx.extended, extensions=ctx.extensions)
    except ParamError as exc:
        raise CommandError(exc.reply) from None
    if not path.address.isascii() and not ctx.smtputf8:
        raise CommandError(replies.NON_ASCII_RECIPIENT)  # RFC 6531 §3.5
    return RcptTo(path.address, params)


def _data(args: str, _ctx: CommandContext) -> Event:
    _no_args(args)  # RFC 5321 §4.1.1.4: "DATA" CRLF
    return Data()


def _rset(args: str, _ctx: CommandContext) -> Event:
    _no_args(args)  # RFC 5321 §4.1.1.5
    return Rset()


def _noop(_args: str, _ctx: CommandContext) -> Event:
    return Noop()  # RFC 5321 §4.1.1.9: a parameter is ignored


def _quit(args: str, _ctx: CommandContext) -> Event:
    _no_args(args)  # RFC 5321 §4.1.1.10
    return Quit()


def _help(args: str, _ctx: CommandContext) -> Event:
    return Help(args.strip(" ") or None)  # RFC 5321 §4.1.1.8


def _vrfy(args: str, _ctx: CommandContext) -> Event:
    return Vrfy(_required(args))  # RFC 5321 §4.1.1.6


def _expn(args: str, _ctx: CommandContext) -> Event:
    return Expn(_required(args))  # RFC 5321 §4.1.1.7


def _starttls(args: str, _ctx: CommandContext) -> Event:
    _no_args(args)  # RFC 3207 §4: "STARTTLS" CRLF
    return StartTls()


def _auth(args: str, _ctx: CommandContext) -> Event:
    words = args.strip(" ").split(" ")
    mechanism = words[0].upper()
    if len(words) > 2 or _SASL_MECH_RE.fullmatch(mechanism) is None:
        raise CommandError(replies.SYNTAX_AUTH)  # RFC 4954 §4
    if len(words) == 1:
        return Auth(mechanism, None)
    if words[1] == "=":
        return Auth(mechanism, b"")  # RFC 4954 §4: "=" is an empty initial response
    try:
        initial = binascii.a2b_base64(words[1].encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CommandError(replies.BAD_BASE64) from None  # RFC 4954 §4: 501 5.5.2
    return Auth(mechanism, initial)


def _etrn(args: str, _ctx: CommandContext) -> Event:
    return Etrn(_required(args))  # RFC 1985 §5


def _verb(args: str, _ctx: CommandContext) -> Event:
    return Verb(args.strip(" ") or None)


def _onex(args: str, _ctx: CommandContext) -> Event:
    _no_args(args)
    return Onex()


def parse_bdat(args: str) -> tuple[int, bool]:
    """RFC 3030 §2: ``BDAT chunk-size [LAST]`` -> (size, last)."""
    match = _BDAT_RE.fullmatch(args)
    if match is None:
        raise CommandError(replies.SYNTAX_BDAT)
    return int(match.group(1)), match.group(2) is not None


Parser = Callable[[str, CommandContext], Event]

#: Verb -> parser.  BDAT is not here: the engine handles it because it must consume octets.
PARSERS: Final[dict[str, Parser]] = {
    "HELO": _helo,
    "EHLO": _ehlo,
    "MAIL": _mail,
    "RCPT": _rcpt,
    "DATA": _data,
    "RSET": _rset,
    "NOOP": _noop,
    "QUIT": _quit,
    "HELP": _help,
    "VRFY": _vrfy,
    "EXPN": _expn,
    "STARTTLS": _starttls,
    "AUTH": _auth,
    "ETRN": _etrn,
    "VERB": _verb,
    "ONEX": _onex,
}

#: Verbs whose extension must be enabled; otherwise 502 (RFC 5321 §4.2.4).
VERB_EXTENSIONS: Final[dict[str, Extension]] = {
    "BDAT": Extension.CHUNKING,
    "AUTH": Extension.AUTH,
    "STARTTLS": Extension.STARTTLS,
    "ETRN": Extension.ETRN,
    "VERB": Extension.SENDMAIL,
    "ONEX": Extension.SENDMAIL,
}

#: Service extension commands that only an EHLO client may use (RFC 5321 §2.2.1).
EHLO_ONLY: Final = frozenset({"AUTH", "STARTTLS", "BDAT"})

#: RFC 5321 Appendix F: obsolete commands, answered 502.
OBSOLETE: Final = frozenset({"SEND", "SOML", "SAML", "TURN"})

#: HTTP methods sent to an SMTP port are cross-protocol attacks: answer 421 and close.
FORBIDDEN: Final = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS"})
