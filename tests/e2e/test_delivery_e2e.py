"""Outbound delivery between two real Pillarbox instances, routed by a test DNS server."""

from __future__ import annotations

import asyncio
import email.message
import re
import smtplib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.delivery import postfix
from tests.delivery.dns_server import Zone, dns_server
from tests.delivery.nodes import Node, link, node, point_mx, wait_for
from tests.delivery.sink import Sink, threaded

pytestmark = pytest.mark.e2e


def message(subject: str, sender: str = "alice@a.test", to: str = "bob@b.test") -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@a.test>\r\n\r\nHello Bob.\r\n"
    ).encode()


@pytest.fixture
def zone() -> Iterator[tuple[Zone, int]]:
    with dns_server() as served:
        yield served


@pytest.fixture
def pair(tmp_path: Path, zone: tuple[Zone, int]) -> Iterator[tuple[Node, Node]]:
    """Node A (a.test, user alice) delivering to node B (b.test, user bob); both stopped."""
    records, port = zone
    a = node(tmp_path / "a", "a", port)
    b = node(tmp_path / "b", "b", port)
    link(a, b)
    link(b, a)
    point_mx(records, a, b)
    a.setup("alice")
    b.setup("bob")
    try:
        yield a, b
    finally:
        a.kill()
        b.kill()


def test_a_message_submitted_on_a_arrives_in_the_mailbox_on_b(pair: tuple[Node, Node]) -> None:
    a, b = pair
    a.start()
    b.start()
    a.submit("alice@a.test", ["bob@b.test"], message("hello b"))
    [got] = wait_for(lambda: b.messages("bob@b.test"), what="delivery to B")
    assert got["Subject"] == "hello b"
    # B's final delivery wrote the one Return-Path; A's copy did not travel with it.
    assert got.get_all("Return-Path") == ["<alice@a.test>"]
    received = got.get_all("Received") or []
    assert "by mx.b.test" in received[0] and "from mx.a.test" in received[0]
    assert "with ESMTPS" in received[0]  # opportunistic STARTTLS (RFC 3207) was used
    assert "by mx.a.test" in received[1]
    assert wait_for(lambda: a.queue() == [], what="A's queue to empty") is True
    # a list on A with a local and a remote member: the remote copy goes through the queue
    a.cli("alias", "add", "team@a.test", "alice@a.test", "bob@b.test")
    a.submit("alice@a.test", ["team@a.test"], message("to the team", to="team@a.test"))
    [local] = wait_for(lambda: a.messages("alice@a.test"), what="the local copy")
    _, remote = wait_for(
        lambda: b.messages("bob@b.test")[1:] and b.messages("bob@b.test"), what="the remote copy"
    )
    assert local["Subject"] == remote["Subject"] == "to the team"


