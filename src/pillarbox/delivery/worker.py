"""The queue worker: claims due queue entries by lease and delivers them over SMTP.

Each round claims a batch (`Store.claim_due`: the lease is the record that an attempt is
under way, and the same code runs on several nodes), groups the recipients by destination
domain and by message, and runs a few "lanes" per destination; each lane reuses one
connection for several messages and tries the route's hosts in order (RFC 5321 §5.1).
Every recipient's result is written as soon as its transaction ends: a 250 finishes the
entry at once, so a crash afterwards cannot deliver it twice; a crash before the entry is
finished leaves it leased, and the lease runs out (or the node's next start drops it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import secrets
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from pillarbox import log
from pillarbox.config import Config
from pillarbox.delivery.bounce import Notice, Notifier, strip_return_path
from pillarbox.delivery.retry import (
    HELD_NOTE,
    RELEASED_NOTE,
    Delivered,
    Failed,
    Retry,
    RetryPolicy,
    reply_status,
)
from pillarbox.delivery.routing import Route, RouteFailure, Router
from pillarbox.delivery.transport import Peer, SmtpConnection
from pillarbox.directory.resolver import Directory
from pillarbox.mime.dsn import DsnAction
from pillarbox.net.smtp_client import opportunistic_context
from pillarbox.smtp.client import ClientSettings, Credentials
from pillarbox.smtp.client_wire import (
    MessageOutcome,
    OutboundMessage,
    RecipientResult,
    RecipientSpec,
    ServerReply,
    synthetic,
)
from pillarbox.store import api

# Longer than any one delivery can take (RFC 5321 §4.5.3.2 timeouts add up to ~20 min
# only for a server that stalls at every step; such a lane is cut by its timeouts first).
LEASE: Final = dt.timedelta(minutes=30)
# Entries claimed at once, and claimed but not yet finished at most.
BATCH: Final = 500
MAX_IN_FLIGHT: Final = 2000
# How often an idle worker looks for due entries (a wake() makes it look at once).
POLL_INTERVAL: Final = 1.0
# Outbound connections open at once, in total and per destination domain.
MAX_CONNECTIONS: Final = 50
MAX_PER_DESTINATION: Final = 10
# A destination gets one more parallel connection for each this many messages.
MESSAGES_PER_LANE: Final = 20
# Messages sent over one connection before it is closed and reopened (Postfix: 100).
MESSAGES_PER_CONNECTION: Final = 100
NO_HOST: Final = synthetic(451, "4.4.1", "No mail server could be reached")
INTERNAL_ERROR: Final = synthetic(451, "4.3.0", "Internal error during delivery")
BODY_MISSING: Final = synthetic(554, "5.3.0", "Queued message body is missing")
# Mail kept for a hold domain (a backup MX waiting for ETRN, RFC 1985) lives no longer
# than other mail (`delivery.max_lifetime`, as Postfix's maximal_queue_lifetime); the
# held entries are looked over this often, and those past their lifetime bounce.
HELD_EXPIRY_CHECK: Final = dt.timedelta(minutes=5)
HELD_EXPIRED: Final = synthetic(451, "4.4.7", "Held for ETRN until the queue lifetime ran out")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(slots=True)
class _Message:
    """The recipients of one stored message that go to one destination."""

    message_id: api.MessageId
    entries: list[api.QueueEntry]


def _by_message(entries: Sequence[api.QueueEntry]) -> list[_Message]:
    groups: dict[api.MessageId, _Message] = {}
    for entry in entries:
        groups.setdefault(entry.message_id, _Message(entry.message_id, [])).entries.append(entry)
    return list(groups.values())


def client_settings(config: Config) -> ClientSettings:
    """EHLO name and, for a smarthost with `smarthost_username`, the AUTH credentials."""
    delivery = config.delivery
    credentials = None
    if delivery.smarthost and delivery.smarthost_username:
        password = ""
        if delivery.smarthost_password_file:
            text = Path(delivery.smarthost_password_file).read_text(encoding="utf-8")
            password = text.rstrip("\r\n")
        credentials = Credentials(delivery.smarthost_username, password)
    return ClientSettings(helo_name=config.hostname, credentials=credentials)


def settings_for(settings: ClientSettings, peer: Peer) -> ClientSettings:
    """Credentials go only over TLS, except to a smarthost on loopback (RFC 4954 §4)."""
    if settings.credentials is None:
        return settings
    loopback = ipaddress.ip_address(peer.address).is_loopback
    return replace(settings, allow_plaintext_auth=loopback, require_tls=not loopback)


class DeliveryWorker:
    """Delivers the outbound queue until shutdown."""

    def __init__(
        self,
        config: Config,
        store: api.Store,
        directory: Directory,
        *,
        router: Router | None = None,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], dt.datetime] = now_utc,
    ) -> None:
        self.config = config
        self.store = store
        self.node = config.hostname
        self.owner = f"{self.node}/{secrets.token_hex(6)}"
        self.policy = RetryPolicy.from_config(config.delivery)
        self.notifier = Notifier(store, directory, config.hostname)
        self.router = router or Router(config.delivery, config.hostname)
        self.tls = tls if tls is not None else opportunistic_context()
        self.settings = client_settings(config)
        self.clock = clock
        self.hold_domains = frozenset(d.lower() for d in config.delivery.hold_domains)
        self._wake = asyncio.Event()
        self._connections = asyncio.Semaphore(MAX_CONNECTIONS)
        self._per_destination: dict[str, asyncio.Semaphore] = {}
        self._in_flight = 0  # claimed entries whose destination task has not ended

    def wake(self) -> None:
        """Look for due entries now (after ETRN or a flush)."""
        self._wake.set()

    async def run(self, shutdown: asyncio.Event) -> None:
        """Claim and deliver until shutdown; a slow destination never holds up the others."""
        released = await self.store.release_leases(self.node + "/")
        log.event("delivery.start", owner=self.owner, released=released)
        next_expiry = self.clock()
        async with asyncio.TaskGroup() as tasks:
            while not shutdown.is_set():
                if self.hold_domains and self.clock() >= next_expiry:
                    next_expiry = self.clock() + HELD_EXPIRY_CHECK
                    await self.expire_held()
                room = MAX_IN_FLIGHT - self._in_flight
                claimed = await self._claim(min(room, BATCH), tasks) if room > 0 else 0
                if not claimed:
                    await self._idle(shutdown)

    async def _claim(self, limit: int, tasks: asyncio.TaskGroup) -> int:
        """Claim up to `limit` due entries and start their destinations' tasks."""
        try:
            claimed = await self.store.claim_due(self.owner, self.clock(), LEASE, limit)
            entries = await self._hold_for_etrn(claimed)
        except api.StoreError as error:
            log.event("delivery.store-error", error=type(error).__name__)
            return 0
        for domain, group in self._by_destination(entries).items():
            self._in_flight += len(group)
            tasks.create_task(self._tracked(domain, group))
        return len(claimed)

    async def _tracked(self, domain: str, entries: list[api.QueueEntry]) -> None:
        try:
            await self._destination(domain, entries)
        except Exception:  # keep the worker running; the leases bring the entries back
            log.exception("delivery.error", domain=domain)
        finally:
            self._in_flight -= len(entries)
            self._wake.set()  # room for more

    async def _idle(self, shutdown: asyncio.Event) -> None:
        self._wake.clear()
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(shutdown.wait())}
        try:
            await asyncio.wait(waiters, timeout=POLL_INTERVAL, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Claim one batch and deliver all of it; returns how many were claimed (tests, bench)."""
        async with asyncio.TaskGroup() as tasks:
            return await self._claim(BATCH, tasks)

    def _by_destination(self, entries: list[api.QueueEntry]) -> dict[str, list[api.QueueEntry]]:
        destinations: dict[str, list[api.QueueEntry]] = {}
        for entry in entries:
            key = "" if self.config.delivery.smarthost else domain_of(entry.recipient.address)
            destinations.setdefault(key, []).append(entry)
        return destinations

    async def expire_held(self) -> int:
        """Bounce hold-domain mail older than `delivery.max_lifetime` (RFC 3463 X.4.7,
        RFC 3464 "failed"); entries an operator held stay. Returns how many went."""
        now = self.clock()
        try:
            expired = [
                entry
                for entry in await self.store.list_queue()
                if entry.held
                and entry.last_result == HELD_NOTE
                and now >= self.policy.give_up_at(entry.created)
            ]
            for message in _by_message(expired):
                result = _all(message, HELD_EXPIRED).results
                notices = [
                    _notice(entry, DsnAction.FAILED, outcome, None, "5.4.7")
                    for entry, outcome in zip(message.entries, result, strict=True)
                ]
                await self._notify(message, notices)
                for entry in message.entries:
                    await self.store.finish_queue_entry(entry.id)
                    log.event("delivery.held-expired", id=entry.id, rcpt=entry.recipient.address)
        except api.StoreError as error:
            log.event("delivery.store-error", error=type(error).__name__)
            return 0
        return len(expired)

    async def _hold_for_etrn(self, entries: list[api.QueueEntry]) -> list[api.QueueEntry]:
        """Hold domains (backup MX): keep their mail until ETRN or `queue flush` (RFC 1985)."""
        keep = []
        for entry in entries:
            held = domain_of(entry.recipient.address) in self.hold_domains
            if held and entry.last_result != RELEASED_NOTE:
                await self.store.hold_queue_entry(entry.id, True, note=HELD_NOTE)
            else:
                keep.append(entry)
        return keep

    async def _destination(self, domain: str, entries: list[api.QueueEntry]) -> None:
        messages = _by_message(entries)
        route = await self.router.route(domain)
        if isinstance(route, RouteFailure):
            log.event("delivery.route", domain=domain, result=str(route.reply))
            for message in messages:
                await self._record(message, _all(message, route.reply), None)
            return
        # Few messages share one connection; many spread over up to MAX_PER_DESTINATION.
        lanes = max(1, min(MAX_PER_DESTINATION, len(messages) // MESSAGES_PER_LANE))
        async with asyncio.TaskGroup() as tasks:
            for lane in range(lanes):
                tasks.create_task(self._lane(route, messages[lane::lanes]))

    async def _lane(self, route: Route, pending: list[_Message]) -> None:
        """Deliver a share of a destination's messages; a bug fails only these, for now."""
        try:
            await self._try_hops(route, pending)
        except Exception:  # one broken lane must never stop the worker
            log.exception("delivery.lane-error")
            for message in pending:
                await self._record(message, _all(message, INTERNAL_ERROR), None)

    async def _try_hops(self, route: Route, pending: list[_Message]) -> None:
        """Try each host and address in turn until every message has a result."""
        last = NO_HOST
        for hop in route.hops:
            for address in hop.addresses:
                if not pending:
                    return
                async with self._slots(hop.host), self._connections:
                    failure = await self._via(Peer(address, route.port, hop.host), pending)
                last = failure or last
        for message in pending:
            await self._record(message, _all(message, last), None)

    def _slots(self, key: str) -> asyncio.Semaphore:
        """Connections to one destination host at once (shared by all its lanes)."""
        if key not in self._per_destination:
            self._per_destination[key] = asyncio.Semaphore(MAX_PER_DESTINATION)
        return self._per_destination[key]

    async def _via(self, peer: Peer, pending: list[_Message]) -> ServerReply | None:
        """Deliver from `pending` over connections to one address; the failure that ended it."""
        while pending:
            settings = settings_for(self.settings, peer)
            connection = await SmtpConnection.open(peer, settings, self.tls)
            if isinstance(connection, ServerReply):
                log.event("delivery.connect-failed", host=peer.host, reply=str(connection))
                return connection
            before = len(pending)
            try:
                failure = await self._send_some(connection, pending)
            finally:
                await connection.close()
            if len(pending) == before:  # no progress: this address is done for now
                return failure or NO_HOST
            # After a failure that followed progress (the server dropped a reused
            # connection, say), the same address gets a fresh connection.
        return None

    async def _send_some(
        self, connection: SmtpConnection, pending: list[_Message]
    ) -> ServerReply | None:
        while pending and connection.messages < MESSAGES_PER_CONNECTION:
            message = pending[0]
            outbound = await self._outbound(message)
            if outbound is None:
                pending.pop(0)
                continue
            outcome = await connection.send(outbound)
            if not connection.usable and not any(r.accepted for r in outcome.results):
                return connection.failure  # the message stays pending for the next host
            pending.pop(0)
            await self._record(message, outcome, connection.host)
            if not connection.usable:
                return connection.failure
        return None

    async def _outbound(self, message: _Message) -> OutboundMessage | None:
        try:
            body = await self.store.get_body(message.message_id)
        except api.NotFound:
            await self._record(message, _all(message, BODY_MISSING), None)
            return None
        envelope = message.entries[0].envelope
        recipients = tuple(
            RecipientSpec(e.recipient.address, e.recipient.notify, e.recipient.orcpt)
            for e in message.entries
        )
        return OutboundMessage(
            sender=envelope.sender,
            recipients=recipients,
            body=strip_return_path(body),  # the next hop adds its own (RFC 5321 §4.4)
            body_type=envelope.body,
            smtputf8=envelope.smtputf8,
            ret=envelope.ret,
            envid=envelope.envid,
        )

    async def _record(self, message: _Message, outcome: MessageOutcome, host: str | None) -> None:
        """Write each recipient's result; delivered ones first (no duplicate after a crash)."""
        now = self.clock()
        notices: list[Notice] = []
        failed: list[api.QueueId] = []
        for entry, result in zip(message.entries, outcome.results, strict=True):
            decision = self.policy.decide(
                result.reply,
                created=entry.created,
                attempts=entry.attempts,
                last_result=entry.last_result,
                now=now,
            )
            log.event(
                "delivery.result",
                id=entry.id,
                rcpt=entry.recipient.address,
                host=host,
                reply=str(result.reply),
                decision=type(decision).__name__.lower(),
            )
            if isinstance(decision, Delivered):
                await self.store.finish_queue_entry(entry.id)
                if not outcome.dsn_passed:  # RFC 3461 §5.2.2: "relayed" to a non-DSN host
                    notices.append(_notice(entry, DsnAction.RELAYED, result, host))
            elif isinstance(decision, Failed):
                failed.append(entry.id)
                notices.append(_notice(entry, DsnAction.FAILED, result, host, decision.status))
            elif isinstance(decision, Retry):
                await self._retry(entry, decision, result, host, notices)
        if notices:
            await self._notify(message, notices)
        for queue_id in failed:
            await self.store.finish_queue_entry(queue_id)

    async def _retry(
        self,
        entry: api.QueueEntry,
        decision: Retry,
        result: RecipientResult,
        host: str | None,
        notices: list[Notice],
    ) -> None:
        if decision.delay_notice:
            until = self.policy.give_up_at(entry.created)
            notices.append(_notice(entry, DsnAction.DELAYED, result, host, until=until))
        await self.store.reschedule_queue_entry(
            entry.id, decision.next_attempt, decision.last_result
        )

    async def _notify(self, message: _Message, notices: list[Notice]) -> None:
        entry = message.entries[0]
        try:
            original = await self.store.get_body(message.message_id)
        except api.NotFound:
            original = b"\r\n"
        try:
            await self.notifier.notify(entry.envelope, original, notices, entry.created)
        except api.StoreError as error:
            log.event("delivery.dsn-failed", id=entry.id, error=type(error).__name__)


def _all(message: _Message, reply: ServerReply) -> MessageOutcome:
    return MessageOutcome(
        tuple(RecipientResult(e.recipient.address, reply) for e in message.entries)
    )


def _notice(
    entry: api.QueueEntry,
    action: DsnAction,
    result: RecipientResult,
    host: str | None,
    status: str | None = None,
    until: dt.datetime | None = None,
) -> Notice:
    return Notice(
        recipient=entry.recipient,
        action=action,
        status=status or reply_status(result.reply),
        diagnostic=str(result.reply),
        remote_mta=host,
        will_retry_until=until,
    )
