"""A tiny authoritative DNS server for tests (dnslib), on a loopback UDP port.

Serves MX, A and AAAA records for made-up domains: a name with no records answers
NXDOMAIN, a known name without the asked type answers NOERROR with no data.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

TTL = 1


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Zone(BaseResolver):  # type: ignore[misc]
    """Records by (name, type); edit them while the server runs."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[Any]] = {}
        self.names: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return name.lower().rstrip(".")

    def add(self, name: str, rtype: str, rdata: Any) -> None:
        with self._lock:
            self.names.add(self._key(name))
            self.records.setdefault((self._key(name), rtype), []).append(rdata)

    def mx(self, domain: str, *hosts: tuple[int, str]) -> None:
        for preference, host in hosts:
            self.add(domain, "MX", MX(host, preference))

    def null_mx(self, domain: str) -> None:
        self.add(domain, "MX", MX(".", 0))  # RFC 7505

    def a(self, name: str, address: str = "127.0.0.1") -> None:
        self.add(name, "A", A(address))

    def aaaa(self, name: str, address: str = "::1") -> None:
        self.add(name, "AAAA", AAAA(address))

    def name_only(self, name: str) -> None:
        with self._lock:
            self.names.add(self._key(name))

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = self._key(str(request.q.qname))
        rtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((name, rtype))
            if name not in self.names:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            for rdata in self.records.get((name, rtype), []):
                reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=TTL))
        return reply


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@contextmanager
def dns_server() -> Iterator[tuple[Zone, int]]:
    """Run a Zone on 127.0.0.1:<free port>; yields (zone, port)."""
    zone = Zone()
    port = free_udp_port()
    server = DNSServer(zone, address="127.0.0.1", port=port, logger=_Quiet())
    server.start_thread()
    try:
        yield zone, port
    finally:
        server.stop()
        server.server.server_close()
