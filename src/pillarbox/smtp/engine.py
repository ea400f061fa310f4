"""The pure (sans-IO) SMTP server engine: bytes in, events out, replies to bytes.

``receive_data()`` feeds bytes, ``next_event()`` returns one event per command (or per
message body) or ``NEED_DATA``; the session answers every event with exactly one
``send(reply)``, and the engine learns the transaction state from that reply (a 250 to
MAIL starts a transaction, a 354 to DATA switches to message data, ...).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox.smtp import commands, framing, replies
from pillarbox.smtp.commands import CommandContext, CommandError
from pillarbox.smtp.events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    BdatChunk,
    ConnectionClosed,
    Data,
    Event,
    Helo,
    MailFrom,
    MessageData,
    NeedData,
    Quit,
    RcptTo,
    Rejected,
    Rset,
    StartTls,
)
from pillarbox.smtp.params import ALL_EXTENSIONS, Extension
from pillarbox.smtp.replies import Reply, format_reply
from pillarbox.smtp.states import ALLOWED, DENIED, State

__all__ = [
    "ALL_EXTENSIONS",
    "DEFAULT_EXTENSIONS",
    "NEED_DATA",
    "EngineConfig",
    "EngineError",
    "Extension",
    "ServerEngine",
    "State",
]

# RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with CRLF; ESMTP parameters
# (RFC 1869 §4.1.2, RFC 3461, RFC 4954 §5) lengthen MAIL/RCPT, so we allow more.
MAX_COMMAND_LINE: Final = 2048
# RFC 4954 §4: 12288 octets suffice for deployed SASL mechanisms.
MAX_AUTH_LINE: Final = 12288
# RFC 5321 §4.5.3.1.4: no limit may be below 512 octets.
MIN_LINE_LIMIT: Final = 512
# Message size (RFC 1870).  Text lines: RFC 5321 §4.5.3.1.6 caps them at 1000 octets, but
# we accept longer lines, as most servers do, rather than lose mail (only CRLF.CRLF
# framing matters for safety).
DEFAULT_MAX_MESSAGE_SIZE: Final = 36_700_160
DEFAULT_MAX_COMMANDS: Final = 10_000
# Like Postfix smtpd_hard_error_limit: after this many refused commands, 421 and close.
DEFAULT_MAX_ERRORS: Final = 20

# C0 controls (other than the line end) and DEL never appear in a command line.
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


class EngineError(RuntimeError):
    """The caller broke the engine's contract (a programming error, not a peer error)."""


class _Mode(enum.Enum):
    """What the next input bytes are."""

    COMMAND = "command"
    DISCARD_LINE = "discard_line"  # skipping the rest of an over-long line
    AUTH = "auth"  # one SASL response line (RFC 4954 §4)
    DATA = "data"  # message data after 354 (RFC 5321 §4.1.1.4)
    BDAT = "bdat"  # BDAT chunk octets (RFC 3030 §2)
    CLOSED = "closed"


