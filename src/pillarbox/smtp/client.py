"""The SMTP client engine for outbound mail (pure, sans-IO).

One `ClientEngine` per connection. The driver feeds it the server's bytes
(`receive_data`), sends what `data_to_send` returns, and reacts to `next_event`:
`Ready` (the session is set up and idle: give it a message or `quit`), `StartTls`
(upgrade the stream, then `tls_started`), `MessageDone` (per-recipient results),
`SessionFailed` (the connection is useless: close it) and `Closed`.

What it does on the wire: EHLO with HELO fallback (RFC 5321 §3.2), opportunistic STARTTLS
(RFC 3207), AUTH PLAIN/LOGIN (RFC 4954, RFC 4616), PIPELINING (RFC 2920), SIZE (RFC 1870),
8BITMIME (RFC 6152, downgrading when the peer lacks it), SMTPUTF8 (RFC 6531), DSN
parameters (RFC 3461), dot-stuffing and CRLF-only data (RFC 5321 §4.5.2, §2.3.8). Several
messages can go over one connection; each is one transaction.
"""

from __future__ import annotations

import base64
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pillarbox.smtp.client_wire import (
    AUTH_UNAVAILABLE,
    CONNECTION_LOST,
    TLS_FAILED,
    TLS_REQUIRED,
    Capabilities,
    MessageOutcome,
    OutboundMessage,
    ProtocolError,
    RecipientResult,
    ReplyReader,
    ServerReply,
    command_line,
    encode_data,
    mail_command,
    parse_ehlo,
    prepare,
    rcpt_command,
    synthetic,
)

# RFC 5321 §4.5.3.2: client timeouts, in seconds, by what we wait for.
TIMEOUT_GREETING: Final = 300.0  # §4.5.3.2.1 initial 220 message: 5 minutes
TIMEOUT_MAIL: Final = 300.0  # §4.5.3.2.2 MAIL command: 5 minutes
TIMEOUT_RCPT: Final = 300.0  # §4.5.3.2.3 RCPT command: 5 minutes
TIMEOUT_DATA: Final = 120.0  # §4.5.3.2.4 DATA initiation: 2 minutes
TIMEOUT_DATA_BLOCK: Final = 180.0  # §4.5.3.2.5 each data block sent: 3 minutes
TIMEOUT_DATA_END: Final = 600.0  # §4.5.3.2.6 DATA termination: 10 minutes
TIMEOUT_COMMAND: Final = 300.0  # other commands (EHLO, STARTTLS, AUTH, RSET, QUIT)


@dataclass(frozen=True, slots=True)
class Credentials:
    """AUTH credentials for a smarthost."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    helo_name: str  # our host name, for EHLO/HELO
    starttls: bool = True  # try STARTTLS when offered (the driver has a TLS context)
    require_tls: bool = False  # fail the session when STARTTLS is not available
    credentials: Credentials | None = None
    allow_plaintext_auth: bool = False  # AUTH without TLS (loopback smarthost only)


# -- events -------------------------------------------------------------------------------


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class Ready:
    capabilities: Capabilities
    tls: bool


@dataclass(frozen=True, slots=True)
class StartTls:
    """Upgrade the connection now (the server said 220 to STARTTLS), then `tls_started`."""


@dataclass(frozen=True, slots=True)
class MessageDone:
    outcome: MessageOutcome


@dataclass(frozen=True, slots=True)
class SessionFailed:
    reply: ServerReply  # what the server (or we) said; transient or permanent


@dataclass(frozen=True, slots=True)
class Closed:
    pass


ClientEvent = Ready | StartTls | MessageDone | SessionFailed | Closed


# -- the state machine --------------------------------------------------------------------


class State(enum.Enum):
    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    TLS_UPGRADE = "tls-upgrade"
    AUTH = "auth"
    READY = "ready"
    TRANSACTION = "transaction"
    BODY = "body"
    RSET = "rset"
    QUIT = "quit"
    CLOSED = "closed"


class _Step(enum.Enum):
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


_TIMEOUTS: Final[dict[State, float]] = {
    State.GREETING: TIMEOUT_GREETING,
    State.BODY: TIMEOUT_DATA_END,
}


@dataclass(slots=True)
class _Transaction:
    message: OutboundMessage
    commands: deque[tuple[_Step, bytes]]  # not yet sent
    expected: deque[_Step] = field(default_factory=deque)  # sent, reply outstanding
    mail: ServerReply | None = None
    rcpts: list[ServerReply] = field(default_factory=list)
    data: ServerReply | None = None
    final: ServerReply | None = None  # the DATA refusal, reported after RSET
    abandoned: bool = False  # DATA got 354 but no recipient was accepted: send "." only

    def results(self, final: ServerReply | None) -> tuple[RecipientResult, ...]:
        """Each recipient's outcome: the final reply where its RCPT was accepted."""
        out = []
        for index, recipient in enumerate(self.message.recipients):
            reply = self.mail if self.mail is not None and not self.mail.positive else None
            if reply is None and index < len(self.rcpts):
                reply = self.rcpts[index]
                if reply.positive:
                    reply = final or CONNECTION_LOST
            out.append(RecipientResult(recipient.address, reply or CONNECTION_LOST))
        return tuple(out)

    @property
    def accepted(self) -> bool:
        return any(reply.positive for reply in self.rcpts)


