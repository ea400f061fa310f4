"""MX routing (RFC 5321 §5.1, RFC 7505) against a test DNS server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pillarbox.config import DeliveryConfig
from pillarbox.delivery.routing import Route, RouteFailure, Router, parse_smarthost
from tests.delivery.dns_server import Zone, dns_server


@pytest.fixture(scope="module")
def zone() -> Iterator[tuple[Zone, int]]:
    with dns_server() as (records, port):
        records.mx("pref.test", (20, "second.pref.test"), (10, "first.pref.test"))
        records.a("first.pref.test", "127.0.0.2")
        records.a("second.pref.test", "127.0.0.3")
        records.aaaa("second.pref.test", "::1")
        records.mx("same.test", *((10, f"h{i}.same.test") for i in range(6)))
        for i in range(6):
            records.a(f"h{i}.same.test", f"127.0.1.{i}")
        records.a("implicit.test", "127.0.0.4")
        records.null_mx("nomail.test")
        records.mx("backup.test", (10, "primary.backup.test"), (20, "mx.ours.test"))
        records.a("primary.backup.test", "127.0.0.5")
        records.a("mx.ours.test")
        records.mx("loop.test", (10, "mx.ours.test"), (20, "other.loop.test"))
        records.a("other.loop.test")
        records.mx("noaddr.test", (10, "ghost.noaddr.test"))
        records.name_only("ghost.noaddr.test")
        records.name_only("bare.test")
        records.a("relay.test", "127.0.0.9")
        yield records, port


def route(zone: tuple[Zone, int], domain: str, **config: object) -> Route | RouteFailure:
    settings = DeliveryConfig(dns=(f"127.0.0.1:{zone[1]}",), mx_port=2525, **config)  # type: ignore[arg-type]
    return asyncio.run(Router(settings, "mx.ours.test").route(domain))


def hosts(result: Route | RouteFailure) -> list[tuple[str, tuple[str, ...]]]:
    assert isinstance(result, Route), result
    return [(hop.host, hop.addresses) for hop in result.hops]


def test_mx_hosts_in_preference_order_with_ipv4_then_ipv6(zone: tuple[Zone, int]) -> None:
    assert hosts(route(zone, "pref.test")) == [
        ("first.pref.test", ("127.0.0.2",)),
        ("second.pref.test", ("127.0.0.3", "::1")),
    ]


def test_equal_preferences_are_tried_in_random_order(zone: tuple[Zone, int]) -> None:
    orders = {tuple(h for h, _ in hosts(route(zone, "same.test"))) for _ in range(8)}
    assert len(orders) > 1  # 8 draws of 720 orders: all equal with probability ~1e-20


def test_no_mx_falls_back_to_the_domain_address(zone: tuple[Zone, int]) -> None:
    assert hosts(route(zone, "implicit.test")) == [("implicit.test", ("127.0.0.4",))]


@pytest.mark.parametrize(
    ("domain", "code", "status"),
    [
        ("nomail.test", 556, "5.1.10"),  # RFC 7505 §4.1 null MX
        ("missing.test", 550, "5.1.2"),  # NXDOMAIN
        ("bare.test", 550, "5.1.2"),  # no MX and no address
        ("loop.test", 554, "5.4.6"),  # we are the best MX: mail would loop
        ("noaddr.test", 451, "4.4.3"),  # MX hosts without addresses: maybe DNS trouble
    ],
)
def test_route_failures(zone: tuple[Zone, int], domain: str, code: int, status: str) -> None:
    result = route(zone, domain)
    assert isinstance(result, RouteFailure)
    assert (result.reply.code, result.reply.status) == (code, status)


def test_our_own_mx_entry_drops_it_and_everything_less_preferred(zone: tuple[Zone, int]) -> None:
    assert hosts(route(zone, "backup.test")) == [("primary.backup.test", ("127.0.0.5",))]


def test_unreachable_dns_is_a_transient_failure() -> None:
    settings = DeliveryConfig(dns=("127.0.0.1:9",))
    router = Router(settings, "mx.ours.test")
    router.resolver.lifetime = 0.5
    result = asyncio.run(router.route("anything.test"))
    assert isinstance(result, RouteFailure) and result.reply.transient


def test_smarthost_takes_everything(zone: tuple[Zone, int]) -> None:
    result = route(zone, "pref.test", smarthost="relay.test:2526")
    assert isinstance(result, Route) and result.smarthost and result.port == 2526
    assert hosts(result) == [("relay.test", ("127.0.0.9",))]
    assert hosts(route(zone, "x.test", smarthost="[127.0.0.7]:25")) == [
        ("127.0.0.7", ("127.0.0.7",))
    ]


def test_address_literals_need_no_dns(zone: tuple[Zone, int]) -> None:
    assert hosts(route(zone, "[127.0.0.8]")) == [("[127.0.0.8]", ("127.0.0.8",))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("relay.example:587", ("relay.example", 587)),
        ("relay.example", ("relay.example", 25)),
        ("[192.0.2.1]:26", ("192.0.2.1", 26)),
        ("[::1]:2525", ("::1", 2525)),
    ],
)
def test_parse_smarthost(text: str, expected: tuple[str, int]) -> None:
    assert parse_smarthost(text) == expected
