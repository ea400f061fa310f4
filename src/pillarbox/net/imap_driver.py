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
from typing import Any

from pillarbox.imap import responses as rsp
from pillarbox.imap.engine import NEED_DATA, ImapEngine
from pillarbox.imap.session import ImapSession
from pillarbox.net.stream import Stream, StreamClosed
from pillarbox.store.api import Change

AUTOLOGOUT = rsp.UntaggedStatus(rsp.Status.BYE, "Autologout; idle for too long")  # §5.4
SHUTTING_DOWN = rsp.UntaggedStatus(rsp.Status.BYE, "Server shutting down")


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
            woken = await _wait(stream, session, shutdown, deadline - loop.time())
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


async def _wait(
    stream: Stream, session: ImapSession, shutdown: asyncio.Event, patience: float
) -> bytes | Change | Wake:
    """The next bytes, a change to push while idling, or why the connection must end."""
    if shutdown.is_set():
        return Wake.SHUTDOWN
    if patience <= 0:
        return Wake.TIMEOUT
    receive = asyncio.ensure_future(stream.receive_some())
    stop = asyncio.ensure_future(shutdown.wait())
    waiters: set[asyncio.Future[Any]] = {receive, stop}
    feed = session.feed if session.idling is not None else None
    news = asyncio.ensure_future(feed.get()) if feed is not None else None
    if news is not None:
        waiters.add(news)
    try:
        done, _ = await asyncio.wait(waiters, timeout=patience, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            if not waiter.done():
                waiter.cancel()
    if receive in done:
        if news is not None and news in done:
            session.note_change(news.result())  # not lost: the next look sees it
        return receive.result()
    if news is not None and news in done:
        change: Change = news.result()
        return change
    return Wake.SHUTDOWN if stop in done else Wake.TIMEOUT
