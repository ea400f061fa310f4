"""The SMTP server session: turns engine events into decisions using policy and the store.

One `SmtpSession` per connection. Handlers are chosen from `HANDLERS` by event type; each
returns the replies to send. The engine has already refused everything the grammar or the
command order forbids; here live the decisions that need configuration, the directory or
the store: who may relay, who exists, where a message goes, and when it is safe to say 250.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import ipaddress
import itertools
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pillarbox import log
from pillarbox.auth import sasl
from pillarbox.auth.authenticator import Authenticator, Outcome
from pillarbox.config import Config
from pillarbox.delivery.bounce import Notifier
from pillarbox.delivery.etrn import EtrnService
from pillarbox.directory.model import LocalMailbox
from pillarbox.directory.resolver import Directory
from pillarbox.net.driver import drive
from pillarbox.net.stream import Stream
from pillarbox.smtp import replies, trace
from pillarbox.smtp.capabilities import HELP_TOPICS, Offer, ehlo_keywords, help_lines
from pillarbox.smtp.engine import EngineConfig, ServerEngine
from pillarbox.smtp.events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    BdatChunk,
    ConnectionClosed,
    Data,
    Etrn,
    Event,
    Expn,
    Helo,
    Help,
    MailFrom,
    MailParams,
    MessageData,
    Noop,
    Onex,
    Quit,
    RcptTo,
    Rejected,
    Rset,
    StartTls,
    Verb,
    Vrfy,
)
from pillarbox.smtp.params import ALL_EXTENSIONS, Extension
from pillarbox.smtp.policy import Recipient, RecipientPolicy
from pillarbox.smtp.replies import Reply
from pillarbox.store import api

CLOSING: Final = Reply(221, "2.0.0", "Bye")
TIMEOUT: Final = Reply(421, "4.4.2", "Timeout, closing connection")
SHUTTING_DOWN: Final = Reply(421, "4.3.2", "Service shutting down, closing connection")
TOO_MANY_CONNECTIONS: Final = Reply(421, "4.7.0", "Too many connections, try again later")
OK: Final = Reply(250, "2.0.0", "Ok")
SENDER_OK: Final = Reply(250, "2.1.0", "Sender ok")
RECIPIENT_OK: Final = Reply(250, "2.1.5", "Recipient ok")
START_DATA: Final = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
READY_TLS: Final = Reply(220, "2.0.0", "Ready to start TLS")
TLS_ACTIVE: Final = Reply(503, "5.5.1", "TLS already active")
TLS_UNAVAILABLE: Final = Reply(454, "4.7.0", "TLS not available")
AUTH_REQUIRED: Final = Reply(530, "5.7.0", "Authentication required")
ENCRYPTION_REQUIRED: Final = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
AUTH_OK: Final = Reply(235, "2.7.0", "Authentication successful")
AUTH_FAILED: Final = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_CANCELLED: Final = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_THROTTLED: Final = Reply(454, "4.7.0", "Too many failed authentications, try again later")
AUTH_UNAVAILABLE: Final = Reply(454, "4.7.0", "Temporary authentication failure")
UNKNOWN_MECHANISM: Final = Reply(504, "5.5.4", "Unrecognized authentication type")
TOO_MANY_RECIPIENTS: Final = Reply(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
LOOP_DETECTED: Final = Reply(554, "5.4.6", "Too many Received headers: mail loop detected")
MAILBOX_FULL: Final = Reply(552, "5.2.2", "Mailbox full")
STORE_FAILED: Final = Reply(451, "4.3.0", "Temporary failure storing the message, try again")
ONE_TRANSACTION: Final = Reply(503, "5.5.1", "ONEX: only one transaction per session")
VRFY_DISABLED: Final = Reply(
    252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"
)
EXPN_DISABLED: Final = Reply(502, "5.5.1", "EXPN not available")
ETRN_UNAVAILABLE: Final = Reply(502, "5.5.1", "ETRN not available")
HELP_UNKNOWN: Final = Reply(504, "5.5.1", "HELP topic unknown")
VERBOSE_ON: Final = Reply(250, "2.0.0", "Verbose mode")
ONEX_OK: Final = Reply(250, "2.0.0", "Only one transaction")


_BOOT: Final = f"{int(time.time()) & 0xFFFFFFFF:08X}{os.getpid() & 0xFFFFF:05X}"
_serials = itertools.count(1)


def next_queue_id() -> str:
    """A message id for logs and Received headers: unique per process run, cheap to make."""
    return f"{_BOOT}{next(_serials):07X}"


_session_prefix = ["s"]  # a worker process's sessions are "w<n>s<serial>"


def use_session_prefix(prefix: str) -> None:
    """Name this process's sessions with `prefix` (SMTP worker processes, see workers.py)."""
    _session_prefix[0] = prefix


