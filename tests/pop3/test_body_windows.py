"""Bodies read ahead of RETR in windows: one store call per window, in message order."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import cast

import pytest

from pillarbox.pop3 import bodies
from pillarbox.pop3.bodies import BodyWindows
from pillarbox.pop3.message import dot_stuff
from pillarbox.store import api

WHEN = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class CountingStore:
    """`get_messages` over a dict of bodies, recording every call."""

    def __init__(self, bodies: dict[api.MessageId, bytes]) -> None:
        self.bodies = bodies
        self.calls: list[list[int]] = []
        self.fail = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def get_messages(
        self, message_ids: Sequence[api.MessageId]
    ) -> dict[api.MessageId, tuple[bytes, bytes | None]]:
        self.calls.append([int(m) for m in message_ids])
        await self.gate.wait()
        if self.fail:
            raise api.StoreUnavailable("disk on fire")
        return {m: (self.bodies[m], None) for m in message_ids if m in self.bodies}


def entries(sizes: Sequence[int]) -> tuple[api.MailboxEntry, ...]:
    return tuple(
        api.MailboxEntry(
            api.MailboxId(1),
            api.Uid(n),
            api.MessageId(100 + n),
            api.ModSeq(1),
            frozenset(),
            WHEN,
            size,
        )
        for n, size in enumerate(sizes, 1)
    )


def body(number: int) -> bytes:
    return b"Subject: %d\r\n\r\nbody\r\n" % number


async def settle() -> None:
    """Let the reads that were started run to their first await."""
    for _ in range(3):
        await asyncio.sleep(0)


def windows(count: int, sizes: Sequence[int] | None = None) -> tuple[BodyWindows, CountingStore]:
    store = CountingStore({api.MessageId(100 + n): body(n) for n in range(1, count + 1)})
    listed = entries(sizes or [10] * count)
    return BodyWindows(cast(api.Store, store), listed), store


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "PREFETCH_MESSAGES", 3)
    monkeypatch.setattr(bodies, "PREFETCH_OCTETS", 100)
    monkeypatch.setattr(bodies, "STUFF_AHEAD_OCTETS", 10)


@pytest.mark.usefixtures("small_windows")
def test_retr_in_order_reads_one_window_ahead() -> None:
    async def scenario() -> None:
        reader, store = windows(8)
        assert await reader.body(1) == body(1)
        await settle()
        assert store.calls == [[101, 102, 103], [104, 105, 106]]
        assert [await reader.body(n) for n in (2, 3)] == [body(2), body(3)]
        assert len(store.calls) == 2
        assert await reader.body(4) == body(4)  # the last window reached: read the next
        await settle()
        assert store.calls[2:] == [[107, 108]]
        assert [await reader.body(n) for n in range(5, 9)] == [body(n) for n in range(5, 9)]
        await settle()
        assert len(store.calls) == 3
        await reader.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("small_windows")
def test_windows_are_bounded_in_octets_but_hold_at_least_one_message() -> None:
    async def scenario() -> None:
        reader, store = windows(4, sizes=[60, 60, 500, 10])
        assert await reader.body(1) == body(1)
        await settle()
        assert store.calls == [[101], [102]]
        assert await reader.body(2) == body(2)
        await settle()
        assert store.calls[2:] == [[103]]
        assert await reader.body(3) == body(3)
        await settle()
        assert store.calls[3:] == [[104]]
        await reader.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("small_windows")
def test_a_number_outside_the_windows_starts_over_there() -> None:
    async def scenario() -> None:
        reader, store = windows(9)
        await reader.body(1)
        assert await reader.body(8) == body(8)
        await settle()
        assert store.calls[2:] == [[108, 109]]
        assert await reader.body(2) == body(2)  # passed windows were dropped: read again
        await settle()
        assert store.calls[3:] == [[102, 103, 104], [105, 106, 107]]
        await reader.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("small_windows")
def test_a_removed_body_is_not_found_and_a_failed_read_is_retried() -> None:
    async def scenario() -> None:
        reader, store = windows(3)
        del store.bodies[api.MessageId(102)]
        store.fail = True
        with pytest.raises(api.StoreUnavailable):
            await reader.body(1)
        store.fail = False
        assert await reader.body(1) == body(1)
        with pytest.raises(api.NotFound):
            await reader.body(2)
        assert await reader.body(3) == body(3)
        await reader.close()

    asyncio.run(scenario())


def test_close_cancels_reads_in_flight() -> None:
    async def scenario() -> None:
        reader, store = windows(3)
        store.gate.clear()  # the read never finishes by itself
        task = asyncio.ensure_future(reader.body(1))
        await settle()
        assert store.calls == [[101, 102, 103]]
        await reader.close()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def counting_dot_stuff(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every body `bodies` byte-stuffs (still stuffing it for real)."""
    stuffed: list[bytes] = []
    real = bodies.dot_stuff

    def stuff(body: bytes, prefix: bytes = b"") -> bytes:
        stuffed.append(body)
        return real(body, prefix)

    monkeypatch.setattr(bodies, "dot_stuff", stuff)
    return stuffed


