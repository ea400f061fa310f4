"""A byte stream over an asyncio transport, with an in-place TLS upgrade.

Own protocol class rather than asyncio's StreamReader so that the plaintext buffer can be
dropped at the instant of a STARTTLS upgrade (CVE-2011-0411) and reads return whatever has
arrived, which the engines want.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final, cast

# Stop reading from the socket while this much is buffered and unread (back-pressure).
READ_HIGH_WATER: Final = 256 * 1024
# Buffers written together are joined up to this many octets: one plain write costs less
# than a gathered one (uvloop makes a write request for several buffers), while copying
# a large message to join it would cost more than the gathering.
JOIN_LIMIT: Final = 64 * 1024
TLS_HANDSHAKE_TIMEOUT: Final = 30.0


class StreamClosed(Exception):
    """The peer is gone; writes cannot be delivered."""


class Interrupted(Exception):
    """A wait for input was cut short by `Stream.interrupt` (server shutdown)."""


class StreamProtocol(asyncio.Protocol):
    """Buffers incoming bytes for `Stream.receive_some` and tracks write flow control.

    A read that finds nothing buffered waits on one future of its own (`wait`), which the
    next event (bytes, end of stream, interrupt, deadline) resolves. Deadlines share one
    lazy timer per connection: it is armed at the first deadline and, when it fires while
    a later deadline is pending, moved there; reads that end before it fires (almost all)
    cost no timer at all.
    """

    def __init__(self, on_connect: Callable[[StreamProtocol], None] | None = None) -> None:
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []  # received, not yet taken, in order
        self._size = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None  # the pending `wait`
        self._deadline: float | None = None  # the pending wait's deadline
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False
        self._interrupted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self._on_connect is not None:
            self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self.wake()
        if self._size > READ_HIGH_WATER and self.transport and not self._paused:
            self.transport.pause_reading()
            self._paused = True

    def eof_received(self) -> bool:
        self._eof = True
        self.wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self.wake()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writable.set()

    def wake(self) -> None:
        """End the pending `wait`, if any; the reader looks at what happened."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wait(self, deadline: float | None) -> asyncio.Future[None]:
        """A future that the next event resolves; `deadline` on the loop's clock."""
        if self._waiter is not None:
            raise RuntimeError("another read is already waiting on this stream")
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self._deadline = deadline
        if deadline is not None and (self._timer is None or self._timer_at > deadline):
            if self._timer is not None:
                self._timer.cancel()
            self._arm(loop, deadline)
        return waiter

    def waited(self) -> None:
        """The pending `wait` is over (resolved or cancelled)."""
        self._waiter = None
        self._deadline = None

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._timer = loop.call_at(when, self._time_check)
        self._timer_at = when

    def _time_check(self) -> None:
        """The lazy timer fired: wake a wait whose deadline has passed, or move the timer
        to the deadline of the wait now pending."""
        self._timer = None
        deadline = self._deadline
        if self._waiter is None or deadline is None:
            return  # nobody waits: the next wait arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            self.wake()
        else:
            self._arm(loop, deadline)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._paused and self.transport is not None:
            self.transport.resume_reading()
            self._paused = False
        return data

    def discard(self) -> None:
        """Forget everything received but not yet read (plaintext before a TLS upgrade)."""
        self._chunks.clear()
        self._size = 0


class Stream:
    """What sessions' drivers use: receive_some, write + drain (or send_all), start_tls, close."""

    def __init__(self, protocol: StreamProtocol, tls: bool = False) -> None:
        assert protocol.transport is not None
        self._protocol = protocol
        self._transport: asyncio.Transport = protocol.transport
        self.tls = tls
        peer = self._transport.get_extra_info("peername") or ("", 0)
        local = self._transport.get_extra_info("sockname") or ("", 0)
        self.peer_ip: str = peer[0]
        self.peer_port: int = peer[1]
        self.local_ip: str = local[0]
        self.local_port: int = local[1]

    @property
    def tls_version(self) -> str | None:
        ssl_object = self._transport.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object is not None else None

    @property
    def tls_cipher(self) -> str | None:
        cipher = self._transport.get_extra_info("cipher")
        return cipher[0] if cipher else None

    async def receive_some(self, deadline: float | None = None) -> bytes:
        """The bytes that have arrived (waiting for some); b"" at end of stream.

        Raises Interrupted if `interrupt` is called while nothing has arrived, and
        TimeoutError if nothing has arrived by `deadline` (the loop's clock).
        """
        protocol = self._protocol
        while True:
            if protocol._chunks:
                return protocol.take()
            if protocol._eof:
                return b""
            if protocol._interrupted:
                protocol._interrupted = False
                raise Interrupted
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError
            waiter = protocol.wait(deadline)
            try:
                await waiter
            finally:
                protocol.waited()

    def interrupt(self) -> None:
        """Wake a pending `receive_some` with Interrupted (used on shutdown)."""
        self._protocol._interrupted = True
        self._protocol.wake()

    def write(self, chunks: list[bytes]) -> bool:
        """Queue `chunks` for sending in order with one call (writev under uvloop, without
        joining them); True when the peer reads too slowly and the writer must `drain`."""
        transport = self._transport
        if transport.is_closing():
            raise StreamClosed
        if len(chunks) == 1:
            transport.write(chunks[0])
        elif sum(map(len, chunks)) <= JOIN_LIMIT:
            transport.write(b"".join(chunks))
        else:
            transport.writelines(chunks)
        return not self._protocol._writable.is_set()

    async def drain(self) -> None:
        """Wait until the transport's write buffer has room again (back-pressure)."""
        await self._protocol._writable.wait()
        if self._transport.is_closing():
            raise StreamClosed

    async def send_all(self, data: bytes) -> None:
        if self.write([data]):
            await self.drain()

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Upgrade in place; bytes that arrived before the upgrade are discarded."""
        self._protocol.discard()  # RFC 3207 §4.2 / CVE-2011-0411: no plaintext carried over
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self._transport,
            self._protocol,
            context,
            server_side=True,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
        )
        if transport is None:
            raise StreamClosed
        self._transport = transport
        self._protocol.transport = self._transport
        self.tls = True

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()
