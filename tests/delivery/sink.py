"""A scriptable SMTP server for delivery tests: records raw bytes, answers as told."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Transaction:
    sender: str
    recipients: list[str]
    data: bytes  # raw DATA bytes as received, up to and including CRLF.CRLF


async def read_data(reader: asyncio.StreamReader) -> bytes:
    """Lines up to and including the "." line (RFC 5321 §4.1.1.4), as received."""
    lines = []
    while True:
        line = await reader.readuntil(b"\n")
        lines.append(line)
        if line == b".\r\n":
            return b"".join(lines)


@dataclass
class Sink:
    keywords: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SIZE 100000")
    rcpt_reply: Callable[[str], str] = lambda address: "250 2.1.5 ok"
    data_reply: str = "250 2.0.0 queued"
    before_354: Callable[[], Awaitable[None]] | None = None  # awaited before each "354"
    per_connection: int = 0  # > 0: drop the connection after this many transactions
    transactions: list[Transaction] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> Sink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(*lines: str) -> None:
            writer.write(b"".join(line.encode() + b"\r\n" for line in lines))

        say("220 sink.test ESMTP")
        sender, recipients, done = "", list[str](), 0
        while line := (await reader.readline()).decode("utf-8", "replace").rstrip("\r\n"):
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say(
                    *(f"250-{k}" for k in ("sink.test", *self.keywords[:-1])),
                    f"250 {self.keywords[-1]}" if self.keywords else "250 sink.test",
                )
            elif verb == "MAIL":
                sender, recipients = line[10:].split(">")[0].lstrip("<"), []
                say("250 2.1.0 ok")
            elif verb == "RCPT":
                address = line[8:].split(">")[0].lstrip("<")
                reply = self.rcpt_reply(address)
                if reply.startswith("2"):
                    recipients.append(address)
                say(reply)
            elif verb == "DATA":
                if self.before_354 is not None:
                    await self.before_354()
                say("354 go ahead")
                await writer.drain()
                data = await read_data(reader)
                self.transactions.append(Transaction(sender, recipients, data))
                say(self.data_reply)
                done += 1
                if self.per_connection and done >= self.per_connection:
                    await writer.drain()
                    return  # the next MAIL finds the connection gone
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                return
            else:
                say("250 ok")
            await writer.drain()


@contextmanager
def threaded(sink: Sink) -> Iterator[Sink]:
    """Run the sink on its own event loop in a thread (for tests that drive subprocesses)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(sink.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield sink
    finally:
        asyncio.run_coroutine_threadsafe(sink.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
