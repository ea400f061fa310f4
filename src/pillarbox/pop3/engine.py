"""The POP3 server protocol as a pure state machine (sans-IO, h11 style).

    engine = Pop3Engine(config, tls_active=False, plaintext_allowed=True, apop_timestamp=ts)
    out = engine.send(engine.greeting())
    engine.receive_data(chunk)              # b"" when the peer closed
    event = engine.next_event()             # an Event, or NEED_DATA
    out = engine.send(response)             # exactly one response per event

The engine owns the wire: line framing and limits, command grammar, which commands each
state allows, byte-stuffing, and the state transitions that follow from the responses the
session sends (RFC 1939 §3-§7, RFC 2449, RFC 2595 §4, RFC 5034, RFC 6856).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox.pop3 import replies
from pillarbox.pop3.commands import (
    ALLOWED,
    COMMANDS,
    PLAINTEXT_MECHANISMS,
    CommandError,
    ParseContext,
    parse_sasl_response,
)
from pillarbox.pop3.events import (
    NEED_DATA,
    Apop,
    Auth,
    AuthResponse,
    ConnectionClosed,
    Event,
    NeedData,
    Pass,
    Quit,
    Rejected,
    Stls,
    User,
    Utf8,
)
from pillarbox.pop3.replies import Challenge, Err, Ok, Response
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

# RFC 2449 §4: command lines are at most 255 octets including the CRLF.
MAX_COMMAND_LINE: Final = 255
# RFC 5034 §4: SASL responses "may be of arbitrary length"; PLAIN with three 255-octet
# fields is ~1 KB of base64, so 8 KB leaves room for any mechanism we would offer.
MAX_SASL_LINE: Final = 8192

_CR: Final = ord("\r")

LINE_TOO_LONG: Final = Err("Line too long")
BARE_LINE_END: Final = Err("Lines must end with CRLF")


@dataclass(frozen=True, slots=True)
class Pop3Config:
    """Settings the wire needs; per-connection facts are `Pop3Engine` arguments."""

    tls_available: bool = False
    sasl_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    expire: str = "NEVER"  # RFC 2449 §6.7: days, or NEVER
    login_delay: int = 0  # RFC 2449 §6.5: minimum seconds between logins
    implementation: str = "Pillarbox"  # RFC 2449 §6.9: one token


def capabilities(config: Pop3Config, tls_active: bool, plaintext_allowed: bool) -> list[str]:
    """RFC 2449 §5-§6 CAPA lines; the same in both states (§5: AUTHORIZATION capabilities
    are announced in both). USER and plaintext SASL mechanisms are hidden where plaintext
    login is refused (RFC 2595 §4: STLS "may enable USER/PASS as a side-effect")."""
    mechanisms = [
        m for m in config.sasl_mechanisms if plaintext_allowed or m not in PLAINTEXT_MECHANISMS
    ]
    lines = ["TOP"]
    if plaintext_allowed:
        lines.append("USER")
    lines.append("UIDL")
    if mechanisms:
        lines.append("SASL " + " ".join(mechanisms))  # RFC 5034 §3
    lines += [
        "RESP-CODES",  # RFC 2449 §6.4
        "AUTH-RESP-CODE",  # RFC 3206 §5
        "PIPELINING",  # RFC 2449 §6.6
        f"EXPIRE {config.expire}",
        f"LOGIN-DELAY {config.login_delay}",
        f"IMPLEMENTATION {config.implementation}",
    ]
    if config.tls_available and not tls_active:
        lines.append("STLS")  # RFC 2595 §4: not after TLS is active
    lines.append("UTF8 USER")  # RFC 6856 §2: UTF-8 user names and passwords accepted
    return lines


class Pop3Engine:
    """One POP3 server connection's protocol state; never does I/O."""

    def __init__(
        self,
        config: Pop3Config,
        *,
        tls_active: bool = False,
        plaintext_allowed: bool = False,
        apop_timestamp: str | None = None,
    ) -> None:
        """`plaintext_allowed`: USER/PASS and PLAIN/LOGIN are accepted without TLS (the
        loopback rule); over TLS they always are. `apop_timestamp`: offer APOP with this
        greeting timestamp (see `replies.apop_timestamp`)."""
        self.config = config
        self._tls_active = tls_active
        self._plaintext_without_tls = plaintext_allowed
        self.apop_timestamp = apop_timestamp
        self._state: State = Authorization()
        self._buffer = bytearray()
        self._eof = False
        self._discarding = False  # inside an over-long line, dropping up to its LF
        self._awaiting: Event | None = None
        self._greeted = False
        self._utf8 = False
        self._context: ParseContext | None = None

    # --- read-only views --------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        return isinstance(self._state, Closed)

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def tls_pending(self) -> bool:
        """True after "+OK" to STLS: the driver must now run the TLS handshake."""
        return isinstance(self._state, TlsPending)

    @property
    def plaintext_allowed(self) -> bool:
        return self._tls_active or self._plaintext_without_tls

    @property
    def utf8(self) -> bool:
        """RFC 6856 §2: the client sent UTF8 and it was accepted."""
        return self._utf8

    def capabilities(self) -> list[str]:
        """The CAPA lines for this connection now."""
        return capabilities(self.config, self._tls_active, self.plaintext_allowed)

    def greeting(self) -> Ok:
        """RFC 1939 §4 greeting, carrying the APOP timestamp when APOP is offered."""
        return replies.greeting(self.apop_timestamp, self.config.implementation)

    # --- input ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; b"" means the peer closed its side."""
        if not data:
            self._eof = True
        elif not isinstance(self._state, TlsPending | Closed):
            # RFC 2595 §4 / CVE-2011-0411: nothing sent before TLS is read after it.
            self._buffer += data

    def tls_established(self) -> None:
        """The driver finished the TLS handshake after STLS; back to AUTHORIZATION."""
        if not isinstance(self._state, TlsPending):
            raise RuntimeError("no STLS in progress")
        self._tls_active = True
        self._buffer.clear()
        self._state = Authorization()  # RFC 2595 §4: remains in AUTHORIZATION state

    def next_event(self) -> Event | NeedData:
        """The next command as an event, or NEED_DATA until a whole line is buffered."""
        if self._awaiting is not None:
            raise RuntimeError(f"send a response to {self._awaiting!r} first")
        if isinstance(self._state, Closed):
            raise RuntimeError("the connection is closed")
        line = NEED_DATA if isinstance(self._state, TlsPending) else self._next_line()
        if line is NEED_DATA:
            if not self._eof:
                return NEED_DATA
            self._state = Closed()
            return ConnectionClosed()  # RFC 1939 §6: no UPDATE without QUIT
        event = line if isinstance(line, Rejected) else self._parse(line)
        if isinstance(event, Quit) and event.update:
            self._state = Update()  # RFC 1939 §6: QUIT in TRANSACTION enters UPDATE
        self._awaiting = event
        return event

    def _line_limit(self) -> int:
        return MAX_SASL_LINE if isinstance(self._state, SaslExchange) else MAX_COMMAND_LINE

    def _next_line(self) -> bytes | Rejected | NeedData:
        buffer = self._buffer
        if not buffer:
            return NEED_DATA  # the usual end of a batch of pipelined commands
        if self._discarding:
            newline = buffer.find(b"\n")
            if newline < 0:
                buffer.clear()
                return NEED_DATA
            del buffer[: newline + 1]
            self._discarding = False
        limit = self._line_limit()
        newline = buffer.find(b"\n", 0, limit)
        if newline < 0:
            if len(buffer) < limit:
                return NEED_DATA
            self._discarding = True  # RFC 2449 §4: refuse it, keep the session
            return Rejected(LINE_TOO_LONG)
        end = newline - 1  # where the CR should be
        # RFC 1939 §3: commands end in CRLF; a bare CR or LF is refused, not guessed at.
        bare = end < 0 or buffer[end] != _CR or buffer.find(b"\r", 0, end) >= 0
        line = None if bare else bytes(buffer[:end])
        del buffer[: newline + 1]
        return Rejected(BARE_LINE_END) if line is None else line

    def _parse_context(self) -> ParseContext:
        """The facts parsers consult; built again only when the state or TLS changed."""
        context = self._context
        if (
            context is None
            or context.state is not self._state
            or context.tls_active is not self._tls_active
        ):
            context = self._context = ParseContext(
                state=self._state,
                config_mechanisms=self.config.sasl_mechanisms,
                plaintext_allowed=self.plaintext_allowed,
                tls_available=self.config.tls_available,
                tls_active=self._tls_active,
                apop_offered=self.apop_timestamp is not None,
            )
        return context

    def _parse(self, line: bytes) -> Event:
        context = self._parse_context()
        try:
            if isinstance(self._state, SaslExchange):
                return parse_sasl_response(line)
            verb, _, arguments = line.partition(b" ")
            verb = verb.upper()
            parse = COMMANDS.get(verb)
            if parse is None:
                return Rejected(Err("Unknown command"))
            if verb not in ALLOWED[type(self._state)]:
                return Rejected(_wrong_state(verb, self._state))
            return parse(context, arguments)
        except CommandError as error:
            return Rejected(error.response)

    # --- output -----------------------------------------------------------------

    def send(self, response: Response) -> bytes:
        """Wire bytes for `response`, the answer to the last event (or the greeting, or an
        unsolicited closing -ERR such as a timeout); applies the state transition."""
        if isinstance(self._state, Closed):
            raise RuntimeError("the connection is closed")
        event, self._awaiting = self._awaiting, None
        if event is None:
            self._check_unsolicited(response)
            self._greeted = True
        else:
            self._state = _transition(self._state, event, response)
            if isinstance(event, Utf8) and isinstance(response, Ok):
                self._utf8 = True
        if isinstance(response, Err) and response.closes:
            self._state = Closed()
        if isinstance(self._state, TlsPending):
            self._buffer.clear()  # RFC 2595 §4 / CVE-2011-0411: drop pipelined plaintext
        return replies.encode(response)

    def _check_unsolicited(self, response: Response) -> None:
        if isinstance(response, Challenge):
            raise ValueError("a challenge answers AUTH only")
        if self._greeted and not (isinstance(response, Err) and response.closes):
            raise RuntimeError("no command is waiting for a response")