def next_session_id() -> str:
    return f"{_session_prefix[0]}{next(_serials):X}"


class ListenerMode(enum.Enum):
    MX = "mx"  # port 25: anyone may send to local users; relay needs AUTH or a network
    SUBMISSION = "submission"  # port 587: STARTTLS, AUTH required to send (RFC 6409)
    SUBMISSIONS = "submissions"  # port 465: implicit TLS, AUTH required (RFC 8314)


@dataclass(slots=True)
class Transaction:
    """One mail transaction, from MAIL to the end of data (RFC 5321 §3.3)."""

    sender: str
    params: MailParams
    recipients: list[Recipient] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    receiving: bool = False  # after 354 or the first BDAT: data_timeout applies
    size: int = 0


class SmtpService:
    """Everything SMTP sessions share; hands each accepted stream to a new session."""

    def __init__(
        self,
        config: Config,
        store: api.Store,
        directory: Directory,
        authenticator: Authenticator,
        tls: ssl.SSLContext | None,
        shutdown: asyncio.Event,
    ) -> None:
        self.config = config
        self.store = store
        self.directory = directory
        self.authenticator = authenticator
        self.tls = tls
        self.shutdown = shutdown
        smtp = config.smtp
        self.engine_config = EngineConfig(
            max_message_size=smtp.max_message_size,
            bare_newline=smtp.bare_newline,
            max_commands=smtp.max_commands,
            max_errors=smtp.max_errors,
            extensions=_extensions(config),
        )
        self.policy = RecipientPolicy(config, directory, store)
        self.etrn: EtrnService | None = None  # set by the app when the queue worker runs
        self.notifier: Notifier | None = None  # ditto: DSNs for NOTIFY=SUCCESS

    def handler(self, mode: ListenerMode) -> Callable[[Stream], Awaitable[None]]:
        async def serve(stream: Stream) -> None:
            session = SmtpSession(self, mode, stream)
            engine = ServerEngine(self.engine_config)
            await drive(stream, engine, session, NEED_DATA, self.shutdown, self.tls)

        return serve

    async def refuse(self, stream: Stream) -> None:
        """Over the connection limits: RFC 5321 §3.1 allows a 421 instead of a greeting."""
        try:
            await stream.send_all(replies.format_reply(TOO_MANY_CONNECTIONS))
        finally:
            stream.close()


def _extensions(config: Config) -> frozenset[Extension]:
    """The extensions the engine lets through; the rest it answers with 502."""
    offered = set(ALL_EXTENSIONS)  # ETRN answers 502 when no queue worker runs
    if not config.smtp.sendmail_extensions:
        offered.discard(Extension.SENDMAIL)
    return frozenset(offered)


