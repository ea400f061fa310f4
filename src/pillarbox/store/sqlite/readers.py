"""Reader threads: each owns a read-only connection and answers queries put on one queue.

A read is the cheapest hand-off between the event loop and a thread that we know: one
`SimpleQueue.put` to wake a reader and one `call_soon_threadsafe` to settle the caller's
future (uvloop folds the wake-ups of several settled reads into one). A
`ThreadPoolExecutor` adds a `concurrent.futures.Future` with its lock and condition,
chained to an asyncio future by callbacks. An IMAP session makes a read for most commands,
so the hand-off is a visible part of a command's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from pillarbox.store.api import StoreUnavailable

T = TypeVar("T")
Query = Callable[[sqlite3.Connection], Any]
# (loop, future, query); None tells a reader to stop.
_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Query] | None

THREAD_NAME: Final = "pillarbox-store-reader"


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """In the loop's thread: hand the result over unless the caller gave up."""
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class ReaderPool:
    """`threads` reader threads, each with a connection from `connect`."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        threads: int,
        translate: Callable[[sqlite3.Error], Exception],
    ) -> None:
        self._connect = connect
        self._translate = translate
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{THREAD_NAME}-{n}", daemon=True)
            for n in range(threads)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def read(self, query: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run `query` on a reader's connection; the future has its result."""
        if self._closed:
            raise StoreUnavailable("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, query))
        return future

    def close(self) -> None:
        """Stop the readers once the queued reads are done (blocks: run it off the loop)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, query = job
                try:
                    if conn is None:
                        conn = self._connect()
                    ok, value = True, query(conn)
                except sqlite3.Error as exc:
                    error = self._translate(exc)
                    error.__cause__ = exc
                    ok, value = False, error
                except Exception as exc:  # the caller's to handle, as any error of a read
                    ok, value = False, exc
                # A closed loop raises RuntimeError: nobody is waiting there any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, future, ok, value)
        finally:
            if conn is not None:
                conn.close()
