"""`pillarbox sendmail`: sendmail(8) for local programs, with the server running or not."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.delivery.dns_server import Zone, dns_server
from tests.delivery.nodes import Node, link, node, point_mx, wait_for
from tests.e2e.server import PILLARBOX

pytestmark = pytest.mark.e2e


def sendmail(a: Node, *args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*PILLARBOX, "--config", str(a.config_path), "sendmail", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Node, Node, Zone]]:
    with dns_server() as (zone, port):
        a = node(tmp_path / "a", "a", port)
        b = node(tmp_path / "b", "b", port)
        link(a, b)
        point_mx(zone, a, b)
        a.setup("alice", "root")
        b.setup("bob")
        try:
            yield a, b, zone
        finally:
            a.kill()
            b.kill()


def test_local_recipient_without_a_running_server(pair: tuple[Node, Node, Zone]) -> None:
    a, _, _ = pair
    done = sendmail(a, "-f", "root@a.test", "alice@a.test", stdin=b"Subject: cron\n\nok\n")
    assert done.returncode == 0, done.stderr
    [got] = a.messages("alice@a.test")
    assert got["Subject"] == "cron"
    assert got["Return-Path"] == "<root@a.test>"
    assert got["From"] == "<root@a.test>" and got["Date"] and got["Message-ID"]
    assert got.get_payload() == "ok\r\n"


def test_dash_t_takes_recipients_from_the_header_and_removes_bcc(
    pair: tuple[Node, Node, Zone],
) -> None:
    a, b, _ = pair
    a.start()
    b.start()
    message = (
        b"From: Root <root@a.test>\nTo: Alice <alice@a.test>\n"
        b"Bcc: bob@b.test\nSubject: report\n\nline one\n.\nafter a lone dot\n"
    )
    done = sendmail(a, "-t", "-i", stdin=message)
    assert done.returncode == 0, done.stderr
    [local] = a.messages("alice@a.test")
    [remote] = wait_for(lambda: b.messages("bob@b.test"), what="the Bcc copy on B")
    for got in (local, remote):
        assert got["Bcc"] is None  # RFC 5322 §3.6.3
        assert got.get_payload() == "line one\r\n.\r\nafter a lone dot\r\n"  # -i


def test_without_dash_i_a_lone_dot_ends_the_message(pair: tuple[Node, Node, Zone]) -> None:
    a, _, _ = pair
    done = sendmail(a, "alice@a.test", stdin=b"Subject: dot\n\nkept\n.\ndropped\n")
    assert done.returncode == 0, done.stderr
    [got] = a.messages("alice@a.test")
    assert got.get_payload() == "kept\r\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("nobody@a.test",), 67),  # EX_NOUSER
        ((), 64),  # EX_USAGE: no recipients
    ],
)
def test_sendmail_exit_codes(
    pair: tuple[Node, Node, Zone], args: tuple[str, ...], code: int
) -> None:
    a, _, _ = pair
    done = sendmail(a, *args, stdin=b"Subject: x\n\nx\n")
    assert done.returncode == code
    assert done.stderr.startswith(b"sendmail: ")
    assert a.messages("alice@a.test") == []