class ClientEngine:
    """One outbound SMTP connection's wire state."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.state = State.GREETING
        self.tls = False
        self.capabilities = Capabilities()
        self._reader = ReplyReader()
        self._out = bytearray()
        self._events: deque[ClientEvent] = deque()
        self._txn: _Transaction | None = None
        self._auth_lines: deque[bytes] = deque()
        self._authenticated = False
        self._tls_tried = False

    # -- driver interface ----------------------------------------------------------------

    @property
    def timeout(self) -> float:
        """Seconds to wait for the server's next reply in this state (RFC 5321 §4.5.3.2)."""
        if self.state is State.TRANSACTION and self._txn is not None and self._txn.expected:
            return {_Step.MAIL: TIMEOUT_MAIL, _Step.RCPT: TIMEOUT_RCPT, _Step.DATA: TIMEOUT_DATA}[
                self._txn.expected[0]
            ]
        return _TIMEOUTS.get(self.state, TIMEOUT_COMMAND)

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def receive_data(self, data: bytes) -> None:
        if not data:
            self.connection_lost()
            return
        if self.state is not State.CLOSED:
            self._reader.feed(data)

    def connection_lost(self) -> None:
        if self.state is State.QUIT:
            self._close()
        elif self.state is not State.CLOSED:
            self._fail(CONNECTION_LOST)

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> ClientEvent | NeedData:
        while not self._events:
            if self.state in (State.CLOSED, State.TLS_UPGRADE, State.READY):
                return NEED_DATA
            try:
                reply = self._reader.next_reply()
            except ProtocolError as error:
                self._fail(synthetic(421, "4.5.0", f"Protocol error from server: {error}"))
                continue
            if reply is None:
                return NEED_DATA
            _HANDLERS[self.state](self, reply)
        return self._events.popleft()

    def tls_started(self) -> None:
        """The stream is now TLS: forget what came before and EHLO again (RFC 3207 §4.2)."""
        assert self.state is State.TLS_UPGRADE
        self.tls = True
        self._reader = ReplyReader()
        self.capabilities = Capabilities()
        self._send(f"EHLO {self.settings.helo_name}", State.EHLO)

    def tls_failed(self) -> None:
        self._fail(TLS_FAILED)

    def abort(self, reply: ServerReply) -> None:
        """The driver lost the connection or timed out: end with `reply`."""
        if self.state is not State.CLOSED:
            self._fail(reply)

    def start_message(self, message: OutboundMessage) -> None:
        """Begin one transaction; `MessageDone` reports each recipient's result."""
        if self.state is not State.READY:
            raise RuntimeError(f"start_message in state {self.state.value}")
        prepared = prepare(message, self.capabilities)
        if isinstance(prepared, ServerReply):
            results = tuple(RecipientResult(r.address, prepared) for r in message.recipients)
            self._events.append(MessageDone(MessageOutcome(results)))
            return
        caps = self.capabilities
        commands: deque[tuple[_Step, bytes]] = deque([(_Step.MAIL, mail_command(prepared, caps))])
        commands.extend((_Step.RCPT, rcpt_command(r, caps)) for r in prepared.recipients)
        commands.append((_Step.DATA, b"DATA\r\n"))
        self._txn = _Transaction(prepared, commands)
        self.state = State.TRANSACTION
        self._send_commands()

    def quit(self) -> None:
        if self.state is State.READY:
            self._send("QUIT", State.QUIT)
        elif self.state is not State.QUIT:
            self._close()

    # -- helpers -------------------------------------------------------------------------

    def _send(self, line: str, state: State) -> None:
        self._out += command_line(line)
        self.state = state

    def _close(self) -> None:
        self.state = State.CLOSED
        self._events.append(Closed())

    def _fail(self, reply: ServerReply) -> None:
        """The session is over: report the transaction in flight, then the failure."""
        if self._txn is not None:
            failed = tuple(RecipientResult(r.address, reply) for r in self._txn.message.recipients)
            self._events.append(MessageDone(MessageOutcome(failed)))
            self._txn = None
        if self.state not in (State.CLOSED, State.TLS_UPGRADE) and reply.code != 421:
            self._out += b"QUIT\r\n"  # RFC 5321 §3.8: end politely where the server can hear
        self.state = State.CLOSED
        self._events.append(SessionFailed(reply))

    def _ready(self) -> None:
        self.state = State.READY
        self._events.append(Ready(self.capabilities, self.tls))

    # -- greeting, EHLO, STARTTLS, AUTH ----------------------------------------------------

    def _on_greeting(self, reply: ServerReply) -> None:
        if reply.code != 220:
            self._fail(reply)  # RFC 5321 §3.1: 554 (no service) or 421
            return
        self._send(f"EHLO {self.settings.helo_name}", State.EHLO)

    def _on_ehlo(self, reply: ServerReply) -> None:
        if reply.code == 250:
            self.capabilities = parse_ehlo(reply)
            self._after_hello()
        elif reply.code == 421 or self.tls:
            self._fail(reply)
        else:  # RFC 5321 §3.2: a server that refuses EHLO gets HELO
            self._send(f"HELO {self.settings.helo_name}", State.HELO)

    def _on_helo(self, reply: ServerReply) -> None:
        if reply.code != 250:
            self._fail(reply)
            return
        self.capabilities = Capabilities()
        self._after_hello()

    def _after_hello(self) -> None:
        settings, caps = self.settings, self.capabilities
        if not self.tls and settings.starttls and caps.starttls and not self._tls_tried:
            self._tls_tried = True
            self._send("STARTTLS", State.STARTTLS)  # RFC 3207 §4
        elif settings.require_tls and not self.tls:
            self._fail(TLS_REQUIRED)
        elif settings.credentials is not None and not self._authenticated:
            self._start_auth(settings.credentials)
        else:
            self._ready()

    def _on_starttls(self, reply: ServerReply) -> None:
        if reply.code == 220:
            self.state = State.TLS_UPGRADE
            self._events.append(StartTls())
        elif reply.code == 421 or self.settings.require_tls:
            self._fail(reply)
        else:
            self._after_hello()  # opportunistic: carry on in plaintext

    def _start_auth(self, credentials: Credentials) -> None:
        """RFC 4954 §4: AUTH PLAIN with an initial response (RFC 4616), else LOGIN."""
        mechanisms = self.capabilities.auth
        if not (self.tls or self.settings.allow_plaintext_auth):
            self._fail(AUTH_UNAVAILABLE)
        elif "PLAIN" in mechanisms:
            token = f"\0{credentials.username}\0{credentials.password}".encode()
            self._send("AUTH PLAIN " + base64.b64encode(token).decode("ascii"), State.AUTH)
        elif "LOGIN" in mechanisms:
            self._auth_lines = deque(
                base64.b64encode(value.encode()) + b"\r\n"
                for value in (credentials.username, credentials.password)
            )
            self._send("AUTH LOGIN", State.AUTH)
        else:
            self._fail(AUTH_UNAVAILABLE)

    def _on_auth(self, reply: ServerReply) -> None:
        if reply.code == 334:
            # RFC 4954 §4: answer each challenge; "*" cancels when we have nothing left.
            self._out += self._auth_lines.popleft() if self._auth_lines else b"*\r\n"
        elif reply.code == 235:
            self._authenticated = True
            self._auth_lines.clear()
            self._ready()
        else:
            self._auth_lines.clear()
            self._fail(reply)

    # -- the mail transaction --------------------------------------------------------------

    def _send_commands(self) -> None:
        txn = self._txn
        assert txn is not None
        # RFC 2920 §3.1: with PIPELINING, MAIL, every RCPT and DATA go in one group.
        while txn.commands and (self.capabilities.pipelining or not txn.expected):
            step, line = txn.commands.popleft()
            self._out += line
            txn.expected.append(step)

    def _on_transaction(self, reply: ServerReply) -> None:
        txn = self._txn
        assert txn is not None
        if reply.code == 421:
            self._fail(reply)  # RFC 5321 §3.8: the server is closing
            return
        step = txn.expected.popleft()
        if step is _Step.MAIL:
            txn.mail = reply
        elif step is _Step.RCPT:
            txn.rcpts.append(reply)
        else:
            txn.data = reply
        if not self.capabilities.pipelining and self._stop_early(txn, step, reply):
            return
        if txn.expected or txn.commands:
            self._send_commands()
            return
        self._after_commands(txn)

    def _stop_early(self, txn: _Transaction, step: _Step, reply: ServerReply) -> bool:
        """Without pipelining, stop after a refused MAIL or when no RCPT was accepted."""
        if step is _Step.MAIL and not reply.positive:
            self._finish(None)
            return True
        last_rcpt = step is _Step.RCPT and len(txn.commands) == 1
        if last_rcpt and not txn.accepted:
            txn.commands.clear()
            self._send("RSET", State.RSET)
            return True
        return False

    def _after_commands(self, txn: _Transaction) -> None:
        data = txn.data
        assert txn.mail is not None and data is not None
        if data.code == 354:
            if txn.mail.positive and txn.accepted:
                self._out += encode_data(txn.message.body)
            else:  # RFC 2920 §3.1: nothing valid, but the server waits for data
                txn.abandoned = True
                self._out += b".\r\n"
            self.state = State.BODY
        elif txn.mail.positive:
            txn.final = data
            self._send("RSET", State.RSET)  # the server still holds MAIL: reset it
        else:
            self._finish(None)

    def _on_body(self, reply: ServerReply) -> None:
        txn = self._txn
        assert txn is not None
        if reply.code == 421:
            self._fail(reply)
            return
        self._finish(None if txn.abandoned else reply)

    def _on_rset(self, reply: ServerReply) -> None:
        txn = self._txn
        if reply.code == 421 or not reply.positive:
            self._fail(reply)
            return
        self._finish(txn.final if txn is not None else None)

    def _finish(self, final: ServerReply | None) -> None:
        txn = self._txn
        assert txn is not None
        self._txn = None
        outcome = MessageOutcome(txn.results(final), dsn_passed=self.capabilities.dsn)
        self._events.append(MessageDone(outcome))
        self.state = State.READY

    def _on_quit(self, reply: ServerReply) -> None:
        self._close()

    def _on_unexpected(self, reply: ServerReply) -> None:
        self._fail(synthetic(421, "4.5.0", f"Unexpected reply from server: {reply}"))


Handler = Callable[["ClientEngine", ServerReply], None]

_HANDLERS: Final[dict[State, Handler]] = {
    State.GREETING: ClientEngine._on_greeting,
    State.EHLO: ClientEngine._on_ehlo,
    State.HELO: ClientEngine._on_helo,
    State.STARTTLS: ClientEngine._on_starttls,
    State.AUTH: ClientEngine._on_auth,
    State.TRANSACTION: ClientEngine._on_transaction,
    State.BODY: ClientEngine._on_body,
    State.RSET: ClientEngine._on_rset,
    State.QUIT: ClientEngine._on_quit,
    State.READY: ClientEngine._on_unexpected,
}
