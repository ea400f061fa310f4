"""The IMAP connection loop: like `drive`, but the server may also speak unasked.

`net.driver.drive` is request/response. IMAP IDLE (RFC 2177) needs the server to push
untagged EXISTS/EXPUNGE/FETCH while it waits for the client's DONE, so this loop races the
next bytes from the client against IDLE news (the `IdleHub` interrupts the read) and the
shutdown event. Everything written still goes through the engine's `send`, and
this loop stays the only writer of the stream.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from typing import Any

from pillarbox.imap import responses as rsp
from pillarbox.imap.engine import NEED_DATA, ImapEngine
from pillarbox.imap.session import ImapSession
from pillarbox.net.stream import Interrupted, Stream, StreamClosed

AUTOLOGOUT = rsp.UntaggedStatus(rsp.Status.BYE, "Autologout; idle for too long")  # §5.4
SHUTTING_DOWN = rsp.UntaggedStatus(rsp.Status.BYE, "Server shutting down")


class Wake(enum.Enum):
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    NEWS = "news"  # the selected mailbox changed while the session idles


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
    inputs = Inputs(stream, engine, session, shutdown)
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
            elif woken is Wake.NEWS:
                _queue(engine, await session.idle_updates(), pending)
                await _flush(stream, pending)
                await stream.drain()  # a push may have filled the peer's buffer
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
    """What one connection waits for: client bytes, IDLE news, shutdown.

    Every wait is a plain `receive_some` with the autologout deadline, with no helper task
    per wait. While the session idles, the connection joins the context's `IdleHub`, which
    follows the account's changes for all idlers at once and, when this connection's
    mailbox has news, calls `_push`: the news is written there and then, and the read goes
    on waiting (a push to 10,000 idlers allocates no new waits, tasks or timers). News that
    needs the store, or a peer that reads too slowly, interrupts the read instead (as the
    shutdown wait does) and the driver answers it.
    """

    def __init__(
        self, stream: Stream, engine: ImapEngine, session: ImapSession, shutdown: asyncio.Event
    ) -> None:
        self._stream = stream
        self._engine = engine
        self._session = session
        self._shutdown = shutdown
        self._hub = session.context.idle_hub
        self._stop: asyncio.Future[Any] | None = None
        self._news = False

    async def next(self, patience: float) -> bytes | Wake:
        """The next bytes, news to push while idling, or why the connection must end."""
        if self._shutdown.is_set():
            return Wake.SHUTDOWN
        if patience <= 0:
            return Wake.TIMEOUT
        if self._stop is None:
            self._stop = asyncio.ensure_future(self._shutdown.wait())
            self._stop.add_done_callback(lambda _: self._stream.interrupt())
        session = self._session
        view = session.view
        if session.idling is None or view is None:
            return await self._read(patience, idling=False)
        if session.has_news():  # heard on its own feed before joining: push it now
            return Wake.NEWS
        account_id = session.account.id
        self._news = False
        self._hub.join(self, account_id, view, self._push)
        try:
            return await self._read(patience, idling=True)
        finally:
            self._hub.leave(self, account_id)

    async def _read(self, patience: float, idling: bool) -> bytes | Wake:
        """Wait for bytes; a shutdown or IDLE news interrupts the read. (A wake-up left
        from an IDLE that bytes ended first is stale: the next command sees the news.)"""
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            try:
                return await self._stream.receive_some(deadline)
            except Interrupted:
                if self._shutdown.is_set():
                    return Wake.SHUTDOWN
                if idling and self._news:
                    return Wake.NEWS
            except TimeoutError:
                return Wake.TIMEOUT

    def _push(self) -> None:
        """IDLE news while the driver waits for the client (so nothing of its is unsent)."""
        if self._news:
            return  # the driver is already woken for news: it answers all of it
        responses = self._session.idle_updates_now()
        if responses is None:
            self._wake()
            return
        engine = self._engine
        chunks = [engine.send(r) for r in responses if not engine.closed]
        if not chunks:
            return
        try:
            congested = self._stream.write(chunks)
        except StreamClosed:
            congested = True  # the driver's read sees the end of the stream
        if congested:
            self._wake()

    def _wake(self) -> None:
        if not self._news:
            self._news = True
            self._stream.interrupt()

    def close(self) -> None:
        if self._stop is not None and not self._stop.done():
            self._stop.cancel()