def _wrong_state(verb: bytes, state: State) -> Err:
    if verb == b"PASS" and isinstance(state, Authorization):
        return Err("No username given")  # RFC 1939 §7: PASS only right after USER
    if isinstance(state, Transaction):
        return Err(f"{verb.decode('ascii')} is not valid in the TRANSACTION state")
    return Err(f"{verb.decode('ascii')} is not valid before login")


def _after_user(state: State, event: Event, response: Response) -> State:
    assert isinstance(event, User)
    # RFC 1939 §7: PASS may follow only an accepted USER.
    return UserGiven(event.name) if isinstance(response, Ok) else Authorization()


def _after_login(state: State, event: Event, response: Response) -> State:
    # RFC 1939 §4/§7, RFC 5034 §4: success enters TRANSACTION, failure starts over.
    return Transaction() if isinstance(response, Ok) else Authorization()


def _after_auth(state: State, event: Event, response: Response) -> State:
    if not isinstance(response, Challenge):
        return _after_login(state, event, response)
    if isinstance(event, Auth):
        return SaslExchange(event.mechanism)
    assert isinstance(state, SaslExchange)  # AuthResponse is parsed only there
    return state


def _after_stls(state: State, event: Event, response: Response) -> State:
    # RFC 2595 §4: the handshake starts right after "+OK".
    return TlsPending() if isinstance(response, Ok) else state


def _after_quit(state: State, event: Event, response: Response) -> State:
    return Closed()  # RFC 1939 §6: the connection closes after the QUIT reply, +OK or -ERR


def _after_rejected(state: State, event: Event, response: Response) -> State:
    # RFC 5034 §4: a cancelled exchange or an undecodable response fails the AUTH command.
    return Authorization() if isinstance(state, SaslExchange) else state


_Transition = Callable[[State, Event, Response], State]

# The state after the session's response to each kind of event; absent kinds keep it.
_TRANSITIONS: Final[dict[type[Event], _Transition]] = {
    User: _after_user,
    Pass: _after_login,
    Apop: _after_login,
    Auth: _after_auth,
    AuthResponse: _after_auth,
    Stls: _after_stls,
    Quit: _after_quit,
    Rejected: _after_rejected,
}


def _transition(state: State, event: Event, response: Response) -> State:
    """The state after `response` answers `event`."""
    if isinstance(response, Challenge) and not isinstance(event, Auth | AuthResponse):
        raise ValueError("a challenge answers AUTH only")
    after = _TRANSITIONS.get(type(event))
    return state if after is None else after(state, event, response)
