"""The IMAP4rev1 server wire as a pure state machine (sans-IO, h11 style).

    engine = ImapEngine(ImapConfig())
    out = engine.send(greeting)              # UntaggedStatus(Status.OK, ...)
    engine.receive_data(chunk)               # b"" when the peer closed
    event = engine.next_event()              # an Event, or NEED_DATA
    out = engine.send(response)              # any number of responses per event

Events and what the session answers:
- `Command(tag, command)`: untagged data as it likes, then one `Tagged` with that tag. For
  AUTHENTICATE and IDLE it may first send a `Continuation`; the engine then reads the
  next line raw as `AuthenticateResponse(line)` (until the tagged response) or `Done(tag)`.
- `ParseError(tag, response)` and `LiteralPending(response)`: send `event.response` as is.
  The first is a BAD/NO (or BYE) the grammar or a limit decided; the second is the
  "+ Ready for literal data" a synchronizing literal needs (RFC 3501 §7.5) - it is an
  event, not output the engine writes itself, so the one driver loop (`net/driver.py`)
  stays the only writer and every byte goes out through `send`.
- `ConnectionClosed()`: the peer closed; nothing to send.

Literals (RFC 3501 §4.3, RFC 7888): a command is framed into text lines and literal data
(see `lexer`) before it is parsed. The size a literal announces is checked before any of its
bytes are buffered: APPEND up to `max_message_size`, others up to `max_literal`; under
LITERAL- (the default) a non-synchronizing literal over 4096 octets is refused (RFC 7888
§5). A refused synchronizing literal is answered at once (NO [TOOBIG] for APPEND, else BAD)
and never sent by the client. A refused non-synchronizing literal is skipped without being
buffered (RFC 7888 §4 option 1) together with the rest of its command, then answered BAD
(with [TOOBIG] for APPEND); one larger than `max_discard` ends the connection with
BYE [TOOBIG] (§4 option 2). A line over `max_line` without CRLF also ends it with BYE.

STARTTLS: after a tagged OK to STARTTLS the engine drops everything buffered and ignores
input until `tls_established()` (RFC 3501 §6.2.1, CVE-2011-0411).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from pillarbox.imap import commands as c
from pillarbox.imap.lexer import LITERAL_MARK
from pillarbox.imap.parser import TAG, Bad, parse_command
from pillarbox.imap.responses import (
    TOOBIG,
    Code,
    Continuation,
    Response,
    Status,
    Tagged,
    UntaggedStatus,
)

# RFC 7162 §4: clients may send lines of 8192 octets and more (long UID sets); 64 KiB of
# command text (literals excluded) covers every real client.
MAX_COMMAND_LINE: Final = 65536
# Literals in commands other than APPEND carry names, passwords and search strings.
MAX_LITERAL: Final = 65536
# APPEND carries a whole message: the server's message size limit (DESIGN: 35 MiB).
MAX_MESSAGE_SIZE: Final = 36700160
# RFC 7888 §5: under LITERAL- a non-synchronizing literal is at most 4096 octets.
LITERAL_MINUS_MAX: Final = 4096
# RFC 7888 §4: a refused non-synchronizing literal is read and dropped up to this size;
# beyond it the connection is closed rather than drain a client's upload.
MAX_DISCARD: Final = 2 * MAX_MESSAGE_SIZE
# RFC 3501 §6.2.2: one SASL response line (PLAIN with long fields, base64).
MAX_AUTH_LINE: Final = 16384

READY: Final = Continuation("Ready for literal data")
LINE_TOO_LONG: Final = UntaggedStatus(Status.BYE, "Command line too long")
LITERAL_TOO_BIG: Final = UntaggedStatus(Status.BYE, "Literal too large", TOOBIG)
_APPEND_PREFIX: Final = re.compile(rb"[^ ]+ APPEND ", re.IGNORECASE)
_DONE: Final = re.compile(rb"DONE", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ImapConfig:
    """Wire limits; the defaults are the named constants above."""

    max_line: int = MAX_COMMAND_LINE
    max_literal: int = MAX_LITERAL
    max_message_size: int = MAX_MESSAGE_SIZE
    max_discard: int = MAX_DISCARD
    literal_minus: bool = True  # advertise LITERAL- (True) or LITERAL+ (False), RFC 7888 §5

    @property
    def literal_capability(self) -> str:
        return "LITERAL-" if self.literal_minus else "LITERAL+"


# --- events -----------------------------------------------------------------------


class _Sentinel(enum.Enum):
    NEED_DATA = enum.auto()


# Returned by `ImapEngine.next_event` when no complete command is buffered.
NEED_DATA: Final = _Sentinel.NEED_DATA
NeedData = Literal[_Sentinel.NEED_DATA]


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command; answer with untagged data and one Tagged(tag, ...)."""

    tag: str
    command: c.Command


