"""The relay decision: who may send mail to non-local domains (no open relay)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(client_ip: str | IPAddress) -> IPAddress | None:
    if isinstance(client_ip, str):
        try:
            client_ip = ipaddress.ip_address(client_ip.split("%", 1)[0])  # drop a zone index
        except ValueError:
            return None
    if isinstance(client_ip, ipaddress.IPv6Address) and client_ip.ipv4_mapped is not None:
        return client_ip.ipv4_mapped  # ::ffff:192.0.2.1 from a dual-stack socket
    return client_ip


def is_relay_allowed(
    client_ip: str | IPAddress, authenticated: bool, relay_networks: Sequence[IPNetwork]
) -> bool:
    """RFC 5321 §3.6.1 / §7.1: relay for authenticated clients and configured networks only."""
    if authenticated:
        return True
    address = _address(client_ip)
    if address is None:
        return False
    return any(address in network for network in relay_networks)


def parse_networks(texts: Iterable[str]) -> list[IPNetwork]:
    """CIDR strings ("192.0.2.0/24", "::1") to networks. Raises ValueError naming the bad one."""
    networks: list[IPNetwork] = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"bad network {text!r}") from None
    return networks
