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
TLS_HANDSHAKE_TIMEOUT: Final = 30.0


class StreamClosed(Exception):
    """The peer is gone; writes cannot be delivered."""


class Interrupted(Exception):
    """A wait for input was cut short by `Stream.interrupt` (server shutdown)."""


class StreamProtocol(asyncio.Protocol):
    """Buffers incoming bytes for `Stream.receive_some` and tracks write flow control."""

    def __init__(self, on_connect: Callable[[StreamProtocol], None] | None = None) -> None:
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False
        self._interrupted = False
        self._timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self._on_connect is not None:
            self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._readable.set()
        if len(self._buffer) > READ_HIGH_WATER and self.transport and not self._paused:
            self.transport.pause_reading()
            self._paused = True

    def eof_received(self) -> bool:
        self._eof = True
        self._readable.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._readable.set()
        self._writable.set()

    def time_out(self) -> None:
        """The deadline of a pending `Stream.receive_some` has passed: wake it."""
        self._timed_out = True
        self._readable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        self._readable.clear()
        if self._paused and self.transport is not None:
            self.transport.resume_reading()
            self._paused = False
        return data

    def discard(self) -> None:
        """Forget everything received but not yet read (plaintext before a TLS upgrade)."""
        self._buffer.clear()
        self._readable.clear()


class Stream:
    """What sessions' drivers use: receive_some, send_all, start_tls, close."""

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
        if protocol._buffer:  # the common case under load: no timer to arm at all
            return protocol.take()
        timer = None
        if deadline is not None:
            timer = asyncio.get_running_loop().call_at(deadline, protocol.time_out)
        try:
            while True:
                if protocol._buffer:
                    return protocol.take()
                if protocol._eof:
                    return b""
                if protocol._interrupted:
                    protocol._interrupted = False
                    raise Interrupted
                if protocol._timed_out:
                    raise TimeoutError
                protocol._readable.clear()  # nothing pending: wait for the next wake-up
                await protocol._readable.wait()
        finally:
            if timer is not None:
                timer.cancel()
                protocol._timed_out = False

    def interrupt(self) -> None:
        """Wake a pending `receive_some` with Interrupted (used on shutdown)."""
        self._protocol._interrupted = True
        self._protocol._readable.set()

    async def send_all(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise StreamClosed
        self._transport.write(data)
        if not self._protocol._writable.is_set():
            await self._protocol._writable.wait()
            if self._transport.is_closing():
                raise StreamClosed

    async def send_many(self, chunks: list[bytes]) -> None:
        """Write several buffers with one call (writev under uvloop), without joining them."""
        if self._transport.is_closing():
            raise StreamClosed
        self._transport.writelines(chunks)
        if not self._protocol._writable.is_set():
            await self._protocol._writable.wait()
            if self._transport.is_closing():
                raise StreamClosed

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