def test_with_b_stopped_mail_waits_in_a_queue_is_retried_and_arrives_when_b_starts(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    a.start()
    a.submit("alice@a.test", ["bob@b.test"], message("while b sleeps"))
    # retry = ["1s"]: several attempts fail, each recorded with its error
    [row] = wait_for(lambda: [r for r in a.queue() if int(r[3]) >= 2], what="two failed attempts")
    assert row[2] == "<bob@b.test>" and "4.4.1" in row[7] and "Connection" in row[7]
    listing = a.cli("queue", "list")  # the operator's view
    assert f"{row[0]}\t<alice@a.test>\t<bob@b.test>\t" in listing and "4.4.1" in listing
    a.cli("queue", "hold", row[0])
    assert a.queue()[0][6] == "held"
    a.cli("queue", "release", row[0])
    assert a.queue()[0][6] == "queued"
    assert b.root.joinpath("data").exists() is True  # B exists but is not running
    b.start()
    [got] = wait_for(lambda: b.messages("bob@b.test"), what="delivery once B runs")
    assert got["Subject"] == "while b sleeps"
    wait_for(lambda: a.queue() == [], what="A's queue to empty")
    assert a.messages("alice@a.test") == []  # no delay notice: delay_warning is 4h


def dsn_parts(report: email.message.Message) -> tuple[str, list[email.message.Message], str]:
    """(human text, [per-message, per-recipient] fields, returned part's type)."""
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = [p for p in report.get_payload() if isinstance(p, email.message.Message)]
    human, status, returned = parts
    assert status.get_content_type() == "message/delivery-status"
    blocks = [b for b in status.get_payload() if isinstance(b, email.message.Message)]
    return str(human.get_payload()), blocks, returned.get_content_type()


def test_a_550_from_b_makes_a_bounce_an_rfc3464_dsn_to_the_sender(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    a.start()
    b.start()
    a.submit("alice@a.test", ["nobody@b.test"], message("to nobody", to="nobody@b.test"))
    [bounce] = wait_for(lambda: a.messages("alice@a.test"), what="the bounce")
    assert bounce.get_all("Return-Path") == ["<>"]  # RFC 5321 §4.5.5: from the null sender
    assert bounce["Auto-Submitted"] == "auto-replied"
    text, (per_message, per_recipient), returned = dsn_parts(bounce)
    assert returned == "text/rfc822-headers"
    assert "nobody@b.test" in text
    assert per_message["Reporting-MTA"] == "dns; mx.a.test"
    assert per_recipient["Final-Recipient"] == "rfc822; nobody@b.test"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; mx.b.test"
    assert per_recipient["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    # RET not given: the headers come back (RFC 3461 §4.3 lets the MTA choose)
    assert "Subject: to nobody" in bounce.as_string()
    assert a.queue() == [] and b.messages("bob@b.test") == []


@pytest.fixture
def slow_pair(tmp_path: Path, zone: tuple[Zone, int]) -> Iterator[tuple[Node, Node]]:
    """Like `pair`, but A warns about delays after 2 seconds."""
    records, port = zone
    a = node(tmp_path / "a", "a", port, extra='delay_warning = "2s"\n')
    b = node(tmp_path / "b", "b", port)
    link(a, b)
    point_mx(records, a, b)
    a.setup("alice")
    b.setup("bob")
    try:
        yield a, b
    finally:
        a.kill()
        b.kill()


def test_a_delay_dsn_is_sent_once_after_delay_warning(slow_pair: tuple[Node, Node]) -> None:
    a, b = slow_pair
    a.start()
    a.submit("alice@a.test", ["bob@b.test"], message("slow"))
    [notice] = wait_for(lambda: a.messages("alice@a.test"), what="the delay notice")
    _, (_, per_recipient), _ = dsn_parts(notice)
    assert per_recipient["Action"] == "delayed"
    assert per_recipient["Status"].startswith("4.")
    assert "Will-Retry-Until" in per_recipient
    attempts = int(a.queue()[0][3])
    wait_for(lambda: int(a.queue()[0][3]) >= attempts + 2, what="more retries")
    assert len(a.messages("alice@a.test")) == 1  # once only
    assert a.queue()[0][7].endswith("[delay notice sent]")
    b.start()
    wait_for(lambda: b.messages("bob@b.test"), what="delivery")


@pytest.fixture
def backup(tmp_path: Path, zone: tuple[Zone, int]) -> Iterator[tuple[Node, Node]]:
    """A is the backup MX of b.test (MX 20) and holds its mail; B is the primary (MX 10)."""
    records, port = zone
    a = node(tmp_path / "a", "a", port, extra='hold_domains = ["b.test"]\n')
    b = node(tmp_path / "b", "b", port)
    link(a, b)
    records.mx("b.test", (10, "mx.b.test"), (20, "mx.a.test"))
    records.a("mx.b.test")
    records.a("mx.a.test")
    a.setup("alice")
    b.setup("bob")
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.kill()
        b.kill()


def send_to_backup(a: Node, subject: str) -> None:
    """Another MTA, finding B unreachable, hands the mail to the backup MX (no AUTH)."""
    with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=10) as client:
        client.ehlo("mta.elsewhere.test")
        client.sendmail(
            "carol@elsewhere.test", ["bob@b.test"], message(subject, "carol@elsewhere.test")
        )


def etrn(port: int, *args: str) -> list[tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        code, text = client.ehlo("mx.b.test")
        assert code == 250 and b"ETRN" in text  # RFC 1985 §4: advertised in EHLO
        return [client.docmd("ETRN", arg) for arg in args]


def test_etrn_from_the_held_domain_releases_the_held_mail(backup: tuple[Node, Node]) -> None:
    a, b = backup
    send_to_backup(a, "held one")
    send_to_backup(a, "held two")
    wait_for(
        lambda: [r for r in a.queue() if r[6] == "held"] == a.queue() and len(a.queue()) == 2,
        what="both messages held",
    )
    time.sleep(1.5)  # B runs, but held mail is not delivered without ETRN
    assert b.messages("bob@b.test") == []
    unknown, named, released = etrn(a.ports["smtp"], "unknown.test", "#uucp", "b.test")
    assert unknown[0] == 459  # RFC 1985 §5.2: a node we queue nothing for
    assert named[0] == 458  # RFC 1985 §5.3: no named queues here
    assert released == (253, b"2.0.0 OK, 2 pending messages for node b.test started")
    got = wait_for(
        lambda: b.messages("bob@b.test") if len(b.messages("bob@b.test")) == 2 else [],
        what="the released mail",
    )
    assert sorted(m["Subject"] for m in got) == ["held one", "held two"]
    wait_for(lambda: a.queue() == [], what="A's queue to empty")
    [(code, _)] = etrn(a.ports["smtp"], "@b.test")
    assert code == 251  # nothing waiting any more


def test_queue_flush_domain_releases_held_mail_too(backup: tuple[Node, Node]) -> None:
    a, b = backup
    send_to_backup(a, "flushed")
    wait_for(lambda: a.queue() and a.queue()[0][6] == "held", what="the message held")
    assert "1" in a.cli("queue", "flush", "b.test")
    [got] = wait_for(lambda: b.messages("bob@b.test"), what="the flushed mail")
    assert got["Subject"] == "flushed"


def test_sigkill_mid_delivery_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    """Three messages delivered, the fourth stalled at DATA when A is killed; A restarts."""
    release = threading.Event()
    seen: list[int] = []

    async def gate() -> None:
        seen.append(1)
        if len(seen) == 4:  # the fourth transaction waits for its 354
            await asyncio.to_thread(release.wait, 30)

    with dns_server() as (records, port), threaded(Sink(before_354=gate)) as sink:
        a = node(tmp_path / "a", "a", port, extra=f"mx_port = {sink.port}\n")
        records.mx("b.test", (10, "mx.b.test"))
        records.a("mx.b.test")
        a.setup("alice")
        a.start()
        try:
            for number in range(1, 4):
                a.submit("alice@a.test", ["bob@b.test"], message(f"number {number - 1}"))
                wait_for(lambda: len(sink.transactions) >= number, what="a delivery")  # noqa: B023
            a.submit("alice@a.test", ["bob@b.test"], message("number 3"))
            wait_for(lambda: len(seen) == 4, what="the stalled transaction")
            a.kill()  # SIGKILL while the fourth is in flight and leased
            assert [row[2] for row in a.queue()] == ["<bob@b.test>"]  # not lost
            release.set()
            a.start()  # the new run drops its dead predecessor's lease at once
            wait_for(lambda: a.queue() == [], what="the redelivery")
            time.sleep(1.5)  # time for any wrong second attempt to show
        finally:
            a.kill()
            release.set()
    subjects = sorted(
        re.findall(rb"Subject: (number \d)", b"".join(t.data for t in sink.transactions))
    )
    assert subjects == [b"number 0", b"number 1", b"number 2", b"number 3"]


@pytest.mark.external
@pytest.mark.skipif(postfix.unavailable() is not None, reason=str(postfix.unavailable()))
def test_interop_with_postfix_in_both_directions(tmp_path: Path) -> None:
    """Pillarbox delivers to Postfix via MX, Postfix relays to Pillarbox, 550s bounce."""
    with dns_server() as (records, port):
        a = node(tmp_path / "a", "a", port)
        records.mx("pf.test", (10, "mx.pf.test"))
        records.a("mx.pf.test")
        a.setup("alice")
        with postfix.Postfix("pf.test", ["carol"], a.ports["smtp"]) as pf:
            link_port(a, pf.port)
            a.start()
            try:
                # Pillarbox -> Postfix (MX lookup, STARTTLS if offered, pipelining)
                a.submit(
                    "alice@a.test", ["carol@pf.test"], message("to postfix", to="carol@pf.test")
                )
                [got] = wait_for(lambda: pf.maildir("carol"), what="delivery into Postfix")
                assert b"Subject: to postfix" in got and b"by mx.a.test" in got
                assert got.count(b"Return-Path:") == 1  # Postfix's own, not ours
                # Postfix -> Pillarbox (relayhost = our MX port)
                with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as client:
                    client.sendmail(
                        "carol@pf.test",
                        ["alice@a.test"],
                        message("from postfix", "carol@pf.test", "alice@a.test"),
                    )
                [back] = wait_for(lambda: a.messages("alice@a.test"), what="Postfix's relay")
                assert back["Subject"] == "from postfix"
                assert "by mx.pf.test" in (back.get_all("Received") or [])[1]
                # Postfix refuses an unknown user: Pillarbox bounces to alice
                a.submit(
                    "alice@a.test", ["nobody@pf.test"], message("to nobody", to="nobody@pf.test")
                )
                bounce = wait_for(
                    lambda: [m for m in a.messages("alice@a.test") if m["Return-Path"] == "<>"],
                    what="the bounce",
                )
                _, (_, per_recipient), _ = dsn_parts(bounce[0])
                assert per_recipient["Final-Recipient"] == "rfc822; nobody@pf.test"
                assert per_recipient["Status"].startswith("5.1.")
                assert per_recipient["Remote-MTA"] == "dns; mx.pf.test"
            finally:
                a.kill()


def link_port(sender: Node, port: int) -> None:
    sender.extra = sender.extra.replace("[delivery]\n", f"[delivery]\nmx_port = {port}\n", 1)
    sender.rewrite_config()
