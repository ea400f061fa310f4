"""Two sessions on one mailbox, changes interleaved; both views checked against the store.

Each `View` is a tiny IMAP client that keeps what RFC 3501 says a client knows: the UID of
every sequence number and each message's flags, updated only from the server's untagged
EXISTS, EXPUNGE and FETCH responses. After every step both sessions NOOP and their views
must equal the store's contents (read through the store API, not through IMAP).
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
from pathlib import Path

import pytest

from pillarbox.store.api import INBOX
from pillarbox.store.sqlite import SqliteStore
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

USER = "tyler@pillarbox.test"
FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "$Work")
_FETCH = re.compile(rb"\* (\d+) FETCH \((.*)\)$")
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_LITERAL = re.compile(rb"\{(\d+)\}$")


class View:
    """One IMAP session and the mailbox as its client must see it."""

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.uids: list[int] = []
        self.flags: dict[int, frozenset[str]] = {}
        self.counter = 0
        self.exists = 0
        self.command(f"LOGIN {USER} secret")
        self.command("SELECT INBOX")
        self.sync_new()

    def read_line(self) -> bytes:
        line = self.file.readline()
        assert line, f"{self.name}: connection closed"
        line = line.rstrip(b"\r\n")
        literal = _LITERAL.search(line)
        if literal:  # keep the literal inside the line; the tests only look at metadata
            line += self.file.read(int(literal.group(1))) + self.read_line()
        return line

    def command(
        self, text: str, literal: bytes | None = None, stale_ok: bool = False
    ) -> list[bytes]:
        self.counter += 1
        tag = f"{self.name}{self.counter}".encode()
        if literal is None:
            self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text.encode() + b" {%d+}\r\n" % len(literal))
            self.sock.sendall(literal + b"\r\n")
        lines = []
        while True:
            line = self.read_line()
            if line.startswith(tag + b" "):
                # RFC 2180 §4.1.2 / RFC 5530: a FETCH of messages another session expunged
                # (not yet announced) answers NO [EXPUNGEISSUED] with what still exists.
                stale = stale_ok and line.split()[1:3] == [b"NO", b"[EXPUNGEISSUED]"]
                assert line.split()[1] == b"OK" or stale, f"{self.name}: {text}: {line!r}"
                return lines
            lines.append(line)
            self.apply(line, text)

    def apply(self, line: bytes, during: str) -> None:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == b"EXPUNGE":
            # RFC 3501 §7.4.1: never while answering FETCH, STORE or SEARCH.
            assert during.split(maxsplit=1)[0] not in ("FETCH", "STORE", "SEARCH"), (
                self.name,
                during,
            )
            seq = int(parts[1])
            uid = self.uids.pop(seq - 1)
            self.flags.pop(uid, None)
            self.exists -= 1
        elif len(parts) >= 3 and parts[2] == b"EXISTS":
            self.exists = int(parts[1])
        elif (fetch := _FETCH.match(line)) is not None:
            seq, body = int(fetch.group(1)), fetch.group(2)
            flags = _FLAGS.search(body)
            if seq <= len(self.uids) and flags is not None:
                uid = self.uids[seq - 1]
                uid_item = _UID.search(body)
                assert uid_item is None or int(uid_item.group(1)) == uid, (self.name, line)
                self.flags[uid] = frozenset(flags.group(1).decode().split()) - {"\\Recent"}

    def sync_new(self) -> None:
        """After EXISTS grew, learn the new messages' UIDs and flags (as clients do)."""
        known = len(self.uids)
        if self.exists > known:
            for line in self.command(f"FETCH {known + 1}:* (UID FLAGS)"):
                fetch = _FETCH.match(line)
                if fetch and int(fetch.group(1)) > known:
                    body = fetch.group(2)
                    uid = int(_UID.search(body).group(1))  # type: ignore[union-attr]
                    flags = _FLAGS.search(body).group(1).decode().split()  # type: ignore[union-attr]
                    self.uids.append(uid)
                    self.flags[uid] = frozenset(flags) - {"\\Recent"}

    def noop(self) -> None:
        self.command("NOOP")
        self.sync_new()

    def snapshot(self) -> list[tuple[int, frozenset[str]]]:
        return [(uid, self.flags[uid]) for uid in self.uids]

    def close(self) -> None:
        self.command("LOGOUT")
        self.sock.close()


def store_contents(server: Server) -> list[tuple[int, frozenset[str]]]:
    async def read() -> list[tuple[int, frozenset[str]]]:
        store = SqliteStore(server.data_dir / "pillarbox.sqlite3")
        await store.open()
        try:
            account = await store.get_account(USER)
            box = await store.get_mailbox(account.id, INBOX)
            return [(int(e.uid), e.flags) for e in await store.list_entries(box.id)]
        finally:
            await store.close()

    return asyncio.run(read())


def message(n: int) -> bytes:
    return f"From: a@remote.test\r\nSubject: step {n}\r\n\r\nStep {n}.\r\n".encode()


def step(rng: random.Random, actor: View, n: int) -> None:
    action = rng.choice(("append", "append", "flag", "unflag", "expunge", "move", "fetch"))
    if action == "append" or not actor.uids:
        actor.command("APPEND INBOX", message(n))
    elif action in ("flag", "unflag"):
        seq = rng.randint(1, len(actor.uids))
        sign = "+" if action == "flag" else "-"
        actor.command(f"STORE {seq} {sign}FLAGS ({rng.choice(FLAGS)})")
    elif action == "expunge":
        seq = rng.randint(1, len(actor.uids))
        actor.command(f"STORE {seq} +FLAGS.SILENT (\\Deleted)")
        actor.command("EXPUNGE")
    elif action == "move":
        actor.command(f"UID MOVE {rng.choice(actor.uids)} Archive")
    else:
        actor.command(f"FETCH 1:{len(actor.uids)} (FLAGS)")
        actor.command("SEARCH ALL")


def test_two_sessions_stay_consistent_with_the_store(server: Server, tmp_path: Path) -> None:
    rng = random.Random(20240501)
    first = View(server.ports["imap"], "a")
    second = View(server.ports["imap"], "b")
    for n in range(40):
        actor, other = (first, second) if rng.random() < 0.5 else (second, first)
        step(rng, actor, n)
        # The other session may act on stale numbers before it hears the news.
        if other.uids and rng.random() < 0.3:
            other.command(f"FETCH 1:{len(other.uids)} (UID FLAGS)", stale_ok=True)
        first.noop()
        second.noop()
        truth = store_contents(server)
        assert first.snapshot() == truth, f"step {n}: first session"
        assert second.snapshot() == truth, f"step {n}: second session"
    first.close()
    second.close()
