"""smtp.processes = 2: SMTP intake in worker processes, tested over real sockets."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.e2e.server import Server, started

pytestmark = pytest.mark.e2e

USER = "tyler@pillarbox.test"
# The delivery section keeps the queue worker off the network: its DNS is a dead port.
WORKERS = """[smtp]
processes = 2
relay_networks = ["127.0.0.0/8"]
[delivery]
hold_domains = ["held.test"]
dns = ["127.0.0.1:9"]
"""
_WORKER = re.compile(r"smtp\.worker index=(\d+) pid=(\d+) state=(\w+)")


def message(n: int) -> bytes:
    return (
        f"From: mac@pillarbox.test\r\nTo: {USER}\r\nSubject: worker test {n}\r\n\r\nBody {n}\r\n"
    ).encode()


def ready_workers(server: Server) -> dict[int, int]:
    """index -> pid of the workers the log last reported ready."""
    found: dict[int, int] = {}
    for index, pid, state in _WORKER.findall(server.log()):
        if state == "ready":
            found[int(index)] = int(pid)
        else:
            found.pop(int(index), None)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not status.exists() or status.read_text().split()[2] != "Z"


def wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"worker processes still running: {pids}"
        time.sleep(0.05)


def send(server: Server, first: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as client:
        for n in range(first, first + count):
            client.sendmail("mac@pillarbox.test", [USER], message(n))


def inbox_count(server: Server) -> int:
    for line in server.cli("mailbox", "list", USER).splitlines():
        name, count, *_ = line.split("\t")
        if name == "INBOX":
            return int(count.split()[0])
    raise AssertionError("no INBOX")


def queue_states(server: Server) -> list[tuple[str, str]]:
    """(recipient, state) of every queue entry, from `pillarbox queue list`."""
    rows = [line.split("\t") for line in server.cli("queue", "list").splitlines()[1:]]
    return [(row[2], row[6]) for row in rows]


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Server]:
    instance = started(tmp_path, WORKERS, users=[(USER, "Tyler")])
    workers = list(ready_workers(instance).values())
    try:
        yield instance
    finally:
        instance.kill()
        wait_gone(workers)


def test_two_workers_accept_and_every_message_lands_once(pool: Server) -> None:
    assert len(ready_workers(pool)) == 2
    with ThreadPoolExecutor(10) as clients:
        list(clients.map(lambda i: send(pool, i * 20, 20), range(10)))
    assert inbox_count(pool) == 200
    exported = pool.cli("mailbox", "export", USER)
    subjects = re.findall(r"Subject: worker test (\d+)", exported)
    assert sorted(map(int, subjects)) == list(range(200))
    # Sessions of both workers took part, each naming its sessions after itself.
    assert {"w1", "w2"} <= set(re.findall(r"smtp\.accept id=(w\d)s", pool.log()))


def test_idle_in_the_main_process_sees_mail_a_worker_stored(pool: Server) -> None:
    with IMAPClient("127.0.0.1", port=pool.ports["imap"], ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        client.select_folder("INBOX")
        client.idle()
        threading.Timer(0.3, send, (pool, 0, 1)).start()
        responses = client.idle_check(timeout=10)
        client.idle_done()
        assert (1, b"EXISTS") in responses
        client.logout()


def test_etrn_in_a_worker_releases_held_mail(pool: Server) -> None:
    with smtplib.SMTP("127.0.0.1", pool.ports["smtp"], timeout=30) as client:
        client.sendmail("mac@pillarbox.test", ["bob@held.test"], message(1))
    deadline = time.monotonic() + 20  # the queue worker holds it on its first look
    while queue_states(pool) != [("<bob@held.test>", "held")]:
        assert time.monotonic() < deadline, queue_states(pool)
        time.sleep(0.1)
    with smtplib.SMTP("127.0.0.1", pool.ports["smtp"], timeout=30) as client:
        client.ehlo("mx.held.test")
        code, text = client.docmd("ETRN", "held.test")
        assert code == 253, text  # RFC 1985 §4: started, with the count
        assert b"1 pending" in text
        assert client.docmd("ETRN", "#anything")[0] == 458  # RFC 1985 §5.3
    [entry] = queue_states(pool)
    assert entry == ("<bob@held.test>", "queued")


def test_a_killed_worker_is_replaced(pool: Server) -> None:
    before = ready_workers(pool)
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while ready_workers(pool).get(1) in (None, before[1]):
        assert time.monotonic() < deadline, pool.log()
        time.sleep(0.1)
    assert "state=exited" in pool.log()
    with ThreadPoolExecutor(4) as clients:
        list(clients.map(lambda i: send(pool, i * 5, 5), range(4)))
    assert inbox_count(pool) == 20


def test_sigterm_stops_the_workers_too(pool: Server) -> None:
    workers = list(ready_workers(pool).values())
    assert pool.stop() == 0
    wait_gone(workers, timeout=5)


def test_workers_leave_when_the_main_process_is_killed(pool: Server) -> None:
    workers = list(ready_workers(pool).values())
    send(pool, 0, 1)
    pool.kill()
    wait_gone(workers, timeout=10)
    pool.start()  # the ports are free again
    send(pool, 1, 1)
    assert inbox_count(pool) == 2
