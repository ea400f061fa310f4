"""Two (or more) Pillarbox instances on loopback with a shared test DNS zone, for e2e tests."""

from __future__ import annotations

import email
import email.message
import email.policy
import mailbox
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

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

    def messages(self, address: str) -> list[email.message.Message]:
        """The INBOX of `address`, read with `pillarbox mailbox export`."""
        out = self.root / "export.mbox"
        out.write_text(self.cli("mailbox", "export", address))
        box = mailbox.mbox(out, create=False)
        try:
            return [
                email.message_from_bytes(m.as_bytes(), policy=email.policy.compat32) for m in box
            ]
        finally:
            box.close()

    def queue(self) -> list[list[str]]:
        lines = self.cli("queue", "list").splitlines()[1:]
        return [line.split("\t") for line in lines]


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
