"""Two (or more) Pillarbox instances on loopback with a shared test DNS zone, for e2e tests."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import smtplib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pillarbox.store.api import INBOX
from pillarbox.store.sqlite import SqliteStore
from tests.delivery.dns_server import Zone
from tests.e2e.server import Server

T = TypeVar("T")
WAIT = 20.0


@dataclass
class Node(Server):
    """A Server with its own host name and mail domain."""

    hostname: str = "mx.pillarbox.test"
    domain: str = "pillarbox.test"

    def config_text(self) -> str:
        text = Server.config_text(self)
        return text.replace('hostname = "mx.pillarbox.test"', f'hostname = "{self.hostname}"', 1)

    def rewrite_config(self) -> None:
        self.config_path.write_text(self.config_text())

    def setup(self, *users: str) -> None:
        self.cli("domain", "add", self.domain)
        for user in users:
            self.add_user(f"{user}@{self.domain}")

    def submit(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Authenticated submission (RFC 6409) as `sender` (password "secret")."""
        with smtplib.SMTP("127.0.0.1", self.ports["submission"], timeout=10) as client:
            client.ehlo("client.test")
            client.login(sender, "secret")
            client.sendmail(sender, recipients, message)

    def _store(self, job: Callable[[SqliteStore], Awaitable[T]]) -> T:
        """Run `job` on the node's store, opened in this process (as the CLI would)."""

        async def main() -> T:
            store = SqliteStore(self.data_dir / "pillarbox.sqlite3")
            await store.open()
            try:
                return await job(store)
            finally:
                await store.close()

        return asyncio.run(main())

    def messages(self, address: str) -> list[email.message.Message]:
        """The messages in the INBOX of `address`."""

        async def read(store: SqliteStore) -> list[bytes]:
            account = await store.get_account(address)
            mailbox = await store.get_mailbox(account.id, INBOX)
            return [
                await store.get_body(e.message_id) for e in await store.list_entries(mailbox.id)
            ]

        bodies = self._store(read)
        return [email.message_from_bytes(b, policy=email.policy.compat32) for b in bodies]

    def queue(self) -> list[list[str]]:
        """The queue as `pillarbox queue list` shows it (columns split at tabs)."""

        async def read(store: SqliteStore) -> list[list[str]]:
            return [
                [
                    str(e.id),
                    f"<{e.envelope.sender}>",
                    f"<{e.recipient.address}>",
                    str(e.attempts),
                    e.next_attempt.isoformat(),
                    str(e.size),
                    "held" if e.held else "queued",
                    e.last_result,
                ]
                for e in await store.list_queue()
            ]

        return self._store(read)


def node(root: Path, name: str, dns_port: int, extra: str = "") -> Node:
    """A stopped node `name` (host mx.<name>.test, domain <name>.test) using the test DNS."""
    root.mkdir(parents=True, exist_ok=True)
    delivery = f'[delivery]\ndns = ["127.0.0.1:{dns_port}"]\nretry = ["1s"]\n'
    return Node(root, extra=delivery + extra, hostname=f"mx.{name}.test", domain=f"{name}.test")


def point_mx(zone: Zone, *nodes: Node) -> None:
    """Each node's domain has an MX record naming the node, which lives on 127.0.0.1."""
    for each in nodes:
        zone.mx(each.domain, (10, each.hostname))
        zone.a(each.hostname)


def link(sender: Node, receiver: Node) -> None:
    """`sender` delivers to MX hosts on `receiver`'s SMTP port (delivery.mx_port)."""
    sender.extra = sender.extra.replace(
        "[delivery]\n", f"[delivery]\nmx_port = {receiver.ports['smtp']}\n", 1
    )
    sender.rewrite_config()


def wait_for(probe: Callable[[], T], timeout: float = WAIT, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
