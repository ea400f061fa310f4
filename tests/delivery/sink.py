"""A scriptable SMTP server for delivery tests: records raw bytes, answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Transaction:
    sender: str
    recipients: list[str]
    data: bytes  # raw DATA bytes as received, up to and including CRLF.CRLF


@dataclass
class Sink:
    keywords: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SIZE 100000")
    rcpt_reply: Callable[[str], str] = lambda address: "250 2.1.5 ok"
    data_reply: str = "250 2.0.0 queued"
    stall_data: asyncio.Event | None = None  # when set: hold the end-of-data reply until set
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
        sender, recipients = "", []
        while line := (await reader.readline()).decode("utf-8", "replace").rstrip("\r\n"):
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say(*(f"250-{k}" for k in ("sink.test", *self.keywords[:-1])),
                    f"250 {self.keywords[-1]}" if self.keywords else "250 sink.test")
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
                say("354 go ahead")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                if self.stall_data is not None:
                    await self.stall_data.wait()
                self.transactions.append(Transaction(sender, recipients, data))
                say(self.data_reply)
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                return
            else:
                say("250 ok")
            await writer.drain()
