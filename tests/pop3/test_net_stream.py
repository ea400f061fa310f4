"""`net.stream.Stream` over real loopback sockets: what the POP3 (and SMTP) driver relies on.

Reads wait on one future per wait and deadlines share one lazy timer per connection, so
these tests pin the behaviour that must not change: bytes first, then end of stream,
interrupt, deadline; a deadline is never missed nor hit early, whatever the earlier waits
armed; replies written together arrive whole and in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pillarbox.net.stream import JOIN_LIMIT, Interrupted, Stream, StreamProtocol

Scenario = Callable[[Stream, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        accepted: asyncio.Queue[StreamProtocol] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: StreamProtocol(on_connect=accepted.put_nowait), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        stream = Stream(await asyncio.wait_for(accepted.get(), 5))
        try:
            await asyncio.wait_for(scenario(stream, reader, writer), 10)
        finally:
            stream.close()
            writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


async def _receive(stream: Stream, want: int, deadline: float | None = None) -> bytes:
    data = b""
    while len(data) < want:
        data += await stream.receive_some(deadline)
    return data


def test_bytes_then_end_of_stream() -> None:
    async def scenario(stream: Stream, _: asyncio.StreamReader, peer: asyncio.StreamWriter) -> None:
        peer.write(b"RETR 1\r\nDELE 1\r\n")
        assert await _receive(stream, 16) == b"RETR 1\r\nDELE 1\r\n"
        peer.write_eof()
        assert await stream.receive_some() == b""
        assert await stream.receive_some() == b""  # and it stays ended

    run(scenario)


def test_deadline_raises_timeout_not_before() -> None:
    async def scenario(stream: Stream, *_: object) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.1
        with pytest.raises(TimeoutError):
            await stream.receive_some(deadline)
        assert loop.time() >= deadline

    run(scenario)


def test_a_later_deadline_is_not_cut_short_by_an_earlier_wait() -> None:
    """The first wait arms the shared timer for its deadline, then ends with bytes; the
    timer must then carry on to the second wait's later deadline, not time it out."""

    async def scenario(stream: Stream, _: asyncio.StreamReader, peer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(stream.receive_some(loop.time() + 0.05))
        await asyncio.sleep(0.01)
        peer.write(b"NOOP\r\n")
        assert await first == b"NOOP\r\n"
        late = loop.time() + 0.25
        with pytest.raises(TimeoutError):
            await stream.receive_some(late)
        assert loop.time() >= late

    run(scenario)


def test_an_earlier_deadline_is_kept_after_a_later_wait() -> None:
    """The timer armed for a long deadline must not delay a shorter one that follows."""

    async def scenario(stream: Stream, _: asyncio.StreamReader, peer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(stream.receive_some(loop.time() + 60))
        await asyncio.sleep(0.01)
        peer.write(b"NOOP\r\n")
        assert await first == b"NOOP\r\n"
        started = loop.time()
        with pytest.raises(TimeoutError):
            await stream.receive_some(started + 0.05)
        assert loop.time() - started < 5

    run(scenario)


def test_interrupt_wakes_a_wait_but_bytes_come_first() -> None:
    async def scenario(stream: Stream, _: asyncio.StreamReader, peer: asyncio.StreamWriter) -> None:
        waiting = asyncio.ensure_future(stream.receive_some())
        await asyncio.sleep(0.01)
        stream.interrupt()
        with pytest.raises(Interrupted):
            await waiting
        peer.write(b"QUIT\r\n")
        await asyncio.sleep(0.05)
        stream.interrupt()
        assert await stream.receive_some() == b"QUIT\r\n"
        with pytest.raises(Interrupted):  # the interrupt is still pending
            await stream.receive_some()

    run(scenario)


def test_a_cancelled_wait_leaves_the_stream_usable() -> None:
    async def scenario(stream: Stream, _: asyncio.StreamReader, peer: asyncio.StreamWriter) -> None:
        waiting = asyncio.ensure_future(stream.receive_some())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        peer.write(b"STAT\r\n")
        assert await _receive(stream, 6) == b"STAT\r\n"

    run(scenario)


def test_two_waits_at_once_are_refused() -> None:
    async def scenario(stream: Stream, *_: object) -> None:
        waiting = asyncio.ensure_future(stream.receive_some())
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError):
            await stream.receive_some()
        stream.interrupt()
        with pytest.raises(Interrupted):
            await waiting

    run(scenario)


@pytest.mark.parametrize("sizes", [(20, 30), (3, JOIN_LIMIT, 5), (JOIN_LIMIT * 2, 7)])
def test_written_chunks_arrive_whole_and_in_order(sizes: tuple[int, ...]) -> None:
    async def scenario(stream: Stream, peer: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        chunks = [bytes([65 + n]) * size for n, size in enumerate(sizes)]
        if stream.write(list(chunks)):
            await stream.drain()
        assert await peer.readexactly(sum(sizes)) == b"".join(chunks)

    run(scenario)