@dataclass(frozen=True, slots=True)
class ParseError:
    """A command refused by grammar or limits: send `response` (tag None: untagged)."""

    tag: str | None
    response: Tagged | UntaggedStatus


@dataclass(frozen=True, slots=True)
class LiteralPending:
    """A synchronizing literal was announced within limits: send `response` ("+ ...")."""

    response: Continuation = READY


@dataclass(frozen=True, slots=True)
class AuthenticateResponse:
    """One client line during AUTHENTICATE (RFC 3501 §6.2.2), without CRLF: base64, or
    "*" to cancel (see `pillarbox.auth.sasl.decode_b64_response`)."""

    tag: str
    line: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Done:
    """The DONE line ending IDLE (RFC 2177 §3): answer Tagged(tag, OK)."""

    tag: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection."""


Event = Command | ParseError | LiteralPending | AuthenticateResponse | Done | ConnectionClosed


class _Mode(enum.Enum):
    COMMANDS = "commands"
    AUTHENTICATE = "authenticate"  # after a Continuation to AUTHENTICATE
    IDLE = "idle"  # after a Continuation to IDLE
    TLS_PENDING = "tls-pending"  # after OK to STARTTLS, until tls_established()
    CLOSED = "closed"


class ImapEngine:
    """One IMAP server connection's wire state; never does I/O."""

    def __init__(self, config: ImapConfig | None = None, *, tls_active: bool = False) -> None:
        self.config = config or ImapConfig()
        self._tls_active = tls_active
        self._mode = _Mode.COMMANDS
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already searched for LF
        self._eof = False
        self._current: Command | None = None  # awaiting its tagged response
        self._bye_sent = False
        self._continuation_due = False  # a LiteralPending awaits its Continuation
        # the command being framed
        self._parts: list[bytes] = []
        self._text_size = 0
        self._literal_size = 0
        self._literal_due: int | None = None  # octets of the announced literal
        self._discard = 0  # octets still to drop of a refused literal
        self._rejection: ParseError | None = None  # the command is refused once framed

    # --- views --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._mode is _Mode.CLOSED

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def tls_pending(self) -> bool:
        """True after OK to STARTTLS: the driver must run the TLS handshake now."""
        return self._mode is _Mode.TLS_PENDING

    @property
    def idling(self) -> bool:
        return self._mode is _Mode.IDLE

    @property
    def current(self) -> Command | None:
        """The command whose tagged response has not been sent yet."""
        return self._current

    def tls_established(self) -> None:
        """The driver finished the TLS handshake after STARTTLS."""
        if self._mode is not _Mode.TLS_PENDING:
            raise RuntimeError("no STARTTLS in progress")
        self._tls_active = True
        self._buffer.clear()
        self._scanned = 0
        self._mode = _Mode.COMMANDS

    # --- input ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; b"" means the peer closed its side."""
        if not data:
            self._eof = True
        elif self._mode not in (_Mode.TLS_PENDING, _Mode.CLOSED):
            # RFC 3501 §6.2.1 / CVE-2011-0411: nothing sent before TLS is read after it.
            self._buffer += data

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA until enough bytes are buffered."""
        if self._mode is _Mode.CLOSED:
            raise RuntimeError("the connection is closed")
        if self._current is not None and self._mode is _Mode.COMMANDS:
            raise RuntimeError(f"send the tagged response to {self._current.tag!r} first")
        if self._continuation_due:
            raise RuntimeError("send the LiteralPending response first")
        event = self._advance() if self._mode is not _Mode.TLS_PENDING else NEED_DATA
        if event is NEED_DATA and self._eof:
            self._mode = _Mode.CLOSED
            return ConnectionClosed()
        if isinstance(event, Command):
            self._current = event
        elif isinstance(event, LiteralPending):
            self._continuation_due = True
        return event

    def _advance(self) -> Event | NeedData:
        while True:
            if self._discard:
                dropped = min(self._discard, len(self._buffer))
                del self._buffer[:dropped]
                self._discard -= dropped
                if self._discard:
                    return NEED_DATA
            if self._literal_due is not None:
                if len(self._buffer) < self._literal_due:
                    return NEED_DATA
                self._parts.append(bytes(self._buffer[: self._literal_due]))
                del self._buffer[: self._literal_due]
                self._literal_due = None
            line = self._take_line()
            if line is None:
                return NEED_DATA
            if isinstance(line, ParseError):
                return line
            if self._mode is _Mode.IDLE:
                return self._idle_line(line)
            if self._mode is _Mode.AUTHENTICATE:
                return self._auth_line(line)
            event = self._command_line(line)
            if event is not None:
                return event

    def _take_line(self) -> bytes | ParseError | None:
        """The next line without CRLF; a BYE when it cannot end within the limit."""
        limit = self.config.max_line if self._mode is _Mode.COMMANDS else MAX_AUTH_LINE
        end = self._buffer.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buffer)
            if self._text_size + len(self._buffer) > limit:
                return self._bye(LINE_TOO_LONG)
            return None
        self._scanned = 0
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if self._text_size + len(line) > limit:
            return self._bye(LINE_TOO_LONG)
        if line.endswith(b"\r"):
            line = line[:-1]
        elif self._mode is _Mode.COMMANDS:
            self._refuse(self._tag_of(line), "Lines must end with CRLF")
        if b"\r" in line and self._mode is _Mode.COMMANDS:
            self._refuse(self._tag_of(line), "Bare CR in command")  # RFC 3501 §9 CHAR8
        return line

    def _bye(self, response: UntaggedStatus) -> ParseError:
        self._buffer.clear()
        self._scanned = 0
        return ParseError(None, response)

    def _tag_of(self, line: bytes) -> str | None:
        first = self._parts[0] if self._parts else line
        found = TAG.match(first)
        if found is None or first[found.end() : found.end() + 1] != b" ":
            return None
        return found.group().decode("ascii")

    def _refuse(self, tag: str | None, text: str, code: Code | None = None) -> None:
        """Mark the command being framed as refused (the first reason wins)."""
        if self._rejection is not None:
            return
        if tag is None:
            self._rejection = ParseError(None, UntaggedStatus(Status.BAD, text, code))
        else:
            self._rejection = ParseError(tag, Tagged(tag, Status.BAD, text, code))

    # --- commands and literals ------------------------------------------------------

    def _command_line(self, line: bytes) -> Event | None:
        """Add a line to the command being framed; an event once it is complete."""
        self._parts.append(line)
        self._text_size += len(line)
        marker = LITERAL_MARK.search(line)
        if marker is None:
            return self._finish_command()
        size = int(marker.group(2))
        synchronizing = not marker.group(3)
        is_append = _APPEND_PREFIX.match(self._parts[0]) is not None
        self._check_literal(size, synchronizing, is_append)
        if self._rejection is not None:
            if synchronizing:  # RFC 3501 §7.5: the client waits and sends nothing
                return self._finish_command()
            if size > self.config.max_discard:
                self._reset_command()
                return self._bye(LITERAL_TOO_BIG)
            self._discard = size
            self._parts.append(b"")  # keeps text/literal alternation
            return None
        self._literal_size += size
        self._literal_due = size
        return LiteralPending() if synchronizing else None

    def _check_literal(self, size: int, synchronizing: bool, is_append: bool) -> None:
        tag = self._tag_of(self._parts[0])
        limit = self.config.max_message_size if is_append else self.config.max_literal
        if self._literal_size + size > limit:
            if is_append and synchronizing and tag is not None:
                # RFC 4469 §4 / RFC 7889: the message is over the limit, nothing is read.
                self._rejection = ParseError(
                    tag, Tagged(tag, Status.NO, "Message too large", TOOBIG)
                )
                return
            self._refuse(tag, "Literal too large", TOOBIG if is_append else None)
        elif not synchronizing and self.config.literal_minus and size > LITERAL_MINUS_MAX:
            # RFC 7888 §5: LITERAL- refuses larger non-synchronizing literals (APPEND: TOOBIG).
            self._refuse(tag, "Non-synchronizing literal too large", TOOBIG if is_append else None)

    def _finish_command(self) -> Event:
        parts, rejection = self._parts, self._rejection
        self._reset_command()
        if rejection is not None:
            return rejection
        result = parse_command(parts)
        if isinstance(result, Bad):
            return ParseError(result.tag, result.response)
        return Command(result.tag, result.command)

    def _reset_command(self) -> None:
        self._parts = []
        self._text_size = 0
        self._literal_size = 0
        self._rejection = None

    def _idle_line(self, line: bytes) -> Event:
        """RFC 2177 §3: only DONE ends IDLE; anything else is BAD and also ends it."""
        assert self._current is not None
        tag = self._current.tag
        self._mode = _Mode.COMMANDS  # the session now sends the tagged response
        if _DONE.fullmatch(line):
            return Done(tag)
        return ParseError(tag, Tagged(tag, Status.BAD, "Expected DONE"))

    def _auth_line(self, line: bytes) -> Event:
        assert self._current is not None
        self._mode = _Mode.COMMANDS  # until the session sends another Continuation
        return AuthenticateResponse(self._current.tag, line)

    # --- output -----------------------------------------------------------------------

    def send(self, response: Response) -> bytes:
        """The bytes of `response`; follows the protocol state it implies. After the
        connection closed, responses are still serialised (a driver may drop them)."""
        if self._mode is _Mode.CLOSED:
            return response.to_bytes()
        if isinstance(response, Continuation):
            self._on_continuation()
        elif isinstance(response, Tagged):
            self._on_tagged(response)
        elif isinstance(response, UntaggedStatus) and response.status is Status.BYE:
            self._bye_sent = True
            if not isinstance(self._current, Command) or not isinstance(
                self._current.command, c.Logout
            ):
                self._mode = _Mode.CLOSED
        return response.to_bytes()

    def _on_continuation(self) -> None:
        if self._continuation_due:
            self._continuation_due = False
            return
        command = self._current.command if self._current is not None else None
        if isinstance(command, c.Authenticate):
            self._mode = _Mode.AUTHENTICATE
        elif isinstance(command, c.Idle):
            self._mode = _Mode.IDLE
        else:
            raise RuntimeError("no command awaits a continuation")

    def _on_tagged(self, response: Tagged) -> None:
        current = self._current
        if current is None or response.tag != current.tag:
            return  # the answer to a ParseError
        self._current = None
        if self._mode in (_Mode.AUTHENTICATE, _Mode.IDLE):
            self._mode = _Mode.COMMANDS
        if isinstance(current.command, c.StartTls) and response.status is Status.OK:
            # RFC 3501 §6.2.1: TLS negotiation begins right after the tagged OK.
            self._buffer.clear()
            self._scanned = 0
            self._mode = _Mode.TLS_PENDING
        elif isinstance(current.command, c.Logout) or self._bye_sent:
            self._mode = _Mode.CLOSED
