"""The one loop that feeds a sans-IO engine from a stream and writes its replies.

Every protocol (SMTP, POP3) runs through `drive`: the engine turns bytes into events, the
session turns events into replies (using the store), the engine turns replies into bytes.
Replies are written when the engine needs more input, so pipelined commands get their
replies in one write, in order (RFC 2920 §3.2).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any, Protocol

from pillarbox.net.stream import Interrupted, Stream, StreamClosed


class Engine(Protocol):
    @property
    def closed(self) -> bool: ...
    def receive_data(self, data: bytes) -> None: ...
    def next_event(self) -> Any: ...
    def send(self, reply: Any) -> bytes: ...


class Session(Protocol):
    """What a protocol session offers the driver."""

    @property
    def timeout(self) -> float:
        """Seconds to wait for the client's next bytes in the current state."""

    @property
    def tls_requested(self) -> bool:
        """True after the session accepted STARTTLS/STLS: upgrade before reading on."""

    @property
    def busy(self) -> bool:
        """True inside a transaction that a graceful shutdown lets finish."""

    async def greet(self) -> Sequence[Any]: ...
    async def handle(self, event: Any) -> Sequence[Any]: ...
    def tls_started(self, stream: Stream) -> None: ...
    def timeout_reply(self) -> Any: ...
    def shutdown_reply(self) -> Any: ...
    async def close(self) -> None: ...


async def drive(
    stream: Stream,
    engine: Engine,
    session: Session,
    need_data: object,
    shutdown: asyncio.Event,
    tls_context: ssl.SSLContext | None,
) -> None:
    """Run one connection to its end; never raises for anything the peer does."""
    pending: list[bytes] = [engine.send(reply) for reply in await session.greet()]
    send, handle, next_event = engine.send, session.handle, engine.next_event
    try:
        while not engine.closed:
            event = next_event()
            if event is not need_data:
                for reply in await handle(event):
                    pending.append(send(reply))
                continue
            if pending and _write(stream, pending):
                await stream.drain()  # back-pressure: the client reads slowly
            if engine.closed:
                break
            if session.tls_requested and tls_context is not None:
                await stream.start_tls(tls_context)
                session.tls_started(stream)
                continue
            data = await _receive(stream, session, shutdown)
            if data is None:
                reply = session.shutdown_reply() if shutdown.is_set() else session.timeout_reply()
                await stream.send_all(send(reply))
                break
            engine.receive_data(data)
        if pending and _write(stream, pending):
            await stream.drain()
    except (StreamClosed, ConnectionError, ssl.SSLError, TimeoutError):
        pass  # the peer went away or the TLS handshake failed: nothing to tell it
    finally:
        stream.close()
        await session.close()


def _write(stream: Stream, pending: list[bytes]) -> bool:
    """Write the pending replies in order with one call (a retrieved message is not
    copied to join it with a large neighbour); True if the writer must drain first."""
    must_drain = stream.write(pending)
    pending.clear()
    return must_drain


async def _receive(stream: Stream, session: Session, shutdown: asyncio.Event) -> bytes | None:
    """The next bytes; None on timeout, or on shutdown while no transaction is open.

    A shutdown wakes the wait through `Stream.interrupt` (see Listener.close); a session
    inside a transaction keeps reading until it is done.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + session.timeout
    while not (shutdown.is_set() and not session.busy):
        try:
            return await stream.receive_some(deadline)
        except Interrupted:
            continue
        except TimeoutError:
            return None
    return None
