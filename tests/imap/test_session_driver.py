"""The IMAP connection loop over real loopback sockets: IDLE pushes, autologout, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pillarbox.auth.authenticator import Authenticator
from pillarbox.auth.throttle import LoginThrottle, ThrottlePolicy
from pillarbox.config import Config, ListenAddress
from pillarbox.imap import session as session_module
from pillarbox.imap.service import ImapService
from pillarbox.net.listener import ConnectionCounter, ConnectionLimits, Listener
from pillarbox.store.api import INBOX
from tests.imap.harness import Harness, open_harness, sample

Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def serving(harness: Harness, shutdown: asyncio.Event) -> AsyncIterator[int]:
    service = ImapService(
        Config(hostname="mail.example.test"),
        harness.store,
        Authenticator(harness.store, None, LoginThrottle(ThrottlePolicy(failure_delay=0.0))),
        None,
        shutdown,
    )
    async with asyncio.TaskGroup() as tasks:
        listener = Listener(
            "imap",
            ListenAddress("127.0.0.1", 0),
            service.handler(False),
            service.refuse,
            ConnectionCounter(ConnectionLimits(0, 0)),
            tasks,
        )
        await listener.start()
        try:
            yield listener.port
        finally:
            listener.close()
            shutdown.set()


async def command(client: Client, line: bytes) -> list[bytes]:
    reader, writer = client
    writer.write(line + b"\r\n")
    tag = line.split()[0]
    lines = []
    while not (got := await reader.readline()).startswith(tag + b" "):
        lines.append(got)
    return [*lines, got]


def run(tmp_path: Path, test: Callable[[Harness, int, asyncio.Event], Awaitable[None]]) -> None:
    async def main() -> None:
        harness = await open_harness(tmp_path)
        shutdown = asyncio.Event()
        try:
            async with serving(harness, shutdown) as port:
                try:
                    await asyncio.wait_for(test(harness, port, shutdown), 10)
                finally:
                    while OPEN:
                        writer = OPEN.pop()
                        writer.close()
                        await writer.wait_closed()
        finally:
            await harness.store.close()

    asyncio.run(main())


OPEN: list[asyncio.StreamWriter] = []


async def connect(port: int) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    OPEN.append(writer)
    assert (await reader.readline()).startswith(b"* OK ")
    return reader, writer


def test_idle_pushes_appends_and_flag_changes_at_once(tmp_path: Path) -> None:
    async def check(harness: Harness, port: int, shutdown: asyncio.Event) -> None:
        client = await connect(port)
        await command(client, b"a LOGIN jane@example.test secret")
        await command(client, b"b SELECT INBOX")
        client[1].write(b"c IDLE\r\n")
        assert (await client[0].readline()).startswith(b"+ ")
        loop = asyncio.get_running_loop()
        start = loop.time()
        entry = await harness.store.append(harness.account.id, INBOX, sample(1))
        assert await client[0].readline() == b"* 1 EXISTS\r\n"
        assert await client[0].readline() == b"* 1 RECENT\r\n"
        assert loop.time() - start < 0.1  # the goal: pushed within 100 ms
        box = await harness.store.get_mailbox(harness.account.id, INBOX)
        await harness.store.store_flags(box.id, [entry.uid], frozenset({"\\Flagged"}), frozenset())
        assert await client[0].readline() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n"
        client[1].write(b"DONE\r\n")
        assert await client[0].readline() == b"c OK IDLE terminated\r\n"

    run(tmp_path, check)


def test_shutdown_says_bye_to_idle_sessions(tmp_path: Path) -> None:
    async def check(harness: Harness, port: int, shutdown: asyncio.Event) -> None:
        client = await connect(port)
        await command(client, b"a LOGIN jane@example.test secret")
        shutdown.set()
        assert await client[0].readline() == b"* BYE Server shutting down\r\n"
        assert await client[0].readline() == b""

    run(tmp_path, check)


def test_autologout_after_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "PREAUTH_TIMEOUT", 0.2)

    async def check(harness: Harness, port: int, shutdown: asyncio.Event) -> None:
        client = await connect(port)
        assert await client[0].readline() == b"* BYE Autologout; idle for too long\r\n"

    run(tmp_path, check)


def test_a_broken_command_line_gets_bad_and_the_connection_stays(tmp_path: Path) -> None:
    async def check(harness: Harness, port: int, shutdown: asyncio.Event) -> None:
        client = await connect(port)
        assert (await command(client, b"a FROBNICATE"))[-1].startswith(b"a BAD ")
        assert (await command(client, b"b NOOP"))[-1] == b"b OK NOOP completed\r\n"

    run(tmp_path, check)


def test_one_append_reaches_every_idler_of_the_mailbox_and_only_them(tmp_path: Path) -> None:
    async def check(harness: Harness, port: int, shutdown: asyncio.Event) -> None:
        clients = [await connect(port) for _ in range(4)]
        for client in clients:
            await command(client, b"a LOGIN jane@example.test secret")
        await command(clients[0], b"b CREATE Archive")
        for n, client in enumerate(clients):
            await command(client, b"c SELECT " + (b"Archive" if n == 3 else b"INBOX"))
            client[1].write(b"d IDLE\r\n")
            assert (await client[0].readline()).startswith(b"+ ")
        await harness.store.append(harness.account.id, INBOX, sample(1))
        pushed = [[await c[0].readline(), await c[0].readline()] for c in clients[:3]]
        # RFC 3501 §2.3.2: one session only gets the message as \Recent.
        assert sorted(pushed) == [
            [b"* 1 EXISTS\r\n", b"* 0 RECENT\r\n"],
            [b"* 1 EXISTS\r\n", b"* 0 RECENT\r\n"],
            [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"],
        ]
        for client in clients:
            client[1].write(b"DONE\r\n")
            assert await client[0].readline() == b"d OK IDLE terminated\r\n"
        # Out of IDLE, news waits for the next command (RFC 3501 §7.4.1) and is not lost.
        await harness.store.append(harness.account.id, INBOX, sample(2))
        assert (await command(clients[1], b"e NOOP"))[0] == b"* 2 EXISTS\r\n"
        assert (await command(clients[3], b"e NOOP")) == [b"e OK NOOP completed\r\n"]

    run(tmp_path, check)
