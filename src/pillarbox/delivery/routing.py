"""Where mail for a domain goes: MX records, their addresses, or the smarthost (RFC 5321 §5.1).

`Router.route(domain)` answers a `Route` (hosts in the order to try, each with its
addresses) or a `RouteFailure` whose reply says whether to give up (NXDOMAIN, null MX,
mail that would loop back to us) or to retry later (DNS trouble).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from pillarbox.config import ConfigError, DeliveryConfig, parse_listen
from pillarbox.smtp.client_wire import ServerReply, synthetic

# How long one lookup (with its retries over the configured servers) may take.
DNS_LIFETIME: Final = 10.0
SMARTHOST_DEFAULT_PORT: Final = 25


@dataclass(frozen=True, slots=True)
class Hop:
    """One host to try: its name (for EHLO logs and Remote-MTA) and its IP addresses."""

    host: str
    addresses: tuple[str, ...]
    preference: int = 0


@dataclass(frozen=True, slots=True)
class Route:
    hops: tuple[Hop, ...]
    port: int
    smarthost: bool = False


@dataclass(frozen=True, slots=True)
class RouteFailure:
    reply: ServerReply  # permanent: bounce now; transient: retry later


def _nameservers(entries: Sequence[str]) -> list[str | dns.nameserver.Nameserver]:
    """'127.0.0.1', '::1', '127.0.0.1:5353' or '[::1]:5353' -> resolver nameservers."""
    servers: list[str | dns.nameserver.Nameserver] = []
    for index, entry in enumerate(entries):
        if _is_ip(entry.strip("[]")):
            servers.append(dns.nameserver.Do53Nameserver(entry.strip("[]")))
        else:
            address = parse_listen(entry, f"delivery.dns[{index}]")
            servers.append(dns.nameserver.Do53Nameserver(address.host, address.port))
    return servers


def make_resolver(config: DeliveryConfig) -> dns.asyncresolver.Resolver:
    """The system resolver, or the servers of `delivery.dns` (tests use a local one)."""
    if config.dns:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = _nameservers(config.dns)
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    resolver.lifetime = DNS_LIFETIME
    resolver.cache = dns.resolver.Cache()  # answers are kept for their TTL
    return resolver


def parse_smarthost(text: str) -> tuple[str, int]:
    """'relay.example:587', '[192.0.2.1]:25' or 'relay.example' -> (host, port)."""
    if text.rpartition(":")[2].isdigit() and "]" not in text.rpartition(":")[2]:
        try:
            address = parse_listen(text, "delivery.smarthost")
        except ConfigError:
            return text.strip("[]"), SMARTHOST_DEFAULT_PORT
        return address.host, address.port
    return text.strip("[]"), SMARTHOST_DEFAULT_PORT


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _same_host(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _order(records: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """RFC 5321 §5.1: lowest preference first, and random among equal preferences."""
    shuffled = records[:]
    random.shuffle(shuffled)
    return sorted(shuffled, key=lambda record: record[0])


class Router:
    """Finds the hosts for a recipient domain with dnspython's async resolver."""

    def __init__(
        self,
        config: DeliveryConfig,
        hostname: str,
        resolver: dns.asyncresolver.Resolver | None = None,
    ) -> None:
        self.config = config
        self.hostname = hostname
        self.resolver = resolver or make_resolver(config)

    async def route(self, domain: str) -> Route | RouteFailure:
        if self.config.smarthost:
            return await self._smarthost()
        if domain.startswith("[") and domain.endswith("]"):  # RFC 5321 §4.1.3 address literal
            literal = domain[1:-1].removeprefix("IPv6:")
            if _is_ip(literal):
                return Route((Hop(domain, (literal,)),), self.config.mx_port)
            return RouteFailure(synthetic(550, "5.1.2", f"Bad address literal {domain}"))
        records = await self._mx(domain)
        if isinstance(records, RouteFailure):
            return records
        return await self._hops(domain, records)

    async def _smarthost(self) -> Route | RouteFailure:
        host, port = parse_smarthost(self.config.smarthost)
        addresses = (host,) if _is_ip(host) else await self.addresses(host)
        if not addresses:
            return RouteFailure(synthetic(451, "4.4.3", f"No address for smarthost {host}"))
        return Route((Hop(host, addresses),), port, smarthost=True)

    async def _mx(self, domain: str) -> list[tuple[int, str]] | RouteFailure:
        try:
            answer = await self.resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            return RouteFailure(synthetic(550, "5.1.2", f"Domain {domain} does not exist"))
        except dns.resolver.NoAnswer:
            return [(0, domain)]  # RFC 5321 §5.1: no MX, the domain is its own implicit MX
        except (dns.exception.DNSException, OSError) as error:
            return RouteFailure(synthetic(451, "4.4.3", f"DNS lookup of {domain} failed: {error}"))
        records = [(int(r.preference), r.exchange.to_text(omit_final_dot=True)) for r in answer]
        if any(exchange in ("", ".") for _, exchange in records):
            # RFC 7505 §3, §4.1: a null MX says the domain accepts no mail.
            return RouteFailure(synthetic(556, "5.1.10", f"Domain {domain} accepts no mail"))
        return records

    async def _hops(self, domain: str, records: list[tuple[int, str]]) -> Route | RouteFailure:
        ours = [pref for pref, exchange in records if _same_host(exchange, self.hostname)]
        if ours:
            # RFC 5321 §5.1: we are an MX; only hosts strictly more preferred may be tried.
            records = [(pref, exchange) for pref, exchange in records if pref < min(ours)]
            if not records:
                reason = f"Mail for {domain} loops back to myself"
                return RouteFailure(synthetic(554, "5.4.6", reason))
        ordered = _order(records)
        found = await asyncio.gather(*(self.addresses(exchange) for _, exchange in ordered))
        hops = tuple(
            Hop(exchange, addresses, pref)
            for (pref, exchange), addresses in zip(ordered, found, strict=True)
            if addresses
        )
        if hops:
            return Route(hops, self.config.mx_port)
        if records == [(0, domain)]:  # implicit MX without any address
            return RouteFailure(synthetic(550, "5.1.2", f"Domain {domain} has no mail server"))
        return RouteFailure(
            synthetic(451, "4.4.3", f"No address found for the MX hosts of {domain}")
        )

    async def exchanges(self, domain: str) -> list[str]:
        """The MX host names of a domain (none on any DNS failure), ignoring the smarthost."""
        records = await self._mx(domain)
        if isinstance(records, RouteFailure):
            return []
        return [exchange for _, exchange in records]

    async def addresses(self, host: str) -> tuple[str, ...]:
        """IPv4 then IPv6 addresses of a host name; () when it has none (or DNS fails)."""
        if _is_ip(host):
            return (host,)
        out: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype, search=False)
            except (dns.exception.DNSException, OSError):
                continue
            out.extend(
                r.to_text() for r in answer if r.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            )
        return tuple(out)
