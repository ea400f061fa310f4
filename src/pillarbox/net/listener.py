"""Listening sockets: accept, enforce connection limits, hand each stream to a service."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from pillarbox import log
from pillarbox.config import ListenAddress
from pillarbox.net.stream import Stream, StreamProtocol

# How long an implicit-TLS client may take over its handshake.
TLS_HANDSHAKE_TIMEOUT: Final = 30.0

Handler = Callable[[Stream], Awaitable[None]]
Refuser = Callable[[Stream], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    per_ip: int  # 0 = unlimited
    total: int  # 0 = unlimited


class ConnectionCounter:
    """Open connections per client address, shared by a service's listeners."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._per_ip: Counter[str] = Counter()
        self._total = 0

    def admit(self, ip: str) -> bool:
        if self.limits.total and self._total >= self.limits.total:
            return False
        if self.limits.per_ip and self._per_ip[ip] >= self.limits.per_ip:
            return False
        self._per_ip[ip] += 1
        self._total += 1
        return True

    def release(self, ip: str) -> None:
        self._total -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


class Listener:
    """One service (e.g. "smtp") on one address, plain or implicit TLS."""

    def __init__(
        self,
        name: str,
        address: ListenAddress,
        handler: Handler,
        refuse: Refuser,
        counter: ConnectionCounter,
        tasks: asyncio.TaskGroup,
        tls: ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        """`sock`: accept on this already bound socket (shared with worker processes)."""
        self.name = name
        self._sock = sock
        self.address = address
        self._handler = handler
        self._refuse = refuse
        self._counter = counter
        self._tasks = tasks
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._streams: set[Stream] = set()

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handshake = TLS_HANDSHAKE_TIMEOUT if self._tls else None
        if self._sock is not None:
            self._server = await loop.create_server(
                self._protocol, sock=self._sock, ssl=self._tls, ssl_handshake_timeout=handshake
            )
        else:
            self._server = await loop.create_server(
                self._protocol,
                self.address.host,
                self.address.port,
                ssl=self._tls,
                ssl_handshake_timeout=handshake,
                reuse_address=True,
            )
        log.event("listen", service=self.name, address=f"{self.address.host}:{self.port}")

    def _protocol(self) -> StreamProtocol:
        return StreamProtocol(on_connect=self._connected)

    def _connected(self, protocol: StreamProtocol) -> None:
        self._tasks.create_task(self._serve(protocol))

    async def _serve(self, protocol: StreamProtocol) -> None:
        stream = Stream(protocol, tls=self._tls is not None)
        if not self._counter.admit(stream.peer_ip):
            log.event("connection.refused", service=self.name, peer=stream.peer_ip)
            await self._refuse(stream)
            return
        self._streams.add(stream)
        try:
            await self._handler(stream)
        except Exception:  # one broken connection must never take the server down
            log.exception("connection.error", service=self.name, peer=stream.peer_ip)
            stream.abort()
        finally:
            self._streams.discard(stream)
            self._counter.release(stream.peer_ip)

    def close(self) -> None:
        """Stop accepting, and wake every session waiting for input so it can say goodbye."""
        if self._server is not None:
            self._server.close()
        for stream in self._streams:
            stream.interrupt()
