"""Message bodies for POP3 RETR/TOP, read from the store ahead of the client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox.store import api

# Clients RETR in number order, so bodies are read in windows: one store call (one hop to
# a reader thread) per window, and the next window is read while this one is sent. A
# window is bounded in messages and octets; a session holds at most two (memory).
PREFETCH_MESSAGES: Final = 64
PREFETCH_OCTETS: Final = 1024 * 1024


Found = dict[api.MessageId, tuple[bytes, bytes | None]]


@dataclass(frozen=True, slots=True)
class _Window:
    """One store read: the bodies of message numbers start..stop-1."""

    start: int
    stop: int
    read: asyncio.Future[Found]


class BodyWindows:
    """Message bodies read ahead of the client, a window of messages per store call.

    RETR n finds its body in the window holding n; reaching the last window starts the
    read of the next one, so the store's thread hop overlaps the sending. Windows the
    client has passed are dropped; a number outside every window starts over there.
    """

    def __init__(self, store: api.Store, entries: Sequence[api.MailboxEntry]) -> None:
        self._store = store
        self._entries = entries
        self._windows: list[_Window] = []
        self._reading: set[asyncio.Future[Found]] = set()

    async def body(self, number: int) -> bytes:
        """The body of message `number`; NotFound if the store no longer holds it."""
        window = next((w for w in self._windows if w.start <= number < w.stop), None)
        if window is None:
            self._windows.clear()
            window = self._open(number)
        self._windows = [w for w in self._windows if w.stop > number]
        if window is self._windows[-1] and window.stop <= len(self._entries):
            self._open(window.stop)
        try:
            found = await window.read
        except api.StoreError:
            self._windows.clear()  # read again at the next command
            raise
        body = found.get(self._entries[number - 1].message_id)
        if body is None:
            raise api.NotFound(f"message {number} was removed")
        return body[0]

    def _open(self, start: int) -> _Window:
        stop, octets = start, 0
        while stop <= len(self._entries) and stop - start < PREFETCH_MESSAGES:
            octets += self._entries[stop - 1].size
            if octets > PREFETCH_OCTETS and stop > start:
                break
            stop += 1
        ids = [entry.message_id for entry in self._entries[start - 1 : stop - 1]]
        read = asyncio.ensure_future(self._store.get_messages(ids))
        self._reading.add(read)
        read.add_done_callback(self._finished)
        window = _Window(start, stop, read)
        self._windows.append(window)
        return window

    def _finished(self, read: asyncio.Future[Found]) -> None:
        self._reading.discard(read)
        if not read.cancelled():
            read.exception()  # a dropped window's failure is nobody's to report

    async def close(self) -> None:
        """Cancel the reads still running (the connection is gone)."""
        self._windows.clear()
        reading = list(self._reading)
        for read in reading:
            read.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
