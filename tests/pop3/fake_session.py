"""A tiny in-memory POP3 session answering engine events, for engine tests only.

It uses the real `Maildrop`, `replies` and `message` helpers, so transcripts replayed
through it check the wording and numbers the real session will produce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from pillarbox.pop3 import replies
from pillarbox.pop3.engine import Pop3Config, Pop3Engine
from pillarbox.pop3.events import (
    NEED_DATA,
    Apop,
    Auth,
    AuthResponse,
    Capa,
    ConnectionClosed,
    Dele,
    Event,
    List,
    Noop,
    Pass,
    Quit,
    Rejected,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)
from pillarbox.pop3.maildrop import Maildrop, MaildropError
from pillarbox.pop3.message import top_of
from pillarbox.pop3.replies import Challenge, Err, Response

TIMESTAMP = "<1896.697170952@pop.example.test>"
ACCOUNTS = {
    "alice@example.test": "secret",
    "josé@example.test": "pässwörd",
    "busy@example.test": "secret",  # its maildrop is locked elsewhere
    "eager@example.test": "secret",  # logged in too recently
}
MESSAGES = [
    b"From: bob@example.test\r\nSubject: first\r\n\r\nline 1\r\n.hidden dot\r\nline 3\r\n",
    b"Subject: second\r\n\r\n..double\r\n",
    b"Subject: third\r\n",
]


def new_engine(options: set[str]) -> Pop3Engine:
    config = Pop3Config(tls_available="tls" in options, login_delay=0)
    return Pop3Engine(
        config,
        tls_active="tls-active" in options,
        plaintext_allowed="plaintext" in options,
        apop_timestamp=TIMESTAMP if "apop" in options else None,
    )


class FakeSession:
    """Answers every event with the reply a real session would send."""

    def __init__(self, engine: Pop3Engine, messages: list[bytes] | None = None) -> None:
        self.engine = engine
        self.store = list(MESSAGES if messages is None else messages)
        self.maildrop: Maildrop | None = None
        self.mechanism = ""
        self.login_name: str | None = None  # LOGIN mechanism: the name once given
        self.closed_by_peer = False
        self.handlers: dict[type[Any], Callable[[Any], Response | None]] = {
            User: self.on_user,
            Pass: self.on_pass,
            Apop: self.on_apop,
            Auth: self.on_auth,
            AuthResponse: self.on_auth_response,
            Stat: self.on_stat,
            List: self.on_list,
            Retr: self.on_retr,
            Dele: self.on_dele,
            Noop: lambda event: replies.NOOP,
            Rset: self.on_rset,
            Quit: self.on_quit,
            Top: self.on_top,
            Uidl: self.on_uidl,
            Capa: lambda event: replies.capability_list(self.engine.capabilities()),
            Stls: lambda event: replies.TLS_STARTING,
            Utf8: lambda event: replies.UTF8_ENABLED,
            Rejected: lambda event: event.response,
            ConnectionClosed: self.on_connection_closed,
        }

    def handle(self, event: Event) -> Response | None:
        return self.handlers[type(event)](event)

    def run(self, data: bytes) -> bytes:
        """Feed `data`, answer every complete command, return what the server wrote."""
        out = []
        if not self.engine.closed and not self.engine.tls_pending:
            self.engine.receive_data(data)
        while not self.engine.closed:
            event = self.engine.next_event()
            if event is NEED_DATA:
                break
            response = self.handle(event)
            if response is not None:
                out.append(self.engine.send(response))
        return b"".join(out)

    # --- AUTHORIZATION ----------------------------------------------------------

    def login(self, name: str, password: str | None) -> Response:
        if password is not None and ACCOUNTS.get(name) != password:
            return replies.AUTH_FAILED
        if name == "busy@example.test":
            return replies.IN_USE
        if name == "eager@example.test":
            return replies.LOGIN_DELAY
        self.maildrop = Maildrop((f"v7.{n}", len(body)) for n, body in enumerate(self.store, 1))
        return replies.maildrop_ready(*self.maildrop.stat())

    def on_user(self, event: User) -> Response:
        if event.name.endswith("@blocked.test"):
            return Err("never heard of mailbox name", replies.ResponseCode.AUTH)
        return replies.USER_ACCEPTED

    def on_pass(self, event: Pass) -> Response:
        return self.login(event.name, event.password)

    def on_apop(self, event: Apop) -> Response:
        secret = ACCOUNTS.get(event.name)
        if secret is None:
            return replies.AUTH_FAILED
        expected = hashlib.md5((TIMESTAMP + secret).encode()).hexdigest()
        return self.login(event.name, None) if expected == event.digest else replies.AUTH_FAILED

    def on_auth(self, event: Auth) -> Response:
        self.mechanism = event.mechanism
        self.login_name = None
        if event.initial is None:
            # RFC 5034 §4: PLAIN needs an initial response, so its challenge is empty.
            return Challenge(b"Username:" if event.mechanism == "LOGIN" else b"")
        return self.on_auth_response(AuthResponse(event.initial))

    def on_auth_response(self, event: AuthResponse) -> Response:
        text = event.data.decode(errors="replace")
        if self.mechanism == "PLAIN":
            parts = text.split("\0")
            return self.login(parts[1], parts[2]) if len(parts) == 3 else replies.AUTH_FAILED
        if self.login_name is None:
            self.login_name = text
            return Challenge(b"Password:")
        return self.login(self.login_name, text)

    # --- TRANSACTION ------------------------------------------------------------

    def drop(self) -> Maildrop:
        assert self.maildrop is not None, "engine let a TRANSACTION command through"
        return self.maildrop

    def on_stat(self, event: Stat) -> Response:
        return replies.stat(*self.drop().stat())

    def on_list(self, event: List) -> Response:
        drop = self.drop()
        try:
            if event.number is None:
                return replies.scan_listing(drop.sizes(), *drop.stat())
            return replies.scan_line(event.number, drop.size(event.number))
        except MaildropError as error:
            return error.response

    def on_uidl(self, event: Uidl) -> Response:
        drop = self.drop()
        try:
            if event.number is None:
                return replies.uidl_listing(drop.uids())
            return replies.uidl_line(event.number, drop.uid(event.number))
        except MaildropError as error:
            return error.response

    def on_retr(self, event: Retr) -> Response:
        try:
            size = self.drop().size(event.number)
        except MaildropError as error:
            return error.response
        return replies.message(size, self.store[event.number - 1])

    def on_top(self, event: Top) -> Response:
        try:
            self.drop().check(event.number)
        except MaildropError as error:
            return error.response
        return replies.top(top_of(self.store[event.number - 1], event.lines))

    def on_dele(self, event: Dele) -> Response:
        try:
            self.drop().mark_deleted(event.number)
        except MaildropError as error:
            return error.response
        return replies.deleted(event.number)

    def on_rset(self, event: Rset) -> Response:
        drop = self.drop()
        drop.reset()
        return replies.reset(*drop.stat())

    def on_quit(self, event: Quit) -> Response:
        if not event.update:
            return replies.signing_off()
        gone = set(self.drop().deletions())
        self.store = [body for n, body in enumerate(self.store, 1) if n not in gone]
        return replies.signing_off(len(self.store))

    def on_connection_closed(self, event: ConnectionClosed) -> None:
        self.closed_by_peer = True
