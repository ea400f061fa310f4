"""An asyncio IMAP load client and the realistic command mix of bench/imap_bench.py.

The client reads responses with `StreamReader.readline`/`readexactly` (literals included),
tracks EXISTS, and times each operation from the first byte sent to the tagged reply.
Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from typing import Final

from _common import LOOPBACK

CLIENT_TIMEOUT: Final = 120.0
_LITERAL: Final = re.compile(rb"\{(\d+)\}\r\n$")
_APPENDUID: Final = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
# The mix: weights of each operation (a mail client mostly reads).
MIX: Final = (
    ("select", 2),
    ("fetch_headers", 4),
    ("fetch_body", 4),
    ("store", 3),
    ("search_unseen", 2),
    ("append", 2),
    ("expunge", 2),
    ("idle", 1),
)


class ImapError(Exception):
    pass


class Client:
    """One IMAP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.counter = 0
        self.exists = 0

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection(LOOPBACK, port, limit=1 << 24)
        client = cls(reader, writer)
        await client.line()
        return client

    async def line(self) -> bytes:
        line = await asyncio.wait_for(self.reader.readline(), CLIENT_TIMEOUT)
        if not line:
            raise ImapError("server closed the connection")
        while (literal := _LITERAL.search(line)) is not None:
            line += await self.reader.readexactly(int(literal.group(1)))
            line += await self.reader.readline()
        return line

    def _tag(self) -> bytes:
        self.counter += 1
        return b"x%d" % self.counter

    async def _until(self, tag: bytes) -> bytes:
        while True:
            line = await self.line()
            if line.startswith(tag + b" "):
                # RFC 5530: messages another client expunged meanwhile are reported, not an error.
                if line.split()[1] != b"OK" and b"[EXPUNGEISSUED]" not in line:
                    raise ImapError(line.decode(errors="replace").strip())
                return line
            self._track(line)

    def _track(self, line: bytes) -> None:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == b"EXISTS":
            self.exists = int(parts[1])
        elif len(parts) >= 3 and parts[2] == b"EXPUNGE":
            self.exists -= 1

    async def _continuation(self) -> None:
        while not (line := await self.line()).startswith(b"+"):
            self._track(line)

    async def command(self, text: str) -> bytes:
        tag = self._tag()
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        return await self._until(tag)

    async def append(self, mailbox: str, flags: str, message: bytes) -> int | None:
        """APPEND with a synchronizing literal; the new UID from APPENDUID (RFC 4315)."""
        tag = self._tag()
        self.writer.write(
            tag + b" APPEND %s (%s) {%d}\r\n" % (mailbox.encode(), flags.encode(), len(message))
        )
        await self._continuation()
        self.writer.write(message + b"\r\n")
        done = await self._until(tag)
        found = _APPENDUID.search(done)
        return int(found.group(1)) if found else None

    async def idle_roundtrip(self) -> None:
        tag = self._tag()
        self.writer.write(tag + b" IDLE\r\n")
        await self._continuation()
        self.writer.write(b"DONE\r\n")
        await self._until(tag)

    async def start_idle(self) -> bytes:
        tag = self._tag()
        self.writer.write(tag + b" IDLE\r\n")
        await self._continuation()
        return tag

    async def login_select(self, user: str, password: str) -> None:
        await self.command(f'LOGIN "{user}" "{password}"')
        await self.command("SELECT INBOX")

    def close(self) -> None:
        self.writer.close()


@dataclass
class Worker:
    """One client of the mix: its connection, RNG and the UIDs it appended."""

    client: Client
    rng: random.Random
    base_uids: int  # UIDs 1..base_uids are the corpus, never expunged
    message: bytes
    appended: list[int] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    async def run(self, op: str) -> None:
        handler = _OPS[op]
        start = time.perf_counter()
        await handler(self)
        self.latencies.setdefault(op, []).append(time.perf_counter() - start)

    async def select(self) -> None:
        await self.client.command("SELECT INBOX")

    async def fetch_headers(self) -> None:
        newest = max(self.client.exists, 1)
        first = max(1, newest - 49)
        await self.client.command(
            f"FETCH {first}:{newest} (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"
        )

    async def fetch_body(self) -> None:
        await self.client.command(f"UID FETCH {self.rng.randint(1, self.base_uids)} BODY.PEEK[]")

    async def store(self) -> None:
        sign = self.rng.choice("+-")
        uid = self.rng.randint(1, self.base_uids)
        await self.client.command(f"UID STORE {uid} {sign}FLAGS.SILENT (\\Flagged)")

    async def search_unseen(self) -> None:
        await self.client.command("SEARCH UNSEEN")

    async def append(self) -> None:
        uid = await self.client.append("INBOX", "\\Seen", self.message)
        if uid is not None:
            self.appended.append(uid)

    async def expunge(self) -> None:
        if not self.appended:
            await self.append()
            return
        uid = self.appended.pop()
        await self.client.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        await self.client.command(f"UID EXPUNGE {uid}")

    async def idle(self) -> None:
        await self.client.idle_roundtrip()


_OPS: Final = {
    "select": Worker.select,
    "fetch_headers": Worker.fetch_headers,
    "fetch_body": Worker.fetch_body,
    "store": Worker.store,
    "search_unseen": Worker.search_unseen,
    "append": Worker.append,
    "expunge": Worker.expunge,
    "idle": Worker.idle,
}


async def run_mix(worker: Worker, deadline: float, only: frozenset[str] = frozenset()) -> int:
    """Run the mix (or only the operations named in `only`) until `deadline`."""
    chosen = [(name, weight) for name, weight in MIX if not only or name in only]
    names = [name for name, _ in chosen]
    weights = [weight for _, weight in chosen]
    done = 0
    while time.perf_counter() < deadline:
        await worker.run(worker.rng.choices(names, weights)[0])
        done += 1
    return done


async def tidy(worker: Worker) -> None:
    """Leave the mailbox as it was: remove what this worker appended (after the timing)."""
    for uid in worker.appended:
        await worker.client.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        await worker.client.command(f"UID EXPUNGE {uid}")
    worker.appended.clear()