class SmtpSession:
    """One SMTP connection's decisions (the `net.driver.Session` protocol)."""

    def __init__(self, service: SmtpService, mode: ListenerMode, stream: Stream) -> None:
        self.service = service
        self.config = service.config
        self.mode = mode
        self.stream = stream
        self.session_id = next_session_id()
        self.helo: str | None = None
        self.esmtp = False
        self.account: api.Account | None = None
        self.transaction: Transaction | None = None
        self.transactions = 0
        self.verbose = False
        self.one_transaction = False
        self.tls_requested = False
        self._sasl: sasl.SaslExchange | None = None
        self._peer = ipaddress.ip_address(stream.peer_ip or 0)  # 0.0.0.0: never loopback

    # -- driver protocol -------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        if self.transaction is not None and self.transaction.receiving:
            return self.config.smtp.data_timeout
        return self.config.smtp.command_timeout

    @property
    def busy(self) -> bool:
        return self.transaction is not None

    async def greet(self) -> Sequence[Reply]:
        log.event(
            "smtp.connect",
            id=self.session_id,
            peer=self.stream.peer_ip,
            mode=self.mode.value,
            tls=self.stream.tls,
        )
        # RFC 5321 §4.2: the greeting names the host; "ESMTP" tells the client to try EHLO.
        return [Reply(220, None, f"{self.config.hostname} ESMTP Pillarbox")]

    async def handle(self, event: Event) -> Sequence[Reply]:
        handler = HANDLERS[type(event)]
        return await handler(self, event)

    def tls_started(self, stream: Stream) -> None:
        # RFC 3207 §4.2: forget everything learned before TLS, the client must EHLO again.
        self.tls_requested = False
        self.helo = None
        self.transaction = None
        log.event(
            "smtp.tls", id=self.session_id, version=stream.tls_version, cipher=stream.tls_cipher
        )

    def timeout_reply(self) -> Reply:
        log.event("smtp.timeout", id=self.session_id)
        return TIMEOUT

    def shutdown_reply(self) -> Reply:
        return SHUTTING_DOWN

    async def close(self) -> None:
        log.event("smtp.disconnect", id=self.session_id, transactions=self.transactions)

    # -- facts about this session ----------------------------------------------------------

    @property
    def loopback(self) -> bool:
        return self._peer.is_loopback

    @property
    def auth_allowed(self) -> bool:
        """RFC 4954 §4 / DESIGN.md: AUTH only over TLS, or on loopback when configured."""
        return self.stream.tls or (self.loopback and self.config.auth.allow_plaintext_on_loopback)

    def offer(self) -> Offer:
        smtp = self.config.smtp
        return Offer(
            max_message_size=smtp.max_message_size,
            starttls=not self.stream.tls and self.service.tls is not None,
            auth=self.auth_allowed and self.account is None,
            vrfy=smtp.vrfy,
            expn=smtp.expn,
            sendmail_extensions=smtp.sendmail_extensions,
            etrn=self.service.etrn is not None,
        )

    # -- handlers: greeting and session commands --------------------------------------------

    async def on_helo(self, event: Helo) -> Sequence[Reply]:
        self.helo, self.esmtp, self.transaction = event.name, event.extended, None
        greeting = f"{self.config.hostname} Hello {event.name} [{self.stream.peer_ip}]"
        if not event.extended:
            return [Reply(250, None, greeting)]
        # RFC 5321 §4.1.1.1: no enhanced code on EHLO lines (keywords must start the text).
        return [Reply(250, None, (greeting, *ehlo_keywords(self.offer())))]

    async def on_noop(self, event: Noop) -> Sequence[Reply]:
        return [OK]

    async def on_rset(self, event: Rset) -> Sequence[Reply]:
        self.transaction = None
        return [OK]

    async def on_quit(self, event: Quit) -> Sequence[Reply]:
        return [CLOSING]

    async def on_closed(self, event: ConnectionClosed) -> Sequence[Reply]:
        self.transaction = None
        return []

    async def on_rejected(self, event: Rejected) -> Sequence[Reply]:
        if self.transaction is not None and self.transaction.receiving:
            # A refused body (too big, bare CR/LF) or a refusal between BDAT chunks ends the
            # transaction: never store what remains of a message with a part missing.
            self.transaction = None
        return [event.reply]

    async def on_help(self, event: Help) -> Sequence[Reply]:
        if event.topic is None:
            return [Reply(214, "2.0.0", help_lines(self.offer()))]
        text = HELP_TOPICS.get(event.topic.upper())
        return [Reply(214, "2.0.0", text)] if text else [HELP_UNKNOWN]

    async def on_vrfy(self, event: Vrfy) -> Sequence[Reply]:
        if not self.config.smtp.vrfy:
            return [VRFY_DISABLED]  # RFC 5321 §3.5.3: 252 reveals nothing
        return list(await self.service.policy.vrfy(event.arg))

    async def on_expn(self, event: Expn) -> Sequence[Reply]:
        if not self.config.smtp.expn:
            return [EXPN_DISABLED]
        return list(await self.service.policy.expn(event.arg))

    async def on_etrn(self, event: Etrn) -> Sequence[Reply]:
        # RFC 1985: who may ask, and for what, is decided in delivery/etrn.py.
        if self.service.etrn is None:
            return [ETRN_UNAVAILABLE]
        authenticated = self.account is not None
        return [
            await self.service.etrn.handle(event.arg, authenticated=authenticated, peer=self._peer)
        ]

    async def on_verb(self, event: Verb) -> Sequence[Reply]:
        self.verbose = True
        return [VERBOSE_ON]

    async def on_onex(self, event: Onex) -> Sequence[Reply]:
        self.one_transaction = True
        return [ONEX_OK]

    async def on_starttls(self, event: StartTls) -> Sequence[Reply]:
        if self.stream.tls:
            return [TLS_ACTIVE]
        if self.service.tls is None:
            return [TLS_UNAVAILABLE]
        self.tls_requested = True
        return [READY_TLS]

    # -- handlers: AUTH (RFC 4954) ---------------------------------------------------------

    async def on_auth(self, event: Auth) -> Sequence[Reply]:
        if self.account is not None:
            return [replies.ALREADY_AUTHENTICATED]
        if not self.auth_allowed:
            return [ENCRYPTION_REQUIRED]
        try:
            self._sasl = sasl.start(event.mechanism, event.initial)
        except sasl.UnsupportedMechanismError:
            return [UNKNOWN_MECHANISM]
        return await self._sasl_step(None)

    async def on_auth_response(self, event: AuthResponse) -> Sequence[Reply]:
        try:
            response = sasl.decode_b64_response(event.line)
        except sasl.InvalidBase64Error:
            self._sasl = None
            return [replies.BAD_BASE64]
        if response is None:
            self._sasl = None
            return [AUTH_CANCELLED]
        return await self._sasl_step(response)

    async def _sasl_step(self, response: bytes | None) -> Sequence[Reply]:
        assert self._sasl is not None
        step = self._sasl.step(response)
        if isinstance(step, sasl.Challenge):
            return [Reply(334, None, sasl.encode_challenge(step.data).decode("ascii"))]
        self._sasl = None
        if isinstance(step, sasl.SaslFailure):
            log.event("smtp.auth", id=self.session_id, result="malformed", reason=step.reason)
            return [AUTH_FAILED]
        result = await self.service.authenticator.authenticate(
            step.authcid, step.password, self.stream.peer_ip
        )
        log.event("smtp.auth", id=self.session_id, user=step.authcid, result=result.outcome.value)
        if result.outcome is Outcome.OK and result.account is not None:
            self.account = result.account
            return [AUTH_OK]
        if result.outcome is Outcome.REFUSED:
            return [AUTH_THROTTLED]
        return [AUTH_FAILED]

    # -- handlers: the mail transaction (RFC 5321 §3.3) -------------------------------------

    async def on_mail(self, event: MailFrom) -> Sequence[Reply]:
        if self.one_transaction and self.transactions:
            return [ONE_TRANSACTION]
        if self.mode is not ListenerMode.MX and self.account is None:
            return [AUTH_REQUIRED]  # RFC 6409 §4.3 / RFC 4954 §6
        self.transaction = Transaction(event.address, event.params)
        return [SENDER_OK]

    async def on_rcpt(self, event: RcptTo) -> Sequence[Reply]:
        transaction = self.transaction
        assert transaction is not None  # the engine refuses RCPT before MAIL
        if len(transaction.recipients) >= self.config.smtp.max_recipients:
            return [TOO_MANY_RECIPIENTS]
        decision = await self.service.policy.check_recipient(
            event.address, event.params, self.account is not None, self._peer
        )
        if isinstance(decision, Reply):
            log.event("smtp.rcpt", id=self.session_id, rcpt=event.address, code=decision.code)
            return [decision]
        transaction.recipients.append(decision)
        return [RECIPIENT_OK]

    async def on_data(self, event: Data) -> Sequence[Reply]:
        transaction = self.transaction
        if transaction is None or not transaction.recipients:
            return [replies.NO_VALID_RECIPIENTS]
        transaction.receiving = True
        return [START_DATA]

    async def on_message(self, event: MessageData) -> Sequence[Reply]:
        return await self._finish(event.body)

    async def on_bdat(self, event: BdatChunk) -> Sequence[Reply]:
        transaction = self.transaction
        if transaction is None or not transaction.recipients:
            return [replies.NO_VALID_RECIPIENTS]
        transaction.receiving = True
        transaction.chunks.append(event.data)
        transaction.size += len(event.data)
        limit = self.config.smtp.max_message_size
        if limit and transaction.size > limit:
            self.transaction = None  # RFC 3030 §2: later chunks are refused until RSET
            return [replies.MESSAGE_TOO_BIG]
        if not event.last:
            return [Reply(250, "2.0.0", f"{len(event.data)} octets received")]
        body = b"".join(transaction.chunks)
        return await self._finish(body)

    async def _finish(self, body: bytes) -> Sequence[Reply]:
        """End of data: loop check, trace headers, one durable store commit, then 250."""
        transaction = self.transaction
        assert transaction is not None
        self.transaction = None
        self.transactions += 1
        if trace.count_received(body) >= self.config.smtp.max_received_headers:
            return [LOOP_DETECTED]  # RFC 5321 §6.3
        queue_id = next_queue_id()
        info = trace.TraceInfo(
            helo=self.helo or "unknown",
            peer_ip=self.stream.peer_ip,
            hostname=self.config.hostname,
            queue_id=queue_id,
            esmtp=self.esmtp,
            tls=self.stream.tls,
            authenticated=self.account is not None,
            smtputf8=transaction.params.smtputf8,
            recipient=transaction.recipients[0].address
            if len(transaction.recipients) == 1
            else None,
            tls_version=self.stream.tls_version,
            tls_cipher=self.stream.tls_cipher,
        )
        stored = trace.return_path_header(transaction.sender) + trace.received_header(info) + body
        delivery = self.service.policy.delivery(
            transaction.sender, transaction.params, transaction.recipients, stored
        )
        try:
            result = await self.service.store.deliver(delivery)
        except api.QuotaExceeded:
            return [MAILBOX_FULL]
        except api.StoreError as error:
            log.event("smtp.store-failed", id=self.session_id, error=type(error).__name__)
            return [STORE_FAILED]
        log.event(
            "smtp.accept",
            id=self.session_id,
            queue_id=queue_id,
            sender=transaction.sender,
            rcpts=len(transaction.recipients),
            size=len(stored),
            local=len(result.entries),
            queued=len(result.queued),
        )
        await self._notify_success(transaction, stored)
        reply = Reply(250, "2.0.0", f"Ok: queued as {queue_id}")
        if not self.verbose:
            return [reply]
        return [*self.service.policy.verbose_report(transaction.recipients), reply]

    async def _notify_success(self, transaction: Transaction, stored: bytes) -> None:
        """RFC 3461 §4.1: a "delivered" DSN for recipients that asked for SUCCESS and were
        put into local mailboxes; remote ones are reported on by the queue worker."""
        notifier = self.service.notifier
        asked = [
            r.dsn
            for r in transaction.recipients
            if "SUCCESS" in r.dsn.notify and all(isinstance(t, LocalMailbox) for t in r.targets)
        ]
        if notifier is None or not asked:
            return
        envelope = self.service.policy.envelope(transaction.sender, transaction.params)
        try:
            await notifier.delivered_locally(envelope, stored, asked, dt.datetime.now(dt.UTC))
        except api.StoreError as error:  # the message is stored; only the notice is lost
            log.event("smtp.dsn-failed", id=self.session_id, error=type(error).__name__)


# Each handler takes its own event type; the table pairs them, so the key fixes the type.
Handler = Callable[[SmtpSession, Any], Awaitable[Sequence[Reply]]]

# STYLE.md §5: dispatch through an explicit table; tests check every event has a handler.
HANDLERS: Final[dict[type, Handler]] = {
    Helo: SmtpSession.on_helo,
    MailFrom: SmtpSession.on_mail,
    RcptTo: SmtpSession.on_rcpt,
    Data: SmtpSession.on_data,
    MessageData: SmtpSession.on_message,
    BdatChunk: SmtpSession.on_bdat,
    Rset: SmtpSession.on_rset,
    Noop: SmtpSession.on_noop,
    Quit: SmtpSession.on_quit,
    Help: SmtpSession.on_help,
    Vrfy: SmtpSession.on_vrfy,
    Expn: SmtpSession.on_expn,
    StartTls: SmtpSession.on_starttls,
    Auth: SmtpSession.on_auth,
    AuthResponse: SmtpSession.on_auth_response,
    Etrn: SmtpSession.on_etrn,
    Verb: SmtpSession.on_verb,
    Onex: SmtpSession.on_onex,
    Rejected: SmtpSession.on_rejected,
    ConnectionClosed: SmtpSession.on_closed,
}
