"""The queue worker against a real SQLite store and a scripted SMTP server on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.message
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pillarbox.config import Config, DeliveryConfig
from pillarbox.delivery.retry import DELAY_NOTICE_MARK
from pillarbox.delivery.routing import Hop, Route, RouteFailure, Router
from pillarbox.delivery.worker import DeliveryWorker
from pillarbox.directory.resolver import Directory
from pillarbox.smtp import trace
from pillarbox.smtp.client_wire import ServerReply, synthetic
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore
from tests.delivery.sink import Sink

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
BODY = b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: test\r\n\r\nHello.\r\n"


class FixedRouter(Router):
    """Every domain goes to the sink, except those given a failure."""

    def __init__(self, port: int, failures: dict[str, ServerReply] | None = None) -> None:
        super().__init__(DeliveryConfig(dns=("127.0.0.1:9",)), "mx.a.test")
        self.port = port
        self.failures = failures or {}

    async def route(self, domain: str) -> Route | RouteFailure:
        if domain in self.failures:
            return RouteFailure(self.failures[domain])
        return Route((Hop("sink.test", ("127.0.0.1",)),), self.port)


@dataclasses.dataclass
class World:
    store: SqliteStore
    sink: Sink
    worker: DeliveryWorker
    clock: list[dt.datetime]

    async def queue(
        self,
        *recipients: api.DsnRecipient | str,
        body: bytes = BODY,
        sender: str = "alice@a.test",
        ret: str | None = None,
    ) -> api.DeliveryResult:
        remote = tuple(api.DsnRecipient(r) if isinstance(r, str) else r for r in recipients)
        stored = trace.return_path_header(sender) + body
        envelope = api.Envelope(sender, ret=ret)
        return await self.store.deliver(
            api.Delivery(stored, envelope, remote=remote, received_at=self.clock[0])
        )

    async def inbox(self, address: str) -> list[email.message.Message]:
        account = await self.store.get_account(address)
        mailbox = await self.store.get_mailbox(account.id, api.INBOX)
        entries = await self.store.list_entries(mailbox.id)
        bodies = [await self.store.get_body(e.message_id) for e in entries]
        return [email.message_from_bytes(b) for b in bodies]


def run(
    tmp_path: Path,
    test: Callable[[World], Awaitable[None]],
    sink: Sink | None = None,
    failures: dict[str, ServerReply] | None = None,
    **delivery: object,
) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "db.sqlite3")
        await store.open()
        served = await (sink or Sink()).start()
        try:
            await store.add_domain("a.test")
            await store.add_account("alice@a.test", HASH)
            await store.add_account("postmaster@a.test", HASH)
            clock = [dt.datetime.now(dt.UTC)]
            config = Config(
                hostname="mx.a.test",
                delivery=DeliveryConfig(**delivery),  # type: ignore[arg-type]
            )
            worker = DeliveryWorker(
                config,
                store,
                Directory(store),
                router=FixedRouter(served.port, failures),
                clock=lambda: clock[0],
            )
            await test(World(store, served, worker, clock))
        finally:
            await served.stop()
            await store.close()

    asyncio.run(main())


def blocks(dsn: email.message.Message) -> list[email.message.Message]:
    """The per-message and per-recipient field blocks of a DSN (RFC 3464 §2)."""
    parts = [p for p in dsn.get_payload() if isinstance(p, email.message.Message)]
    assert parts[1].get_content_type() == "message/delivery-status"
    return [b for b in parts[1].get_payload() if isinstance(b, email.message.Message)]


def unstuff(data: bytes) -> bytes:
    assert data.endswith(b"\r\n.\r\n")
    body = data[: -len(b".\r\n")]
    return body[1:] if body.startswith(b".") else body.replace(b"\r\n..", b"\r\n.")


def test_stray_cr_lf_and_leading_dots_go_out_as_crlf_dot_stuffed_and_arrive_intact(
    tmp_path: Path,
) -> None:
    nasty = (
        b"Subject: smuggle\r\n\r\n.starts with a dot\r\nbare LF\nbare CR\rend\r\n"
        b".\nnot the end\r\n..two dots\r\n.\r\nMAIL FROM:<evil@x>\r\nlast line"
    )

    async def test(world: World) -> None:
        await world.queue("bob@b.test", body=nasty)
        await world.worker.run_once()
        [txn] = world.sink.transactions
        wire = txn.data
        # CRLF only: every CR is followed by LF and every LF preceded by CR
        assert wire.count(b"\r") == wire.count(b"\n") == wire.count(b"\r\n")
        # the only "CRLF . CRLF" is the real end of data (RFC 5321 §4.5.2)
        assert wire.find(b"\r\n.\r\n") == len(wire) - 5
        expected = re.sub(rb"\r\n|\r|\n", b"\r\n", nasty) + b"\r\n"
        assert unstuff(wire) == expected
        assert not wire.startswith(b"Return-Path")  # our final-delivery field stays home

    run(tmp_path, test)


def test_recipients_of_one_message_share_a_transaction_and_messages_share_a_connection(
    tmp_path: Path,
) -> None:
    async def test(world: World) -> None:
        for _ in range(5):
            await world.queue("bob@b.test", "carol@b.test")
        await world.queue("dave@c.test")
        assert await world.worker.run_once() == 11
        txns = world.sink.transactions
        assert sorted(len(t.recipients) for t in txns) == [1, 2, 2, 2, 2, 2]
        assert world.sink.connections == 2  # one per destination domain, reused
        assert await world.store.list_queue() == []

    run(tmp_path, test)


def test_transient_failure_is_rescheduled_with_its_error(tmp_path: Path) -> None:
    sink = Sink(rcpt_reply=lambda a: "451 4.3.0 try again later")

    async def test(world: World) -> None:
        await world.queue("bob@b.test")
        await world.worker.run_once()
        [entry] = await world.store.list_queue()
        assert (entry.attempts, entry.last_result) == (1, "451 4.3.0 try again later")
        assert entry.next_attempt == world.clock[0] + dt.timedelta(seconds=60)
        assert entry.lease_owner is None
        assert await world.worker.run_once() == 0  # not due yet
        assert await world.inbox("alice@a.test") == []  # no delay notice yet

    run(tmp_path, test, sink, retry=(60.0, 600.0))


def test_permanent_failure_bounces_to_the_local_sender_with_rfc3464_fields(
    tmp_path: Path,
) -> None:
    sink = Sink(rcpt_reply=lambda a: "550 5.1.1 no such user" if "nobody" in a else "250 ok")

    async def test(world: World) -> None:
        orcpt = api.DsnRecipient("nobody@b.test", (), "rfc822;list@a.test")
        await world.queue(orcpt, "bob@b.test", ret="FULL")
        await world.worker.run_once()
        assert await world.store.list_queue() == []
        [dsn] = await world.inbox("alice@a.test")
        assert dsn["Return-Path"] == "<>"
        report = [p for p in dsn.get_payload() if isinstance(p, email.message.Message)]
        status = blocks(dsn)
        assert status[1]["Original-Recipient"].replace(" ", "") == "rfc822;list@a.test"
        assert status[1]["Final-Recipient"] == "rfc822; nobody@b.test"
        assert (status[1]["Action"], status[1]["Status"]) == ("failed", "5.1.1")
        assert len(status) == 2  # bob was delivered: no SUCCESS asked, so no block for him
        assert report[2].get_content_type() == "message/rfc822"  # RET=FULL
        assert b"Hello." in report[2].as_bytes()

    run(tmp_path, test, sink)


def test_notify_never_suppresses_and_notify_success_gets_relayed(tmp_path: Path) -> None:
    sink = Sink(rcpt_reply=lambda a: "550 5.1.1 unknown" if "never" in a else "250 ok")

    async def test(world: World) -> None:
        await world.queue(api.DsnRecipient("never@b.test", ("NEVER",)))
        await world.queue(api.DsnRecipient("ok@b.test", ("SUCCESS",)))
        await world.worker.run_once()
        [relayed] = await world.inbox("alice@a.test")
        status = blocks(relayed)
        # RFC 3461 §5.2.2: the sink offers no DSN, so we say "relayed"
        assert (status[1]["Action"], status[1]["Final-Recipient"]) == (
            "relayed",
            "rfc822; ok@b.test",
        )

    run(tmp_path, test, sink)


def test_the_null_sender_never_gets_a_bounce_the_postmaster_does(tmp_path: Path) -> None:
    sink = Sink(rcpt_reply=lambda a: "550 5.1.1 unknown")

    async def test(world: World) -> None:
        await world.queue("gone@b.test", sender="")
        await world.worker.run_once()
        assert await world.inbox("alice@a.test") == []
        [notice] = await world.inbox("postmaster@a.test")
        assert notice["Return-Path"] == "<>"
        assert "gone@b.test" in notice.as_string()
        assert await world.store.list_queue() == []

    run(tmp_path, test, sink)


def test_null_mx_and_nxdomain_fail_at_once(tmp_path: Path) -> None:
    failures = {
        "null.test": synthetic(556, "5.1.10", "Domain null.test accepts no mail"),
        "dns.test": synthetic(451, "4.4.3", "DNS lookup failed"),
    }

    async def test(world: World) -> None:
        await world.queue("x@null.test")
        await world.queue("y@dns.test")
        await world.worker.run_once()
        [later] = await world.store.list_queue()
        assert later.recipient.address == "y@dns.test" and "4.4.3" in later.last_result
        [bounce] = await world.inbox("alice@a.test")
        status = blocks(bounce)
        assert status[1]["Status"] == "5.1.10"  # RFC 7505 §4.1

    run(tmp_path, test, failures=failures)


def test_one_delay_notice_after_delay_warning_then_expiry_bounces(tmp_path: Path) -> None:
    sink = Sink(rcpt_reply=lambda a: "450 4.2.1 mailbox busy")

    async def test(world: World) -> None:
        await world.queue("bob@b.test")
        for _ in range(4):  # every 10 minutes
            world.clock[0] += dt.timedelta(minutes=10)
            await world.worker.run_once()
        [entry] = await world.store.list_queue()
        assert entry.attempts == 4 and entry.last_result.endswith(DELAY_NOTICE_MARK)
        [delay] = await world.inbox("alice@a.test")
        status = blocks(delay)
        assert (status[1]["Action"], status[1]["Status"]) == ("delayed", "4.2.1")
        world.clock[0] += dt.timedelta(hours=2)
        await world.worker.run_once()
        assert await world.store.list_queue() == []
        _, expired = await world.inbox("alice@a.test")
        status = blocks(expired)
        assert (status[1]["Action"], status[1]["Status"]) == ("failed", "5.4.7")
        assert "450 4.2.1" in status[1]["Diagnostic-Code"]

    run(tmp_path, test, sink, retry=(60.0,), delay_warning=900.0, max_lifetime=3600.0)


def test_unreachable_host_is_retried(tmp_path: Path) -> None:
    async def test(world: World) -> None:
        await world.sink.stop()  # nothing listens on the port any more
        await world.queue("bob@b.test")
        await world.worker.run_once()
        [entry] = await world.store.list_queue()
        assert entry.attempts == 1 and "4.4.1" in entry.last_result

    run(tmp_path, test)


@pytest.mark.parametrize("held", ["b.test"])
def test_hold_domain_mail_is_held_until_released(tmp_path: Path, held: str) -> None:
    from pillarbox.delivery import etrn

    async def test(world: World) -> None:
        await world.queue("bob@b.test")
        await world.queue("x@sub.b.test")
        await world.worker.run_once()
        rows = await world.store.list_queue()
        assert [(r.recipient.address, r.held) for r in rows] == [("bob@b.test", True)]
        assert [t.recipients for t in world.sink.transactions] == [["x@sub.b.test"]]
        assert await etrn.release(world.store, "b.test") == 1
        await world.worker.run_once()
        assert [t.recipients for t in world.sink.transactions][-1] == ["bob@b.test"]
        assert await world.store.list_queue() == []

    run(tmp_path, test, hold_domains=(held,))


def test_hold_domain_mail_bounces_when_its_lifetime_runs_out(tmp_path: Path) -> None:
    """A backup MX keeps mail for ETRN no longer than any other mail (Postfix: the
    maximal_queue_lifetime); what an operator held stays."""

    async def test(world: World) -> None:
        await world.queue("bob@b.test")
        await world.queue("carol@c.test")
        await world.worker.run_once()  # b.test's entry is held for ETRN, c.test's delivered
        world.clock[0] += dt.timedelta(minutes=30)
        await world.queue("dave@b.test")
        await world.worker.run_once()
        assert [(e.recipient.address, e.held) for e in await world.store.list_queue()] == [
            ("bob@b.test", True),
            ("dave@b.test", True),
        ]
        world.clock[0] += dt.timedelta(minutes=45)  # bob's hour is over, dave's is not
        assert await world.worker.expire_held() == 1
        assert [e.recipient.address for e in await world.store.list_queue()] == ["dave@b.test"]
        [notice] = await world.inbox("alice@a.test")
        status = blocks(notice)
        assert (status[1]["Action"], status[1]["Status"]) == ("failed", "5.4.7")
        assert status[1]["Final-Recipient"] == "rfc822; bob@b.test"
        assert "Held for ETRN" in status[1]["Diagnostic-Code"]
        # An entry an operator held is not touched.
        [dave] = await world.store.list_queue()
        await world.store.hold_queue_entry(dave.id, True, note="held by operator")
        world.clock[0] += dt.timedelta(hours=2)
        assert await world.worker.expire_held() == 0
        assert len(await world.store.list_queue()) == 1

    run(tmp_path, test, hold_domains=("b.test",), max_lifetime=3600.0)


def test_success_notice_for_a_local_delivery_only_when_asked(tmp_path: Path) -> None:
    async def test(world: World) -> None:
        envelope = api.Envelope("alice@a.test", envid="E1")
        asked = api.DsnRecipient("postmaster@a.test", ("SUCCESS",))
        silent = api.DsnRecipient("alice@a.test")
        await world.worker.notifier.delivered_locally(
            envelope, BODY, [asked, silent], world.clock[0]
        )
        [notice] = await world.inbox("alice@a.test")
        per_message, per_recipient = blocks(notice)
        assert per_message["Original-Envelope-Id"] == "E1"
        assert (per_recipient["Action"], per_recipient["Status"]) == ("delivered", "2.0.0")
        assert per_recipient["Final-Recipient"] == "rfc822; postmaster@a.test"

    run(tmp_path, test)


def test_a_dropped_reused_connection_is_reopened_without_losing_a_message(
    tmp_path: Path,
) -> None:
    async def test(world: World) -> None:
        for _ in range(3):
            await world.queue("bob@b.test")
        await world.worker.run_once()
        assert len(world.sink.transactions) == 3
        assert world.sink.connections == 3
        assert await world.store.list_queue() == []

    run(tmp_path, test, Sink(per_connection=1))


def test_a_server_that_drops_every_transaction_gets_a_retry_not_a_loop(tmp_path: Path) -> None:
    sink = Sink(per_connection=1, data_reply="421 4.3.2 going away")

    async def test(world: World) -> None:
        await world.queue("bob@b.test")
        await world.worker.run_once()
        [entry] = await world.store.list_queue()
        assert entry.attempts == 1 and entry.last_result.startswith("421")

    run(tmp_path, test, sink)