BARE_NEWLINE_MODES: Final = ("reject", "normalize")
# VERB and ONEX are Sendmail's own: off unless asked for.
DEFAULT_EXTENSIONS: Final = ALL_EXTENSIONS - {Extension.SENDMAIL}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Limits and offered extensions for one listener."""

    max_line: int = MAX_COMMAND_LINE
    max_auth_line: int = MAX_AUTH_LINE
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE  # octets; 0 = unlimited
    # RFC 5321 §2.3.8: "reject" refuses a message with bare CR or LF; "normalize" turns a
    # bare LF into CRLF (bare CR is still refused).  Either way only CRLF.CRLF ends data.
    bare_newline: str = "reject"
    max_commands: int = DEFAULT_MAX_COMMANDS  # 0 = unlimited
    max_errors: int = DEFAULT_MAX_ERRORS  # 0 = unlimited
    # Service extensions; a disabled one is refused (502 for its command, 555 for its
    # MAIL/RCPT parameter).  BINARYMIME is only honoured with CHUNKING (RFC 3030 §3).
    extensions: frozenset[Extension] = DEFAULT_EXTENSIONS

    def __post_init__(self) -> None:
        if self.bare_newline not in BARE_NEWLINE_MODES:
            raise ValueError(f"bare_newline must be one of {BARE_NEWLINE_MODES}")
        if min(self.max_line, self.max_auth_line) < MIN_LINE_LIMIT:
            raise ValueError(f"line limits must be at least {MIN_LINE_LIMIT}")


class ServerEngine:
    """One SMTP server connection's wire state (RFC 5321 with its service extensions)."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig()
        self._extensions = self.config.extensions
        if Extension.CHUNKING not in self._extensions:
            self._extensions -= {Extension.BINARYMIME}
        self.state = State.GREETING
        self.closed = False
        self.tls = False  # set when a 220 answered STARTTLS
        self.authenticated = False
        self.extended = False  # EHLO (not HELO) accepted
        self._last_context: CommandContext | None = None  # see _context
        self._buffer = bytearray()
        self._eof = False
        self._mode = _Mode.COMMAND
        self._pending: Event | None = None
        self._after_reject: State | None = None
        self._discard_reply = replies.LINE_TOO_LONG
        self._commands = 0
        self._errors = 0
        # DATA reading (see _start_data) and BDAT reading (see _bdat_command)
        self._data = framing.DataReader(max_size=0, normalize=False)
        self._bdat_remaining = 0
        self._bdat_last = False
        self._bdat_refusal: Reply | None = None
        self._bdat_after: State | None = None
        self._reset_transaction()

    # -- public API --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if self._eof or self.closed:
            return
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_event(self) -> Event | NeedData:
        """Return the next event, or ``NEED_DATA`` when more bytes are needed."""
        if self._pending is not None:
            raise EngineError(f"reply to {self._pending!r} not sent yet")
        if self.closed:
            return ConnectionClosed()
        event = self._READERS[self._mode](self)
        if event is NEED_DATA:
            if not self._eof:
                return NEED_DATA
            event = ConnectionClosed()
        if isinstance(event, ConnectionClosed):
            self._close()
        else:
            self._pending = event
        return event

    def send(self, reply: Reply) -> bytes:
        """Serialize ``reply`` and apply its effect on the state of the event it answers."""
        if reply.code == replies.VERBOSE_CODE:
            return format_reply(reply)  # a VERB progress line; the real reply follows
        event, self._pending = self._pending, None
        if self.closed:
            pass  # nothing left to change; a late 421 is still written
        elif reply.code == 421:  # RFC 5321 §3.8: 421 closes the transmission channel
            self._close()
        elif event is None:
            self._on_unsolicited(reply)
        else:
            effect = self._EFFECTS.get(type(event))
            if effect is not None:
                effect(self, event, reply)
        return format_reply(reply)

    # -- effects of replies --------------------------------------------------------------

    def _on_unsolicited(self, reply: Reply) -> None:
        if self.state is not State.GREETING:
            raise EngineError(f"reply {reply.code} sent without an event")
        # RFC 5321 §3.1: 220 opens the session; 554 refuses it until QUIT.
        self.state = State.INITIAL if reply.code == 220 else State.REFUSED

    def _on_helo(self, event: Event, reply: Reply) -> None:
        if reply.code == 250 and isinstance(event, Helo):
            self._reset_transaction()  # RFC 5321 §4.1.4: EHLO implies RSET
            self.state = State.READY
            self.extended = event.extended

    def _on_mail(self, event: Event, reply: Reply) -> None:
        if reply.code == 250 and isinstance(event, MailFrom):
            self._reset_transaction()
            self.state = State.HAVE_MAIL
            self._body_type = event.params.body
            self._smtputf8 = event.params.smtputf8

    def _on_rcpt(self, _event: Event, reply: Reply) -> None:
        if reply.code in (250, 251):  # RFC 5321 §3.3, §3.4
            self.state = State.HAVE_RCPT

    def _on_data(self, _event: Event, reply: Reply) -> None:
        if reply.code == 354:  # RFC 5321 §4.1.1.4
            self._start_data()

    def _on_message(self, _event: Event, reply: Reply) -> None:
        self._end_transaction()  # RFC 5321 §4.1.1.4: the reply ends the transaction
        self._count_delivered(reply)

    def _count_delivered(self, reply: Reply) -> None:
        # max_commands bounds the commands between accepted messages (like Postfix's junk
        # command limit), so a client sending thousands of messages on one connection is
        # fine while one that only talks is cut off.
        if reply.code == 250:
            self._commands = 0

    def _on_bdat(self, event: Event, reply: Reply) -> None:
        if isinstance(event, BdatChunk) and event.last:
            self._end_transaction()
            self._count_delivered(reply)
        elif reply.code == 250:
            self.state = State.IN_BDAT
        else:
            self.state = State.BDAT_FAILED  # RFC 3030 §2: failed chunk, RSET needed

    def _on_rset(self, _event: Event, reply: Reply) -> None:
        if reply.code == 250:
            self._end_transaction()

    def _on_quit(self, _event: Event, reply: Reply) -> None:
        if reply.code == 221:
            self._close()

    def _on_starttls(self, _event: Event, reply: Reply) -> None:
        if reply.code == 220:
            self._buffer.clear()  # CVE-2011-0411: nothing sent in plaintext survives
            self._reset_transaction()
            self.state = State.INITIAL  # RFC 3207 §4.2: forget EHLO, AUTH, everything
            self.extended = False
            self.authenticated = False
            self.tls = True

    def _on_auth(self, _event: Event, reply: Reply) -> None:
        if reply.code == 334:  # RFC 4954 §4: the next line is a SASL response
            self._mode = _Mode.AUTH
        elif reply.code == 235:
            self.authenticated = True

    def _on_rejected(self, _event: Event, _reply: Reply) -> None:
        if self._after_reject is State.READY:
            self._end_transaction()
        elif self._after_reject is not None:
            self.state = self._after_reject
        self._after_reject = None

    _EFFECTS: Final[dict[type, Callable[[ServerEngine, Event, Reply], None]]] = {
        Helo: _on_helo,
        MailFrom: _on_mail,
        RcptTo: _on_rcpt,
        Data: _on_data,
        MessageData: _on_message,
        BdatChunk: _on_bdat,
        Rset: _on_rset,
        Quit: _on_quit,
        StartTls: _on_starttls,
        Auth: _on_auth,
        AuthResponse: _on_auth,
        Rejected: _on_rejected,
    }

    def _reset_transaction(self) -> None:
        self._body_type = "7BIT"
        self._smtputf8 = False
        self._message_size = 0
        self._bdat_pending_cr = False

    def _end_transaction(self) -> None:
        self._reset_transaction()
        greeted = self.state not in (State.GREETING, State.INITIAL, State.REFUSED)
        self.state = State.READY if greeted else self.state

    def _close(self) -> None:
        self.closed = True
        self._mode = _Mode.CLOSED
        self._buffer.clear()

    def _reject(self, reply: Reply, after: State | None = None) -> Rejected:
        """A Rejected event; counts toward max_errors (then 421, RFC 5321 §4.2.2)."""
        self._errors += 1
        limit = self.config.max_errors
        if limit and self._errors >= limit:
            return Rejected(replies.TOO_MANY_ERRORS)
        self._after_reject = after
        return Rejected(reply)

    # -- lines ---------------------------------------------------------------------------

    def _take_line(self, limit: int, too_long: Reply) -> bytes | None:
        """One line up to LF (LF removed), or None; over-long lines switch to discarding."""
        buf = self._buffer
        end = buf.find(b"\n", 0, limit)
        if end >= 0:
            line = bytes(buf[:end])
            del buf[: end + 1]
            return line
        if len(buf) >= limit:
            self._discard_reply = too_long
            self._mode = _Mode.DISCARD_LINE
        return None

    def _read_discard(self) -> Event | NeedData:
        """RFC 5321 §4.5.3.1.4: skip to the end of an over-long line, then refuse it."""
        buf = self._buffer
        end = buf.find(b"\n")
        if end < 0:
            buf.clear()  # never buffer an over-long line
            return NEED_DATA
        del buf[: end + 1]
        self._mode = _Mode.COMMAND
        self._commands += 1
        return self._reject(self._discard_reply)

    def _read_auth(self) -> Event | NeedData:
        line = self._take_line(self.config.max_auth_line, replies.AUTH_LINE_TOO_LONG)
        if line is None:
            return self._read_discard() if self._mode is _Mode.DISCARD_LINE else NEED_DATA
        self._mode = _Mode.COMMAND
        if not line.endswith(b"\r") or b"\r" in line[:-1]:
            return self._reject(replies.BARE_NEWLINE_COMMAND)  # RFC 5321 §2.3.8
        return AuthResponse(line[:-1])

    def _read_command(self) -> Event | NeedData:
        line = self._take_line(self.config.max_line, replies.LINE_TOO_LONG)
        if line is None:
            return self._read_discard() if self._mode is _Mode.DISCARD_LINE else NEED_DATA
        self._commands += 1
        if self.config.max_commands and self._commands > self.config.max_commands:
            return Rejected(replies.TOO_MANY_COMMANDS)
        if not line.endswith(b"\r") or b"\r" in line[:-1]:
            return self._reject(replies.BARE_NEWLINE_COMMAND)  # RFC 5321 §2.3.8
        try:
            text = line[:-1].decode("utf-8")
        except UnicodeDecodeError:
            return self._reject(replies.INVALID_CHARACTERS)
        if _CONTROL_RE.search(text):
            return self._reject(replies.INVALID_CHARACTERS)
        verb, _, args = text.partition(" ")
        return self._dispatch(verb.upper(), args)

    def _dispatch(self, verb: str, args: str) -> Event | NeedData:
        if verb in commands.FORBIDDEN:
            return Rejected(replies.FORBIDDEN_COMMAND)
        if verb in commands.OBSOLETE:
            return self._reject(replies.NOT_IMPLEMENTED)  # RFC 5321 Appendix F
        if verb == "BDAT":
            return self._bdat_command(args)
        parser = commands.PARSERS.get(verb)
        if parser is None:
            return self._reject(replies.UNKNOWN_COMMAND)
        refusal = self._refusal(verb)
        if refusal is not None:
            return self._reject(refusal)
        try:
            return parser(args, self._context())
        except CommandError as exc:
            return self._reject(exc.reply)

    def _refusal(self, verb: str) -> Reply | None:
        """The reply refusing ``verb`` now (disabled, out of sequence), or None."""
        extension = commands.VERB_EXTENSIONS.get(verb)
        if extension is not None and extension not in self._extensions:
            return replies.NOT_IMPLEMENTED  # RFC 5321 §4.2.4
        if verb not in ALLOWED[self.state]:
            return DENIED.get((self.state, verb), replies.BAD_SEQUENCE)
        if verb in commands.EHLO_ONLY and not self.extended:
            return replies.EHLO_FIRST  # service extensions need EHLO (RFC 5321 §2.2.1)
        if verb == "AUTH" and self.authenticated:
            return replies.ALREADY_AUTHENTICATED  # RFC 4954 §4
        if verb == "DATA" and self._body_type == "BINARYMIME":
            return replies.BINARYMIME_NEEDS_BDAT  # RFC 3030 §3
        return None

    def _context(self) -> CommandContext:
        context = self._last_context
        if (
            context is None
            or context.extended is not self.extended
            or context.smtputf8 is not self._smtputf8
        ):  # the extensions and the size limit are fixed for the session
            context = self._last_context = CommandContext(
                extended=self.extended,
                extensions=self._extensions,
                max_message_size=self.config.max_message_size,
                smtputf8=self._smtputf8,
            )
        return context

    # -- DATA (RFC 5321 §4.1.1.4, §4.5.2) ------------------------------------------------

    def _start_data(self) -> None:
        self._buffer[0:0] = framing.LINE_START  # see DataReader
        self._data = framing.DataReader(
            max_size=self.config.max_message_size,
            normalize=self.config.bare_newline == "normalize",
        )
        self._mode = _Mode.DATA

    def _read_data(self) -> Event | NeedData:
        result = self._data.read(self._buffer)
        if result is None:
            return NEED_DATA
        self._mode = _Mode.COMMAND
        if isinstance(result, Reply):
            return self._reject(result, after=State.READY)
        return MessageData(result)

    # -- BDAT (RFC 3030 §2) --------------------------------------------------------------

    def _bdat_command(self, args: str) -> Event | NeedData:
        try:
            size, last = commands.parse_bdat(args)
        except CommandError as exc:
            return self._reject(exc.reply)  # size unknown: nothing can be consumed
        self._bdat_remaining = size
        self._bdat_last = last
        self._bdat_refusal = self._refusal("BDAT")
        self._bdat_after = None
        self._mode = _Mode.BDAT
        maximum = self.config.max_message_size
        if self._bdat_refusal is None:
            self._message_size += size
            if maximum and self._message_size > maximum:
                self._bdat_refusal = replies.MESSAGE_TOO_BIG  # RFC 1870 §6.3
            self._bdat_after = State.READY if last else State.BDAT_FAILED
        return self._read_bdat()

    def _read_bdat(self) -> Event | NeedData:
        """Collect (or, for a refused chunk, discard) exactly the announced octets."""
        buf = self._buffer
        if self._bdat_refusal is not None:
            taken = min(len(buf), self._bdat_remaining)
            del buf[:taken]  # RFC 3030 §2: refused chunks are consumed, not parsed
            self._bdat_remaining -= taken
            if self._bdat_remaining:
                return NEED_DATA
            self._mode = _Mode.COMMAND
            return self._reject(self._bdat_refusal, after=self._bdat_after)
        if len(buf) < self._bdat_remaining:
            return NEED_DATA
        chunk = bytes(buf[: self._bdat_remaining])
        del buf[: self._bdat_remaining]
        self._mode = _Mode.COMMAND
        return self._bdat_chunk(chunk)

    def _bdat_chunk(self, chunk: bytes) -> Event:
        """Apply the bare CR/LF rule to 7BIT/8BITMIME chunks; BINARYMIME is sent as is."""
        last = self._bdat_last
        if self._body_type == "BINARYMIME":
            return BdatChunk(chunk, last)  # RFC 3030 §3: binary octets, no line structure
        check = framing.check_chunk(
            chunk,
            pending_cr=self._bdat_pending_cr,
            last=last,
            normalize=self.config.bare_newline == "normalize",
        )
        self._bdat_pending_cr = check.pending_cr
        if isinstance(check.data, Reply):
            return self._reject(check.data, after=State.READY if last else State.BDAT_FAILED)
        return BdatChunk(check.data, last)

    def _read_closed(self) -> Event | NeedData:
        return ConnectionClosed()

    _READERS: Final[dict[_Mode, Callable[[ServerEngine], Event | NeedData]]] = {
        _Mode.COMMAND: _read_command,
        _Mode.DISCARD_LINE: _read_discard,
        _Mode.AUTH: _read_auth,
        _Mode.DATA: _read_data,
        _Mode.BDAT: _read_bdat,
        _Mode.CLOSED: _read_closed,
    }
