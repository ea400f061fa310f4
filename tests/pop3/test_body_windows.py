"""Bodies read ahead of RETR in windows: one store call per window, in message order."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import cast

import pytest

from pillarbox.pop3 import bodies
from pillarbox.pop3.bodies import BodyWindows
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