@pytest.mark.usefixtures("small_windows")
def test_retr_in_order_finds_the_next_message_stuffed_while_the_client_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stuffed = counting_dot_stuff(monkeypatch)

    async def scenario() -> None:
        reader, _ = windows(5)
        for number in range(1, 6):
            assert await reader.response(number) == dot_stuff(body(number))
            await settle()  # the loop is free: the client is reading
        assert stuffed == [body(n) for n in range(1, 6)]  # each stuffed once, none twice
        await reader.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("small_windows")
def test_pipelined_out_of_order_and_removed_messages_get_the_right_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stuffed = counting_dot_stuff(monkeypatch)

    async def scenario() -> None:
        reader, store = windows(6)
        del store.bodies[api.MessageId(105)]  # expunged by IMAP after login
        # Pipelined: no chance to stuff ahead between them.
        assert [await reader.response(n) for n in (1, 2)] == [dot_stuff(body(n)) for n in (1, 2)]
        await settle()  # message 3 is stuffed ahead, but the client jumps to 4, then back
        assert await reader.response(4) == dot_stuff(body(4))
        await settle()  # message 5 is gone: nothing to stuff ahead
        assert await reader.response(2) == dot_stuff(body(2))
        assert await reader.response(3) == dot_stuff(body(3))
        with pytest.raises(api.NotFound):
            await reader.response(5)
        assert stuffed == [body(n) for n in (1, 2, 3, 4, 2, 3)]
        await reader.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("small_windows")
def test_the_next_message_is_stuffed_when_its_window_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stuffed = counting_dot_stuff(monkeypatch)

    async def scenario() -> None:
        reader, store = windows(9)
        await reader.body(1)
        await settle()  # windows 1-3 and 4-6 read
        assert await reader.body(4) == body(4)  # the read of 7-9 is started...
        store.gate.clear()  # ... and waits
        assert await reader.response(6) == dot_stuff(body(6))
        await settle()
        assert stuffed == [body(6)]  # 7 is not there yet
        store.gate.set()
        await settle()
        assert stuffed == [body(6), body(7)]
        assert await reader.response(7) == dot_stuff(body(7))
        assert stuffed == [body(6), body(7)]  # 7 was not stuffed twice
        await reader.close()

    asyncio.run(scenario())


def test_the_response_starts_with_the_status_line_for_the_message_size() -> None:
    async def scenario() -> None:
        store = CountingStore({api.MessageId(101): body(1), api.MessageId(102): body(2)})
        listed = entries([len(body(1)), 40_000])
        reader = BodyWindows(cast(api.Store, store), listed, lambda size: b"+OK %d\r\n" % size)
        assert await reader.response(1) == dot_stuff(body(1), b"+OK %d\r\n" % len(body(1)))
        await settle()  # 2 is made ahead: the same status line
        assert await reader.response(2) == dot_stuff(body(2), b"+OK 40000\r\n")
        await reader.close()

    asyncio.run(scenario())
