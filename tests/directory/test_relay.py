"""No open relay: only authenticated clients and configured networks relay."""

from __future__ import annotations

import ipaddress

import pytest

from pillarbox.directory.relay import is_relay_allowed, parse_networks

NETWORKS = parse_networks(["192.0.2.0/24", "2001:db8::/32", " 127.0.0.1 "])


@pytest.mark.parametrize(
    "ip", ["192.0.2.7", "::ffff:192.0.2.7", "2001:db8::25", "127.0.0.1", "fe80::1%eth0x"]
)
def test_configured_networks_relay(ip: str) -> None:
    expected = not ip.startswith("fe80")
    assert is_relay_allowed(ip, False, NETWORKS) is expected


@pytest.mark.parametrize("ip", ["198.51.100.1", "::1", "not an ip", ""])
def test_others_do_not_relay(ip: str) -> None:
    assert not is_relay_allowed(ip, False, NETWORKS)


def test_authenticated_clients_relay_from_anywhere() -> None:
    assert is_relay_allowed("198.51.100.1", True, [])


def test_address_objects_are_accepted() -> None:
    assert is_relay_allowed(ipaddress.ip_address("192.0.2.1"), False, NETWORKS)


def test_empty_network_list_is_not_an_open_relay() -> None:
    assert not is_relay_allowed("192.0.2.1", False, [])


def test_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        parse_networks(["10.0.0.0/33"])
