"""Group commit: one thread owns the write connection and batches every pending job.

Async callers submit a job (a function of a `Txn`) and await its future. The writer
thread takes all jobs waiting at that moment, runs each inside its own SAVEPOINT (a job
that fails rolls back alone and gets its exception), then COMMITs once: with WAL and
synchronous=FULL that is one fsync for the whole batch. Futures are resolved only after
the commit, in their event loop's thread, so "acknowledged means durable" holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from pillarbox.store.api import (
    AccountId,
    AlreadyExists,
    Change,
    StoreError,
    StoreUnavailable,
)

T = TypeVar("T")

# A bound on the work one commit carries, so that a flood of writers still sees
# acknowledgements at a steady pace rather than after one enormous transaction.
MAX_BATCH: Final = 512


@dataclass(slots=True)
class Txn:
    """What a write job sees: the connection and a list of changes to announce."""

    conn: sqlite3.Connection
    changes: list[tuple[AccountId, Change]] = field(default_factory=list)


@dataclass(slots=True)
class WriterStats:
    """Counters a test (or an operator) reads to see group commit at work."""

    commits: int = 0  # COMMITs (each one fsync)
    jobs: int = 0  # write jobs run
    failed_commits: int = 0


@dataclass(slots=True)
class _Job(Generic[T]):
    run: Callable[[Txn], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    result: T | None = None
    error: BaseException | None = None
    changes: list[tuple[AccountId, Change]] = field(default_factory=list)


def translate(exc: sqlite3.Error) -> StoreError:
    """Map a sqlite3 error to the store's exceptions (no raw sqlite error escapes)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return AlreadyExists(str(exc))
    return StoreUnavailable(f"{type(exc).__name__}: {exc}")


Publisher = Callable[[list[tuple[AccountId, Change]]], None]


class Writer:
    """The single writer thread with its connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        publish: Publisher,
        stats: WriterStats | None = None,
        *,
        lock_path: Path | None = None,
    ) -> None:
        """`lock_path`: a file to flock while writing, shared by every process's writer."""
        self._conn = conn
        self._lock_path = lock_path
        self._publish = publish
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        # A daemon: a program that exits without close() must not hang on it; jobs it
        # had not committed were never acknowledged, so nothing acknowledged is lost.
        self._thread = threading.Thread(
            target=self._main, name="pillarbox-store-writer", daemon=True
        )
        self._closed = False
        self.stats = WriterStats() if stats is None else stats

    def start(self) -> None:
        self._thread.start()

    def submit(self, run: Callable[[Txn], T]) -> asyncio.Future[T]:
        """Queue a job; the future resolves after the commit that contains it."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(run, loop, loop.create_future())
        self._jobs.put(job)
        return job.future

    async def stop(self) -> None:
        """Finish every pending job, then end the thread (the caller closes the conn)."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        if self._lock_path is None:
            self._loop()
            return
        with self._lock_path.open("a+b") as lock:
            self._loop(lock.fileno())

    def _loop(self, lock: int | None = None) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            if lock is not None:
                # Another process's writer would make BEGIN IMMEDIATE wait in SQLite's
                # busy handler, which sleeps in steps of milliseconds; the flock wakes
                # us the moment the other commit ends. Jobs that came meanwhile join
                # this batch, since it is taken only now.
                fcntl.flock(lock, fcntl.LOCK_EX)
            batch: list[_Job[Any]] = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            try:
                self._run_batch(batch)
            except Exception as exc:  # a bug here must not leave callers waiting forever
                self._rollback()
                self._fail_all(batch, StoreUnavailable(f"store writer failed: {exc!r}"))
            finally:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        conn = self._conn
        if not self._begin(batch):
            return
        if not self._run_unguarded(batch):
            # A job failed: undo the batch and run it again with each job in a SAVEPOINT,
            # so that the failed one rolls back alone (jobs are functions of the store).
            self._rollback()
            if not self._begin(batch):
                return
            for job in batch:
                self._run_job(job)
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.stats.failed_commits += 1
            self._rollback()
            self._fail_all(batch, translate(exc))
            return
        self.stats.commits += 1
        self.stats.jobs += len(batch)
        self._resolve(batch)

    def _begin(self, batch: list[_Job[Any]]) -> bool:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(batch, translate(exc))
            return False
        return True

    def _run_unguarded(self, batch: list[_Job[Any]]) -> bool:
        """Run every job with no SAVEPOINT (two statements fewer each); False if one failed.

        Every statement costs the writer a round trip through the GIL while the event loop
        is busy, so the common case, where nothing fails, is kept to the jobs' own SQL.
        """
        for job in batch:
            txn = Txn(self._conn)
            try:
                job.result = job.run(txn)
            except Exception:
                for undone in batch:
                    undone.result = None
                    undone.changes = []
                return False
            job.changes = txn.changes
        return True

    def _run_job(self, job: _Job[Any]) -> None:
        conn = self._conn
        txn = Txn(conn)
        try:
            conn.execute("SAVEPOINT job")
            try:
                job.result = job.run(txn)
            except BaseException:
                conn.execute("ROLLBACK TO job")
                raise
            finally:
                conn.execute("RELEASE job")
        except sqlite3.Error as exc:
            job.error = translate(exc)
        except Exception as exc:  # the job's own StoreError (or a bug): the caller gets it
            job.error = exc
        else:
            job.changes = txn.changes

    def _rollback(self) -> None:
        # If SQLite already rolled back (some I/O errors do), there is nothing left to do.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def _fail_all(self, batch: list[_Job[Any]], error: StoreError) -> None:
        for job in batch:
            job.error = error
            job.changes = []
        self._resolve(batch)

    def _resolve(self, batch: list[_Job[Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._settle, jobs)

    def _settle(self, jobs: list[_Job[Any]]) -> None:
        """In the loop's thread: announce the committed changes, then wake the callers."""
        changes = [change for job in jobs for change in job.changes]
        if changes:
            self._publish(changes)
        for job in jobs:
            if job.future.cancelled():
                continue
            if job.error is not None:
                job.future.set_exception(job.error)
            else:
                job.future.set_result(job.result)
