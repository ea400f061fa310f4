"""The POP3 session with the real engine, driver and SQLite store, over an in-memory stream.

Each test runs one scenario under `asyncio.run`: a client writes lines into a fake stream
and reads the server's bytes back. What needs a real socket (TLS, poplib) is in tests/e2e.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import typing
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pillarbox.auth.authenticator import Authenticator
from pillarbox.auth.throttle import LoginThrottle, ThrottlePolicy
from pillarbox.config import Config, Pop3Config
from pillarbox.net.stream import Interrupted
from pillarbox.pop3 import events
from pillarbox.pop3.session import HANDLERS, Pop3Service, uidl_string
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore

ADDRESS = "jane@example.test"
OTHER = "mac@example.test"
MESSAGES = [
    b"Subject: one\r\n\r\nfirst\r\n",
    b"Subject: two\r\n\r\n.dotted\r\nsecond\r\n",
    b"Subject: three\r\n\r\nthird\r\n",
]


def plain_verifier(stored: str, password: str) -> bool:
    return stored == "plain:" + password  # argon2 is tested in tests/auth


INTERRUPT = b"<interrupt>"


class FakeStream:
    """What the driver needs of a `net.stream.Stream`, fed by a test."""

    def __init__(self, peer_ip: str, tls: bool = False) -> None:
        self.peer_ip = peer_ip
        self.tls = tls
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.output = bytearray()
        self.written = asyncio.Event()
        self.closed = False

    async def receive_some(self, deadline: float | None = None) -> bytes:
        if deadline is None:
            data = await self.incoming.get()
        else:
            async with asyncio.timeout_at(deadline):
                data = await self.incoming.get()
        if data is INTERRUPT:
            raise Interrupted
        return data

    def interrupt(self) -> None:
        """What the listener does to every stream on shutdown."""
        self.incoming.put_nowait(INTERRUPT)

    async def send_all(self, data: bytes) -> None:
        self.output += data
        self.written.set()

    def write(self, chunks: list[bytes]) -> bool:
        for chunk in chunks:
            self.output += chunk
        self.written.set()
        return False  # never slow: nothing to drain

    async def drain(self) -> None:
        pass

    async def start_tls(self, context: object) -> None:
        self.tls, self.tls_version, self.tls_cipher = True, "TLSv1.3", "TEST"

    def close(self) -> None:
        self.closed = True


class Client:
    """One connection: `command` sends a line and returns the status line."""

    def __init__(self, stream: FakeStream, task: asyncio.Task[None]) -> None:
        self.stream = stream
        self.task = task
        self.greeting = b""

    async def line(self) -> bytes:
        async with asyncio.timeout(5):
            while b"\r\n" not in self.stream.output:
                if self.task.done():
                    raise ConnectionError("server closed")
                self.stream.written.clear()
                await asyncio.wait(
                    [asyncio.ensure_future(self.stream.written.wait()), self.task],
                    return_when=asyncio.FIRST_COMPLETED,
                )
        line, _, rest = bytes(self.stream.output).partition(b"\r\n")
        self.stream.output[:] = rest
        return line

    async def lines(self) -> list[bytes]:
        out = []
        while (line := await self.line()) != b".":
            out.append(line)
        return out

    def send(self, data: bytes) -> None:
        self.stream.incoming.put_nowait(data)

    async def command(self, text: str) -> bytes:
        self.send(text.encode() + b"\r\n")
        return await self.line()

    async def login(self, address: str = ADDRESS, password: str = "secret") -> bytes:
        await self.command(f"USER {address}")
        return await self.command(f"PASS {password}")

    async def hang_up(self) -> None:
        self.send(b"")
        await asyncio.wait_for(self.task, 5)


@dataclasses.dataclass
class World:
    store: SqliteStore
    service: Pop3Service
    accounts: dict[str, api.Account]
    now: list[float]

    async def connect(self, peer_ip: str = "127.0.0.1", tls: bool = False) -> Client:
        stream = FakeStream(peer_ip, tls)
        task = asyncio.ensure_future(self.service.handler(tls)(stream))  # type: ignore[arg-type]
        client = Client(stream, task)
        client.greeting = await client.line()
        assert client.greeting.startswith(b"+OK Pillarbox POP3 server ready <")
        return client

    async def inbox(self, address: str = ADDRESS) -> list[api.MailboxEntry]:
        mailbox = await self.store.get_mailbox(self.accounts[address].id, api.INBOX)
        return await self.store.list_entries(mailbox.id)


Scenario = Callable[[World], Awaitable[None]]


def run(
    tmp_path: Path, scenario: Scenario, *, store: SqliteStore | None = None, **pop3: Any
) -> None:
    async def main() -> None:
        backend = store or SqliteStore(tmp_path / "pillarbox.sqlite3")
        await backend.open()
        try:
            await backend.add_domain("example.test")
            accounts = {}
            for address in (ADDRESS, OTHER):
                accounts[address] = await backend.add_account(address, "plain:secret")
                for body in MESSAGES:
                    await backend.append(accounts[address].id, api.INBOX, body)
            now = [1000.0]
            throttle = LoginThrottle(
                ThrottlePolicy(failure_delay=0, max_failures_per_ip=3), clock=lambda: now[0]
            )
            authenticator = Authenticator(backend, None, throttle, verifier=plain_verifier)
            config = Config(hostname="pop.example.test", pop3=Pop3Config(**pop3))
            service = Pop3Service(
                config, backend, authenticator, None, asyncio.Event(), clock=lambda: now[0]
            )
            await scenario(World(backend, service, accounts, now))
        finally:
            await backend.close()

    asyncio.run(main())


def test_every_event_has_a_handler() -> None:
    kinds = set(typing.get_args(events.Event))
    assert set(HANDLERS) == kinds


def test_seed_session_expunges_the_deleted_message(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        assert await client.login() == b"+OK maildrop has 3 messages (81 octets)"
        assert await client.command("STAT") == b"+OK 3 81"
        assert await client.command("RETR 2") == b"+OK 33 octets"
        assert await client.lines() == [b"Subject: two", b"", b"..dotted", b"second"]
        assert await client.command("DELE 1") == b"+OK message 1 deleted"
        quit_reply = await client.command("QUIT")
        assert quit_reply == b"+OK Pillarbox POP3 server signing off (2 messages left)"
        await asyncio.wait_for(client.task, 5)
        assert [entry.uid for entry in await world.inbox()] == [2, 3]
        assert len(await world.inbox(OTHER)) == 3

    run(tmp_path, scenario)


def test_uidl_is_uidvalidity_dot_uid(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        mailbox = await world.store.get_mailbox(world.accounts[ADDRESS].id, api.INBOX)
        client = await world.connect()
        await client.login()
        assert await client.command("UIDL") == b"+OK Unique-ID listing follows"
        expected = [f"{n} {uidl_string(mailbox.uidvalidity, n)}".encode() for n in (1, 2, 3)]
        assert await client.lines() == expected
        await client.command("QUIT")

    run(tmp_path, scenario)


def test_connection_closed_deletes_nothing_and_unlocks(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.login()
        await client.command("DELE 1")
        await client.hang_up()
        assert len(await world.inbox()) == 3
        again = await world.connect()
        assert (await again.login()).startswith(b"+OK maildrop has 3 messages")
        await again.command("QUIT")

    run(tmp_path, scenario)


def test_in_use_only_for_the_same_account(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        first = await world.connect()
        await first.login()
        second = await world.connect()
        assert await second.login() == b"-ERR [IN-USE] Maildrop is locked by another session."
        other = await world.connect()
        assert (await other.login(OTHER)).startswith(b"+OK")
        await first.command("QUIT")
        assert (await second.login()).startswith(b"+OK")

    run(tmp_path, scenario)


def test_wrong_credentials_do_not_reveal_the_lock(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        first = await world.connect()
        await first.login()
        second = await world.connect()
        assert await second.login(password="bad") == b"-ERR [AUTH] Authentication failed."

    run(tmp_path, scenario)


def test_repeated_failures_are_throttled_with_sys_temp(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        for _ in range(3):
            assert (await client.login(password="bad")).startswith(b"-ERR [AUTH]")
        refused = await client.login()  # even the right password, while locked out
        assert refused == b"-ERR [SYS/TEMP] Too many failed logins, try again later."
        world.now[0] += 3600
        assert (await client.login()).startswith(b"+OK")

    run(tmp_path, scenario)


def test_login_delay_is_enforced(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.command("CAPA")
        assert b"LOGIN-DELAY 60" in await client.lines()
        await client.login()
        await client.command("QUIT")
        again = await world.connect()
        assert await again.login() == (
            b"-ERR [LOGIN-DELAY] Logged in too recently, try again later."
        )
        world.now[0] += 61
        assert (await again.login()).startswith(b"+OK")

    run(tmp_path, scenario, login_delay=60)


def test_expire_zero_deletes_retrieved_messages_at_quit(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.command("CAPA")
        assert b"EXPIRE 0" in await client.lines()
        await client.login()
        await client.command("RETR 2")
        await client.lines()
        await client.command("TOP 3 0")  # RFC 2449 §6.7: only RETR counts as downloaded
        await client.lines()
        await client.command("RSET")
        assert (await client.command("QUIT")).endswith(b"(2 messages left)")
        assert [entry.uid for entry in await world.inbox()] == [1, 3]

    run(tmp_path, scenario, expire=0)


def test_expire_days_keeps_recent_messages(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.login()
        await client.command("RETR 1")
        await client.lines()
        await client.command("QUIT")
        assert len(await world.inbox()) == 3  # delivered just now: not 5 days old

    run(tmp_path, scenario, expire=5)


class FailingExpunge(SqliteStore):
    async def expunge(self, mailbox_id: api.MailboxId, uids: Sequence[api.Uid]) -> list[api.Uid]:
        raise api.StoreUnavailable("disk full")


def test_failed_update_answers_err_and_deletes_nothing(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.login()
        await client.command("DELE 1")
        reply = await client.command("QUIT")
        assert reply == b"-ERR [SYS/TEMP] some deleted messages not removed"
        assert len(await world.inbox()) == 3

    run(tmp_path, scenario, store=FailingExpunge(tmp_path / "failing.sqlite3"))


def test_message_expunged_elsewhere_is_refused(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.login()
        mailbox = await world.store.get_mailbox(world.accounts[ADDRESS].id, api.INBOX)
        await world.store.expunge(mailbox.id, [api.Uid(1)])  # an IMAP session, say
        assert await client.command("RETR 1") == b"-ERR message was removed by another session"
        assert await client.command("RETR 2") == b"+OK 33 octets"
        await client.lines()
        assert (await client.command("QUIT")).startswith(b"+OK")

    run(tmp_path, scenario)


def test_plaintext_refused_off_loopback_until_stls(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        world.service.engine_config = dataclasses.replace(
            world.service.engine_config, tls_available=True
        )
        world.service.tls = object()  # type: ignore[assignment]  # FakeStream ignores it
        client = await world.connect(peer_ip="192.0.2.7")
        refused = await client.command(f"USER {ADDRESS}")
        assert refused.startswith(b"-ERR [AUTH] Plaintext authentication disallowed")
        client.send(b"STLS\r\nUSER injected\r\n")
        assert await client.line() == b"+OK Begin TLS negotiation"
        assert await client.command("PASS secret") == b"-ERR No username given"
        assert client.stream.tls
        assert (await client.login()).startswith(b"+OK")

    run(tmp_path, scenario)


def test_sasl_plain_login_and_cancel(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        assert await client.command("AUTH PLAIN") == b"+ "
        assert await client.command("*") == b"-ERR Authentication cancelled."
        assert await client.command("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
        assert await client.command(base64.b64encode(ADDRESS.encode()).decode()) == (
            b"+ UGFzc3dvcmQ6"
        )
        assert await client.command(base64.b64encode(b"bad").decode()) == (
            b"-ERR [AUTH] Authentication failed."
        )
        assert await client.command("AUTH PLAIN") == b"+ "
        token = base64.b64encode(f"\0{ADDRESS}\0secret".encode()).decode()
        assert (await client.command(token)).startswith(b"+OK maildrop has 3")

    run(tmp_path, scenario)


def test_apop_needs_the_operators_secret(tmp_path: Path) -> None:
    def digest(client: Client, secret: str) -> str:
        timestamp = client.greeting[client.greeting.index(b"<") :].decode()
        return hashlib.md5(f"{timestamp}{secret}".encode()).hexdigest()

    async def scenario(world: World) -> None:
        await world.store.set_apop_secret(ADDRESS, "tanstaaf")
        client = await world.connect()
        failed = b"-ERR [AUTH] Authentication failed."
        assert await client.command(f"APOP {OTHER} {digest(client, 'secret')}") == failed
        assert await client.command(f"APOP {ADDRESS} {digest(client, 'secret')}") == failed
        reply = await client.command(f"APOP {ADDRESS} {digest(client, 'tanstaaf')}")
        assert reply == b"+OK maildrop has 3 messages (81 octets)"
        other = await world.connect()
        assert other.greeting != client.greeting  # RFC 1939 §7: a new timestamp each time

    run(tmp_path, scenario)


def test_too_many_errors_close_the_connection(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        for _ in range(3):
            assert await client.command("FROB") == b"-ERR Unknown command"
        assert await client.command("FROB") == b"-ERR Too many errors, closing connection."
        await asyncio.wait_for(client.task, 5)
        assert client.stream.closed

    run(tmp_path, scenario, max_errors=3)


def test_idle_timeout_closes_without_update(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.login()
        await client.command("DELE 1")
        assert await client.line() == b"-ERR Disconnected for inactivity."
        await asyncio.wait_for(client.task, 5)
        assert len(await world.inbox()) == 3
        again = await world.connect()
        assert (await again.login()).startswith(b"+OK")  # the lock went with the session

    run(tmp_path, scenario, timeout=0.2)


def test_shutdown_tells_idle_clients(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        client = await world.connect()
        await client.login()
        world.service.shutdown.set()
        client.stream.interrupt()
        assert await client.line() == b"-ERR [SYS/TEMP] Server shutting down."

    run(tmp_path, scenario)


def test_refuse_sends_an_err_greeting(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        stream = FakeStream("127.0.0.1")
        await world.service.refuse(stream)  # type: ignore[arg-type]
        assert bytes(stream.output) == b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n"
        assert stream.closed

    run(tmp_path, scenario)


@pytest.mark.parametrize("days", [0, 2])
def test_expired_messages_follow_internaldate(tmp_path: Path, days: int) -> None:
    async def scenario(world: World) -> None:
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        await world.store.append(
            world.accounts[ADDRESS].id, api.INBOX, b"Subject: old\r\n\r\n", internaldate=old
        )
        client = await world.connect()
        await client.login()
        for number in (1, 4):
            await client.command(f"RETR {number}")
            await client.lines()
        await client.command("QUIT")
        left = [entry.uid for entry in await world.inbox()]
        assert left == ([2, 3] if days == 0 else [1, 2, 3])

    run(tmp_path, scenario, expire=days)
