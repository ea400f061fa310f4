"""ETRN (RFC 1985): parsing, who may ask, and the reply codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pillarbox.config import Config, DeliveryConfig, SmtpConfig
from pillarbox.delivery import etrn
from pillarbox.delivery.retry import HELD_NOTE
from pillarbox.delivery.routing import Router
from pillarbox.smtp.replies import Reply
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore

LOOPBACK = ipaddress.ip_address("127.0.0.1")
STRANGER = ipaddress.ip_address("192.0.2.7")


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("b.test", etrn.EtrnRequest("b.test")),
        ("@B.Test", etrn.EtrnRequest("b.test", subdomains=True)),
        ("#uucp", etrn.EtrnRequest("uucp", queue=True)),
        ("", etrn.BAD_NODE),
        ("bad..name", etrn.BAD_NODE),
        ("@", etrn.BAD_NODE),
        ("#", etrn.BAD_NODE),
        ("a b", etrn.BAD_NODE),
    ],
)
def test_parse(arg: str, expected: object) -> None:
    assert etrn.parse(arg) == expected


class StaticRouter(Router):
    """b.test's MX host is 127.0.0.1 (no DNS needed)."""

    def __init__(self) -> None:
        super().__init__(DeliveryConfig(dns=("127.0.0.1:9",)), "mx.a.test")

    async def exchanges(self, domain: str) -> list[str]:
        return ["mx.b.test"] if domain == "b.test" else []

    async def addresses(self, host: str) -> tuple[str, ...]:
        return ("127.0.0.1",) if host == "mx.b.test" else ()


def run(
    tmp_path: Path,
    test: Callable[[etrn.EtrnService, api.Store, list[int]], Awaitable[None]],
    **smtp: object,
) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "db.sqlite3")
        await store.open()
        try:
            config = Config(
                hostname="mx.a.test",
                smtp=SmtpConfig(**smtp),  # type: ignore[arg-type]
                delivery=DeliveryConfig(hold_domains=("b.test",)),
            )
            woken: list[int] = []
            service = etrn.EtrnService(config, store, StaticRouter(), lambda: woken.append(1))
            await test(service, store, woken)
        finally:
            await store.close()

    asyncio.run(main())


async def queue(store: api.Store, *addresses: str) -> list[api.QueueId]:
    remote = tuple(api.DsnRecipient(a) for a in addresses)
    result = await store.deliver(
        api.Delivery(b"Subject: x\r\n\r\nx\r\n", api.Envelope("c@x.test"), remote=remote)
    )
    return list(result.queued)


def test_codes_for_each_kind_of_request(tmp_path: Path) -> None:
    async def test(service: etrn.EtrnService, store: api.Store, woken: list[int]) -> None:
        async def ask(arg: str, peer: etrn.IPAddress = LOOPBACK) -> Reply:
            return await service.handle(arg, authenticated=False, peer=peer)

        assert (await ask("b.test")).code == 251  # known hold domain, nothing waiting
        ids = await queue(store, "bob@b.test", "ann@b.test", "x@sub.b.test", "y@c.test")
        await store.hold_queue_entry(ids[0], True, note=HELD_NOTE)
        await store.hold_queue_entry(ids[1], True)  # an operator's hold stays
        assert (await ask("b.test")).text == "OK, 1 pending messages for node b.test started"
        entries = {e.recipient.address: e for e in await store.list_queue()}
        assert not entries["bob@b.test"].held and entries["ann@b.test"].held
        assert (await ask("@b.test")).code == 253  # RFC 1985 §5.3: subdomains too
        assert (await ask("#uucp")).code == 458
        assert (await ask("nothing.test")).code == 459
        assert (await ask("b.test", STRANGER)).code == 459  # not the domain's host
        assert (await ask("c.test")).code == 459  # c.test's host is not the client
        assert len(woken) == 3

    run(tmp_path, test)


def test_authenticated_clients_and_relay_networks_may_ask(tmp_path: Path) -> None:
    async def test(service: etrn.EtrnService, store: api.Store, woken: list[int]) -> None:
        await queue(store, "y@c.test")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        [entry] = await store.list_queue()
        await store.reschedule_queue_entry(entry.id, later, "451 later")
        reply = await service.handle("c.test", authenticated=True, peer=STRANGER)
        assert reply.code == 253
        [entry] = await store.list_queue()
        assert entry.next_attempt < later  # due now
        assert (await service.handle("c.test", authenticated=False, peer=STRANGER)).code == 253

    run(tmp_path, test, relay_networks=(ipaddress.ip_network("192.0.2.0/24"),))
