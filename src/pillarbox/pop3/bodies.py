"""Message bodies for POP3 RETR/TOP, read from the store ahead of the client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox.pop3.message import dot_stuff
from pillarbox.store import api

# Clients RETR in number order, so bodies are read in windows: one store call (one hop to
# a reader thread) per window, and the next window is read while this one is sent. A
# window is bounded in messages and octets; a session holds at most two (memory). A hop
# costs far more CPU than reading one small body: windows of 64 2 KB messages cost about
# a fifth more CPU per RETR than windows of 256 (measured).
PREFETCH_MESSAGES: Final = 256
PREFETCH_OCTETS: Final = 1024 * 1024
# Messages at least this large are byte-stuffed ahead of their RETR (see `response`);
# stuffing a smaller one costs less than the event-loop callback that would run it.
STUFF_AHEAD_OCTETS: Final = 16 * 1024


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

    `response(n)` also makes the response for message n + 1, if large, as soon as the
    event loop is free (while the client reads message n), so RETR in order finds it
    ready: on a large message stuffing is most of the CPU a RETR costs. At most one such
    response is held.
    """

    def __init__(
        self,
        store: api.Store,
        entries: Sequence[api.MailboxEntry],
        status: Callable[[int], bytes] = lambda size: b"",
    ) -> None:
        """`status(size)`: the status line `response` puts in front of a message."""
        self._store = store
        self._entries = entries
        self._status = status
        self._windows: list[_Window] = []
        self._reading: set[asyncio.Future[Found]] = set()
        self._next = 0  # the message number `_prepare` may stuff ahead (0: none)
        self._prepared: tuple[int, bytes] | None = None
        self._preparing: asyncio.Handle | None = None

    async def response(self, number: int) -> bytes:
        """The status line and message `number` as the lines of a multi-line response,
        byte-stuffed and terminated (`message.dot_stuff`); NotFound if the store no
        longer holds it."""
        body = await self.body(number)
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] == number:
            wire = prepared[1]
        else:
            wire = self._stuff(number, body)
        self._next = number + 1
        if (
            self._preparing is None
            and number < len(self._entries)
            and self._entries[number].size >= STUFF_AHEAD_OCTETS
        ):
            self._preparing = asyncio.get_running_loop().call_soon(self._prepare)
        return wire

    def _prepare(self) -> None:
        """Make the response for message `_next` unless a RETR took it meanwhile; if
        its window is still being read, try again when the read is done."""
        self._preparing = None
        number, self._next = self._next, 0
        window = self._find(number)
        if number == 0 or window is None:
            return
        if not window.read.done():
            self._next = number
            window.read.add_done_callback(self._read_done)
            return
        if window.read.cancelled() or window.read.exception() is not None:
            return
        body = window.read.result().get(self._entries[number - 1].message_id)
        if body is not None:
            self._prepared = (number, self._stuff(number, body[0]))

    def _stuff(self, number: int, body: bytes) -> bytes:
        return dot_stuff(body, self._status(self._entries[number - 1].size))

    def _read_done(self, read: asyncio.Future[Found]) -> None:
        if self._next and self._preparing is None:
            self._prepare()

    async def body(self, number: int) -> bytes:
        """The body of message `number`; NotFound if the store no longer holds it."""
        read = self._lookup(number).read
        try:
            found = await read
        except api.StoreError:
            self._windows.clear()  # read again at the next command
            raise
        body = found.get(self._entries[number - 1].message_id)
        if body is None:
            raise api.NotFound(f"message {number} was removed")
        return body[0]

    def _lookup(self, number: int) -> _Window:
        """The window holding `number` (opened if none does), reading the next one ahead
        when this is the last, and dropping the windows the client has passed."""
        window = self._find(number)
        if window is None:
            self._windows.clear()
            window = self._open(number)
        if self._windows[0].stop <= number:  # the client has passed it
            self._windows = [w for w in self._windows if w.stop > number]
        if window is self._windows[-1] and window.stop <= len(self._entries):
            self._open(window.stop)
        return window

    def _find(self, number: int) -> _Window | None:
        for window in self._windows:
            if window.start <= number < window.stop:
                return window
        return None

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
        if self._preparing is not None:
            self._preparing.cancel()
            self._preparing = None
        self._prepared = None
        self._next = 0
        self._windows.clear()
        reading = list(self._reading)
        for read in reading:
            read.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
