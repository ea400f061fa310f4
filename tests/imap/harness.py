"""Run the IMAP engine and session against a real SQLite store, with no sockets.

`Harness` holds a store with one account (jane@example.test / "secret") and opens
sessions on it; `Client.send(data)` feeds bytes to the engine, runs the session on every
event and returns what the server wrote. Transcript files (C:/S: lines) replay through it:
"S:" lines may use `<n>` for any number and `<*>` for any text (UIDVALIDITY and dates).

Directives: "! plaintext" (a non-loopback, non-TLS peer), "! tls" (connection over TLS),
"! append MAILBOX [FLAG ...]" (put the next sample message into a mailbox via the store),
"! flag UID FLAG" (another session sets a flag via the store), "! expunge UID" (another
session removes a message), "! idle" (run the driver's IDLE push: updates now), "# ..."
comments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import Parameters, Type

from pillarbox.auth.authenticator import Authenticator
from pillarbox.auth.passwords import hash_password
from pillarbox.auth.throttle import LoginThrottle, ThrottlePolicy
from pillarbox.imap.engine import NEED_DATA, ImapConfig, ImapEngine
from pillarbox.imap.session import ImapSession, SessionContext
from pillarbox.store.api import INBOX, Account, Uid
from pillarbox.store.sqlite import SqliteStore

CRLF = b"\r\n"
FAST = Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=16, time_cost=1, memory_cost=8, parallelism=1
)
PASSWORD_HASH = hash_password("secret", FAST)
DOMAIN = "example.test"


def sample(n: int) -> bytes:
    return (
        f"From: Sender {n} <sender{n}@remote.test>\r\n"
        f"To: Jane <jane@{DOMAIN}>\r\n"
        f"Subject: Message {n}\r\n"
        f"Date: Mon, 0{n % 9 + 1} Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <m{n}@remote.test>\r\n"
        "\r\n"
        f"Body of message {n}.\r\n"
    ).encode()


@dataclass
class FakeService:
    store: Any
    authenticator: Any
    config: Any
    tls: object | None = object()
    max_message_size: int = 1_000_000
    engine_config: ImapConfig = field(
        default_factory=lambda: ImapConfig(max_message_size=1_000_000)
    )


@dataclass
class FakeConfig:
    hostname: str = "mail.example.test"
    auth: Any = None


@dataclass
class FakeAuth:
    allow_plaintext_on_loopback: bool = True


class Client:
    """One connection: engine + session, fed directly."""

    def __init__(self, context: SessionContext, plaintext: bool = False, tls: bool = False) -> None:
        self.engine = ImapEngine(ImapConfig(max_message_size=1_000_000), tls_active=tls)
        self.session = ImapSession(
            context, "192.0.2.1" if plaintext else "127.0.0.1", tls, not plaintext
        )

    def greet(self) -> bytes:
        return b"".join(self.engine.send(r) for r in self.session.greeting())

    async def send(self, data: bytes) -> bytes:
        self.engine.receive_data(data)
        out: list[bytes] = []
        while not self.engine.closed:
            event = self.engine.next_event()
            if event is NEED_DATA:
                if self.engine.tls_pending:
                    self.engine.tls_established()
                    self.session.tls_started()
                    continue
                break
            for response in await self.session.handle(event):
                if self.engine.closed:
                    break
                out.append(self.engine.send(response))
        return b"".join(out)

    async def line(self, text: str) -> bytes:
        return await self.send(text.encode() + CRLF)

    async def idle_push(self) -> bytes:
        """What the driver writes when the feed wakes an idling session."""
        feed = self.session.feed
        assert feed is not None
        while (change := feed.get_nowait()) is not None:
            self.session.note_change(change)
        return b"".join(self.engine.send(r) for r in await self.session.idle_updates())


class Harness:
    def __init__(self, store: SqliteStore, account: Account) -> None:
        self.store = store
        self.account = account
        service = FakeService(
            store,
            Authenticator(store, None, LoginThrottle(ThrottlePolicy(failure_delay=0.0))),
            FakeConfig(auth=FakeAuth()),
        )
        self.context = SessionContext(service)
        self.count = 0

    async def append(self, mailbox: str = INBOX, *flags: str) -> Uid:
        self.count += 1
        when = dt.datetime(2024, 1, 1, 10, self.count % 60, tzinfo=dt.UTC)
        entry = await self.store.append(
            self.account.id, mailbox, sample(self.count), frozenset(flags), when
        )
        return entry.uid

    def client(self, plaintext: bool = False, tls: bool = False) -> Client:
        return Client(self.context, plaintext, tls)

    async def inbox_id(self) -> Any:
        return (await self.store.get_mailbox(self.account.id, INBOX)).id


async def open_harness(tmp: Path) -> Harness:
    store = SqliteStore(tmp / "store.sqlite")
    await store.open()
    await store.add_domain(DOMAIN)
    account = await store.add_account(f"jane@{DOMAIN}", PASSWORD_HASH, "Jane")
    return Harness(store, account)


def run(tmp: Path, test: Any) -> None:
    """Run `await test(harness)` in a fresh loop with an open store."""

    async def main() -> None:
        harness = await open_harness(tmp)
        try:
            await test(harness)
        finally:
            await harness.store.close()

    asyncio.run(main())


# -- transcripts ---------------------------------------------------------------------------


def expected_regex(line: str) -> re.Pattern[str]:
    pieces = re.split(r"(<n>|<\*>)", line)
    out = []
    for piece in pieces:
        if piece == "<n>":
            out.append(r"\d+")
        elif piece == "<*>":
            out.append(r".*")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out))


@dataclass
class Step:
    directive: list[str] | None = None
    client: bytes = b""
    expected: list[str] = field(default_factory=list)


def load(path: Path) -> tuple[set[str], list[Step]]:
    options: set[str] = set()
    steps: list[Step] = [Step()]
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("C:"):
            if steps[-1].expected or steps[-1].directive:
                steps.append(Step())
            steps[-1].client += raw[3:].encode() + CRLF
        elif raw.startswith("S:"):
            steps[-1].expected.append(raw[3:])
        elif raw.startswith("! "):
            words = raw[2:].split()
            if words[0] in ("plaintext", "tls"):
                options.add(words[0])
            else:
                steps.append(Step(directive=words))
        elif raw and not raw.startswith("#"):
            raise ValueError(f"{path.name}: cannot read line {raw!r}")
    return options, steps


async def replay(harness: Harness, path: Path) -> None:
    options, steps = load(path)
    client = harness.client(plaintext="plaintext" in options, tls="tls" in options)
    got = client.greet()
    for step in steps:
        if step.directive is not None:
            got += await directive(harness, client, step.directive)
        if step.client:
            got += await client.send(step.client)
        if step.client or step.expected:
            check(path.name, got, step.expected)
            got = b""
    check(path.name, got, [])


async def directive(harness: Harness, client: Client, words: Sequence[str]) -> bytes:
    verb, args = words[0], list(words[1:])
    box = await harness.inbox_id()
    if verb == "append":
        await harness.append(args[0] if args else INBOX, *args[1:])
    elif verb == "flag":
        await harness.store.store_flags(box, [Uid(int(args[0]))], frozenset(args[1:]), frozenset())
    elif verb == "expunge":
        await harness.store.expunge(box, [Uid(int(a)) for a in args])
    elif verb == "idle":
        return await client.idle_push()
    else:
        raise ValueError(f"unknown directive {verb}")
    return b""


def check(name: str, got: bytes, expected: list[str]) -> None:
    lines = got.decode("utf-8", "replace").split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    mismatch = len(lines) != len(expected) or not all(
        expected_regex(want).fullmatch(line) for want, line in zip(expected, lines, strict=False)
    )
    assert not mismatch, f"{name}: expected\n" + "\n".join(expected) + "\ngot\n" + "\n".join(lines)
