"""The IMAP connection loop: like `drive`, but the server may also speak unasked.

`net.driver.drive` is request/response. IMAP IDLE (RFC 2177) needs the server to push
untagged EXISTS/EXPUNGE/FETCH while it waits for the client's DONE, so this loop races the
next bytes from the client against the account's change feed (while the session idles)
and the shutdown event. Everything written still goes through the engine's `send`, and
this loop stays the only writer of the stream.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections.abc import Coroutine
from typing import Any, TypeVar

from pillarbox.imap import responses as rsp
from pillarbox.imap.engine import NEED_DATA, ImapEngine
from pillarbox.imap.session import ImapSession
from pillarbox.net.stream import Interrupted, Stream, StreamClosed
from pillarbox.store.api import Change

AUTOLOGOUT = rsp.UntaggedStatus(rsp.Status.BYE, "Autologout; idle for too long")  # §5.4
SHUTTING_DOWN = rsp.UntaggedStatus(rsp.Status.BYE, "Server shutting down")
T = TypeVar("T")


class Wake(enum.Enum):
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"


async def drive_imap(
    stream: Stream,
    engine: ImapEngine,
    session: ImapSession,
    shutdown: asyncio.Event,
    tls_context: ssl.SSLContext | None,
) -> None:
    """Run one IMAP connection to its end; never raises for anything the peer does."""
    pending: list[bytes] = [engine.send(r) for r in session.greeting()]
    loop = asyncio.get_running_loop()
    # RFC 3501 §5.4 / RFC 2177 §3: the autologout timer runs from the client's last bytes;
    # what the server pushes during IDLE does not re-arm it (the client re-issues IDLE).
    deadline = loop.time() + session.timeout
    inputs = Inputs(stream, session, shutdown)
    try:
        while not engine.closed:
            event = engine.next_event()
            if event is not NEED_DATA:
                _queue(engine, await session.handle(event), pending)
                continue
            await _flush(stream, pending)
            if engine.closed:
                break
            if engine.tls_pending and tls_context is not None:
                await stream.start_tls(tls_context)
                engine.tls_established()
                session.tls_started()
                continue
            woken = await inputs.next(deadline - loop.time())
            if isinstance(woken, bytes):
                deadline = loop.time() + session.timeout
                engine.receive_data(woken)
            elif isinstance(woken, Change):
                session.note_change(woken)
                _queue(engine, await session.idle_updates(), pending)
            else:
                _queue(engine, [SHUTTING_DOWN if woken is Wake.SHUTDOWN else AUTOLOGOUT], pending)
                break
        await _flush(stream, pending)
    except (StreamClosed, ConnectionError, ssl.SSLError, TimeoutError):
        pass  # the peer went away or the TLS handshake failed: nothing to tell it
    finally:
        inputs.close()
        stream.close()
        await session.close()


def _queue(engine: ImapEngine, responses: list[rsp.Response], pending: list[bytes]) -> None:
    for response in responses:
        if engine.closed:
            return  # after BYE nothing more goes out
        pending.append(engine.send(response))


async def _flush(stream: Stream, pending: list[bytes]) -> None:
    if pending:
        data = b"".join(pending)
        pending.clear()
        await stream.send_all(data)


class Inputs:
    """What one connection waits for: client bytes, feed news (while idling), shutdown.

    The waits outlive a wake-up: when news arrives during IDLE, the pending read of the
    client's next bytes stays as it is instead of being cancelled and made again, so a
    push to 10,000 idling sessions costs one task per session, not three. Each wait wakes
    the connection through one callback set when the wait is made (no `asyncio.wait`,
    which adds and removes callbacks on every wait at every wake-up).
    """

    def __init__(self, stream: Stream, session: ImapSession, shutdown: asyncio.Event) -> None:
        self._stream = stream
        self._session = session
        self._shutdown = shutdown
        self._receive: asyncio.Future[bytes] | None = None
        self._news: asyncio.Future[Change] | None = None
        self._stop: asyncio.Future[Any] | None = None
        self._wake: asyncio.Future[None] | None = None

    async def next(self, patience: float) -> bytes | Change | Wake:
        """The next bytes, a change to push while idling, or why the connection must end."""
        if self._shutdown.is_set():
            return Wake.SHUTDOWN
        if patience <= 0:
            return Wake.TIMEOUT
        if self._stop is None:
            self._stop = self._watch(self._shutdown.wait())
            self._stop.add_done_callback(lambda _: self._stream.interrupt())
        self._follow_feed()
        if self._receive is None and self._news is None:
            return await self._read(patience)
        if self._receive is None:
            self._receive = self._watch(self._stream.receive_some())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        # A wake-up may be stale (the callback of a wait cancelled a moment ago): look again.
        while not self._any_done() and loop.time() < deadline:
            self._wake = wake = loop.create_future()
            timer = loop.call_at(deadline, self._poke)
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None
        return self._take()

    async def _read(self, patience: float) -> bytes | Wake:
        """Not idling: wait for bytes alone, with no helper task (most waits are these).
        A shutdown still wakes the read: the shutdown wait interrupts the stream."""
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            try:
                return await self._stream.receive_some(deadline)
            except Interrupted:
                if self._shutdown.is_set():
                    return Wake.SHUTDOWN
            except TimeoutError:
                return Wake.TIMEOUT

    def _take(self) -> bytes | Change | Wake:
        receive = self._receive
        assert receive is not None and self._stop is not None
        if self._news is not None and self._news.done():
            news, self._news = self._news, None
            if not receive.done():
                return news.result()
            self._session.note_change(news.result())  # not lost: the next look sees it
        if receive.done():
            self._receive = None
            if isinstance(receive.exception(), Interrupted):
                return Wake.SHUTDOWN  # Listener.close woke the read: the server stops
            return receive.result()
        return Wake.SHUTDOWN if self._stop.done() else Wake.TIMEOUT

    def _any_done(self) -> bool:
        return any(w is not None and w.done() for w in (self._receive, self._news, self._stop))

    def _watch(self, waiting: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        future = asyncio.ensure_future(waiting)
        future.add_done_callback(self._poke)
        return future

    def _poke(self, _: object = None) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _follow_feed(self) -> None:
        """Wait on the feed only while idling; a change taken meanwhile is handed over."""
        feed = self._session.feed if self._session.idling is not None else None
        if feed is not None and self._news is None:
            self._news = self._watch(feed.get())
        elif feed is None and self._news is not None:
            news, self._news = self._news, None
            if news.done() and not news.cancelled():
                self._session.note_change(news.result())
            else:
                news.cancel()

    def close(self) -> None:
        for waiter in (self._receive, self._news, self._stop):
            if waiter is not None and not waiter.done():
                waiter.cancel()
