"""The POP3 server session: turns engine events into decisions using the store.

One `Pop3Session` per connection, run by `net.driver.drive`. The engine has already refused
everything the grammar, the state or the TLS rule forbids; here live the decisions that need
the authenticator or the store: who logs in, which messages the maildrop holds, and what the
UPDATE state removes. POP3 serves each account's INBOX (DESIGN.md): a deletion here is an
expunge that IMAP sessions see through the store's change feed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox import log
from pillarbox.auth import sasl
from pillarbox.auth.authenticator import Authenticator, AuthResult, Outcome
from pillarbox.config import Config
from pillarbox.net.driver import drive
from pillarbox.net.stream import Stream
from pillarbox.pop3 import replies
from pillarbox.pop3.bodies import BodyWindows
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
from pillarbox.pop3.replies import Challenge, Err, Response, ResponseCode
from pillarbox.pop3.states import SaslExchange
from pillarbox.store import api

# RFC 3206 §4: throttling is a transient condition, the client should retry later and
# must not treat it as a wrong password.
LOGIN_THROTTLED: Final = Err("Too many failed logins, try again later.", ResponseCode.SYS_TEMP)
SHUTTING_DOWN: Final = Err("Server shutting down.", ResponseCode.SYS_TEMP, closes=True)
TOO_MANY_CONNECTIONS: Final = Err("Too many connections, try again later.", ResponseCode.SYS_TEMP)
TOO_MANY_ERRORS: Final = Err("Too many errors, closing connection.", closes=True)
# RFC 1939 §5: a message another session (IMAP) expunged since login can no longer be read.
MESSAGE_GONE: Final = Err("message was removed by another session")
SECONDS_PER_DAY: Final = 86_400


class MaildropLocks:
    """RFC 1939 §8: one POP3 session per maildrop at a time. An in-process registry is
    enough for the single-node SQLite store; a multi-node backend needs a store lease."""

    def __init__(self) -> None:
        self._held: set[api.AccountId] = set()

    def acquire(self, account_id: api.AccountId) -> bool:
        if account_id in self._held:
            return False
        self._held.add(account_id)
        return True

    def release(self, account_id: api.AccountId) -> None:
        self._held.discard(account_id)


def uidl_string(uidvalidity: int, uid: int) -> str:
    """RFC 1939 §7: a unique-id that never changes and is never reused for the maildrop.
    UIDVALIDITY changes whenever UIDs could be reused, so the pair is unique for ever."""
    return f"{uidvalidity}.{uid}"


class Pop3Service:
    """Everything POP3 sessions share; hands each accepted stream to a new session."""

    def __init__(
        self,
        config: Config,
        store: api.Store,
        authenticator: Authenticator,
        tls: ssl.SSLContext | None,
        shutdown: asyncio.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.store = store
        self.authenticator = authenticator
        self.tls = tls
        self.shutdown = shutdown
        self.clock = clock
        pop3 = config.pop3
        self.engine_config = Pop3Config(
            tls_available=tls is not None,
            sasl_mechanisms=sasl.MECHANISMS,
            expire="NEVER" if pop3.expire is None else str(pop3.expire),
            login_delay=pop3.login_delay,
        )
        self.locks = MaildropLocks()
        self._last_login: dict[api.AccountId, float] = {}
        self._last_stamp = 0

    def timestamp(self) -> str:
        """RFC 1939 §7: a greeting timestamp never used before by this server process."""
        self._last_stamp = max(self._last_stamp + 1, time.time_ns())
        return replies.apop_timestamp(os.getpid(), self._last_stamp, self.config.hostname)

    def login_too_soon(self, account_id: api.AccountId) -> bool:
        """RFC 2449 §6.5: refuse a login within LOGIN-DELAY seconds of the last one."""
        delay = self.config.pop3.login_delay
        last = self._last_login.get(account_id)
        return bool(delay) and last is not None and self.clock() - last < delay

    def record_login(self, account_id: api.AccountId) -> None:
        if self.config.pop3.login_delay:
            self._last_login[account_id] = self.clock()

    def new_engine(self, stream: Stream) -> Pop3Engine:
        return Pop3Engine(
            self.engine_config,
            tls_active=stream.tls,
            # DESIGN.md: plaintext logins only over TLS, or on loopback when configured.
            plaintext_allowed=_loopback(stream.peer_ip)
            and self.config.auth.allow_plaintext_on_loopback,
            apop_timestamp=self.timestamp(),
        )

    def handler(self, implicit_tls: bool) -> Callable[[Stream], Awaitable[None]]:
        """The listener callback; `implicit_tls` streams arrive already encrypted."""

        async def serve(stream: Stream) -> None:
            engine = self.new_engine(stream)
            session = Pop3Session(self, stream, engine)
            await drive(stream, engine, session, NEED_DATA, self.shutdown, self.tls)

        del implicit_tls  # the stream says whether TLS is active
        return serve

    async def refuse(self, stream: Stream) -> None:
        """Over the connection limits: an -ERR greeting, then close (RFC 1939 §4)."""
        try:
            await stream.send_all(replies.encode(TOO_MANY_CONNECTIONS))
        finally:
            stream.close()


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Opened:
    """The maildrop of a logged-in session: INBOX as it was at login."""

    account: api.Account
    mailbox: api.Mailbox
    entries: tuple[api.MailboxEntry, ...]  # message number n is entries[n - 1]
    drop: Maildrop


class Pop3Session:
    """One POP3 connection's decisions (the `net.driver.Session` protocol)."""

    def __init__(self, service: Pop3Service, stream: Stream, engine: Pop3Engine) -> None:
        self.service = service
        self.store = service.store
        self.stream = stream
        self.engine = engine
        self.session_id = secrets.token_hex(6)
        self.opened: Opened | None = None
        self.retrieved: set[int] = set()  # message numbers sent by RETR (RFC 2449 §6.7)
        self.errors = 0
        self._sasl: sasl.SaslExchange | None = None
        self._bodies: BodyWindows | None = None  # set at login

    # -- driver protocol -------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        return self.service.config.pop3.timeout

    @property
    def tls_requested(self) -> bool:
        return self.engine.tls_pending

    @property
    def busy(self) -> bool:
        return False  # a cut POP3 session deletes nothing (RFC 1939 §6): safe to end

    async def greet(self) -> Sequence[Response]:
        log.event("pop3.connect", id=self.session_id, peer=self.stream.peer_ip, tls=self.stream.tls)
        return [self.engine.greeting()]

    async def handle(self, event: Event) -> Sequence[Response]:
        try:
            response = await HANDLERS[type(event)](self, event)
        except MaildropError as error:
            # A bad or deleted message number: the one place this layer turns maildrop
            # errors into replies (RFC 1939 §5).
            response = error.response
        return [] if response is None else [response]

    def tls_started(self, stream: Stream) -> None:
        self.engine.tls_established()  # RFC 2595 §4: plaintext buffer discarded there
        log.event(
            "pop3.tls", id=self.session_id, version=stream.tls_version, cipher=stream.tls_cipher
        )

    def timeout_reply(self) -> Response:
        log.event("pop3.timeout", id=self.session_id)
        return replies.IDLE_TIMEOUT  # RFC 1939 §3 autologout: no UPDATE state

    def shutdown_reply(self) -> Response:
        return SHUTTING_DOWN

    async def close(self) -> None:
        if self._bodies is not None:
            await self._bodies.close()
        if self.opened is not None:
            self.service.locks.release(self.opened.account.id)
        log.event("pop3.disconnect", id=self.session_id)

    # -- AUTHORIZATION -----------------------------------------------------------------

    async def on_user(self, event: User) -> Response:
        # The name is checked with the password, so USER reveals nothing about accounts.
        return replies.USER_ACCEPTED

    async def on_pass(self, event: Pass) -> Response:
        return await self._check(
            event.name,
            self.service.authenticator.authenticate(event.name, event.password, self._ip),
        )

    async def on_apop(self, event: Apop) -> Response:
        timestamp = self.engine.apop_timestamp
        assert timestamp is not None  # the engine emits Apop only when APOP was offered
        return await self._check(
            event.name,
            self.service.authenticator.authenticate_apop(
                event.name, timestamp, event.digest, self._ip
            ),
        )

    async def on_auth(self, event: Auth) -> Response:
        try:
            self._sasl = sasl.start(event.mechanism, event.initial)
        except sasl.UnsupportedMechanismError:  # pragma: no cover - the engine checks names
            return Err("Unsupported authentication mechanism")
        return await self._sasl_step(None)

    async def on_auth_response(self, event: AuthResponse) -> Response:
        return await self._sasl_step(event.data)

    async def _sasl_step(self, response: bytes | None) -> Response:
        """RFC 5034 §4: a challenge, or the outcome of the exchange."""
        assert self._sasl is not None
        step = self._sasl.step(response)
        if isinstance(step, sasl.Challenge):
            return Challenge(step.data)
        self._sasl = None
        if isinstance(step, sasl.SaslFailure):
            log.event("pop3.auth", id=self.session_id, result="malformed", reason=step.reason)
            return replies.AUTH_FAILED
        return await self._check(
            step.authcid,
            self.service.authenticator.authenticate(step.authcid, step.password, self._ip),
        )

    @property
    def _ip(self) -> str:
        return self.stream.peer_ip

    async def _check(self, name: str, check: Awaitable[AuthResult]) -> Response:
        """Finish a login attempt: credentials, then LOGIN-DELAY, then the maildrop lock."""
        try:
            result = await check
        except api.StoreError:
            return replies.SYSTEM_TEMPORARY
        log.event("pop3.auth", id=self.session_id, user=name, result=result.outcome.value)
        if result.outcome is Outcome.REFUSED:
            return LOGIN_THROTTLED
        if result.outcome is not Outcome.OK or result.account is None:
            return replies.AUTH_FAILED  # RFC 3206 §5
        account = result.account
        if self.service.login_too_soon(account.id):
            return replies.LOGIN_DELAY  # RFC 2449 §8.1.1
        if not self.service.locks.acquire(account.id):
            return replies.IN_USE  # RFC 2449 §8.1.2
        try:
            self.opened = await self._open(account)
        except api.StoreError:
            self.service.locks.release(account.id)
            return replies.SYSTEM_TEMPORARY
        self.service.record_login(account.id)
        return replies.maildrop_ready(*self.opened.drop.stat())

    async def _open(self, account: api.Account) -> Opened:
        """RFC 1939 §5: number the messages of INBOX for the whole session."""
        mailbox = await self.store.get_mailbox(account.id, api.INBOX)
        entries = tuple(await self.store.list_entries(mailbox.id))
        drop = Maildrop((uidl_string(mailbox.uidvalidity, e.uid), e.size) for e in entries)
        self._bodies = BodyWindows(self.store, entries, replies.message_status)
        return Opened(account, mailbox, entries, drop)

    async def on_capa(self, event: Capa) -> Response:
        return replies.capability_list(self.engine.capabilities())  # RFC 2449 §5

    async def on_stls(self, event: Stls) -> Response:
        return replies.TLS_STARTING  # RFC 2595 §4; the driver upgrades after this line

    async def on_utf8(self, event: Utf8) -> Response:
        return replies.UTF8_ENABLED  # RFC 6856 §2: bodies are sent as stored (8-bit clean)

    # -- TRANSACTION -------------------------------------------------------------------

    @property
    def _opened(self) -> Opened:
        assert self.opened is not None, "the engine let a TRANSACTION command through"
        return self.opened

    async def on_stat(self, event: Stat) -> Response:
        return replies.stat(*self._opened.drop.stat())

    async def on_list(self, event: List) -> Response:
        drop = self._opened.drop
        if event.number is None:
            return replies.scan_listing(drop.sizes(), *drop.stat())
        return replies.scan_line(event.number, drop.size(event.number))

    async def on_uidl(self, event: Uidl) -> Response:
        drop = self._opened.drop
        if event.number is None:
            return replies.uidl_listing(drop.uids())
        return replies.uidl_line(event.number, drop.uid(event.number))

    async def _body(self, number: int) -> bytes | Err:
        """Message `number` as stored."""
        self._opened.drop.check(number)
        assert self._bodies is not None  # set with `opened`
        try:
            return await self._bodies.body(number)
        except api.NotFound:
            return MESSAGE_GONE
        except api.StoreError:
            return replies.SYSTEM_TEMPORARY

    async def on_retr(self, event: Retr) -> Response:
        number = event.number
        size = self._opened.drop.size(number)  # RFC 1939 §5: refuses deleted numbers
        assert self._bodies is not None  # set with `opened`
        try:
            wire = await self._bodies.response(number)
        except api.NotFound:
            return MESSAGE_GONE
        except api.StoreError:
            return replies.SYSTEM_TEMPORARY
        self.retrieved.add(number)
        return replies.retrieved(size, wire)

    async def on_top(self, event: Top) -> Response:
        body = await self._body(event.number)
        return body if isinstance(body, Err) else replies.top(top_of(body, event.lines))

    async def on_dele(self, event: Dele) -> Response:
        self._opened.drop.mark_deleted(event.number)
        return replies.deleted(event.number)

    async def on_rset(self, event: Rset) -> Response:
        drop = self._opened.drop
        drop.reset()
        return replies.reset(*drop.stat())

    async def on_noop(self, event: Noop) -> Response:
        return replies.NOOP

    # -- QUIT and the UPDATE state -------------------------------------------------------

    async def on_quit(self, event: Quit) -> Response:
        if not event.update:
            return replies.signing_off()  # RFC 1939 §4: QUIT before login changes nothing
        opened = self._opened
        numbers = sorted(set(opened.drop.deletions()) | self._expired())
        uids = [opened.entries[n - 1].uid for n in numbers]
        if uids:
            try:
                # RFC 1939 §6: all deletions in one atomic store call, durable before +OK.
                await self.store.expunge(opened.mailbox.id, uids)
            except api.StoreError as error:
                log.event("pop3.update-failed", id=self.session_id, error=type(error).__name__)
                return replies.DELETIONS_FAILED
        log.event("pop3.update", id=self.session_id, user=opened.account.address, deleted=len(uids))
        return replies.signing_off(len(opened.entries) - len(uids))

    def _expired(self) -> set[int]:
        """RFC 2449 §6.7: messages downloaded with RETR whose retention period is over
        (EXPIRE 0: every one). Not in the maildrop's deletions: RSET cannot undo it."""
        days = self.service.config.pop3.expire
        if days is None:
            return set()
        limit = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=days * SECONDS_PER_DAY)
        entries = self._opened.entries
        return {n for n in self.retrieved if entries[n - 1].internaldate <= limit}

    # -- refusals and the end of the connection -----------------------------------------

    async def on_rejected(self, event: Rejected) -> Response:
        if isinstance(self.engine.state, SaslExchange):
            self._sasl = None  # RFC 5034 §4: "*" or bad base64 ends the exchange
        self.errors += 1
        limit = self.service.config.pop3.max_errors
        if limit and self.errors > limit:
            log.event("pop3.too-many-errors", id=self.session_id)
            return TOO_MANY_ERRORS
        return event.response

    async def on_closed(self, event: ConnectionClosed) -> None:
        return None  # RFC 1939 §6: no QUIT, no UPDATE state: nothing is deleted


# STYLE.md §5: dispatch through an explicit table; a test checks every event has a handler.
HANDLERS: Final[dict[type[Event], Callable[..., Awaitable[Response | None]]]] = {
    User: Pop3Session.on_user,
    Pass: Pop3Session.on_pass,
    Apop: Pop3Session.on_apop,
    Auth: Pop3Session.on_auth,
    AuthResponse: Pop3Session.on_auth_response,
    Capa: Pop3Session.on_capa,
    Stls: Pop3Session.on_stls,
    Utf8: Pop3Session.on_utf8,
    Stat: Pop3Session.on_stat,
    List: Pop3Session.on_list,
    Uidl: Pop3Session.on_uidl,
    Retr: Pop3Session.on_retr,
    Top: Pop3Session.on_top,
    Dele: Pop3Session.on_dele,
    Rset: Pop3Session.on_rset,
    Noop: Pop3Session.on_noop,
    Quit: Pop3Session.on_quit,
    Rejected: Pop3Session.on_rejected,
    ConnectionClosed: Pop3Session.on_closed,
}
