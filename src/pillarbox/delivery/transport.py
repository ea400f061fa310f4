"""The async driver of the SMTP client engine: one outbound connection, several messages.

`SmtpConnection.open` connects, reads the greeting, says EHLO, upgrades with STARTTLS when
offered and authenticates when configured; `send` runs one transaction; `close` says QUIT.
Everything the peer does wrong becomes a `ServerReply` (real or synthetic); nothing raises.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, replace
from typing import Final

from pillarbox import log
from pillarbox.net.smtp_client import CONNECT_TIMEOUT, ClientStream, connect
from pillarbox.net.stream import StreamClosed
from pillarbox.smtp.client import (
    TIMEOUT_DATA_BLOCK,
    ClientEngine,
    ClientEvent,
    ClientSettings,
    MessageDone,
    NeedData,
    Ready,
    SessionFailed,
    StartTls,
)
from pillarbox.smtp.client_wire import (
    TLS_FAILED,
    Capabilities,
    MessageOutcome,
    OutboundMessage,
    RecipientResult,
    ServerReply,
    synthetic,
)

# How long QUIT may take before we just close.
QUIT_TIMEOUT: Final = 10.0


def connect_failure(address: str, port: int, error: BaseException) -> ServerReply:
    """RFC 3463 X.4.1: no answer from host; X.4.2: bad connection."""
    if isinstance(error, TimeoutError):
        return synthetic(421, "4.4.1", f"Connection to [{address}]:{port} timed out")
    return synthetic(421, "4.4.1", f"Connection to [{address}]:{port} failed: {error}")


@dataclass(frozen=True, slots=True)
class Peer:
    """Where to connect: an IP address and port, and the host name it was found under."""

    address: str
    port: int
    host: str
    connect_timeout: float = CONNECT_TIMEOUT


class SmtpConnection:
    """One open session with a remote SMTP server, ready for transactions."""

    def __init__(self, stream: ClientStream, engine: ClientEngine, host: str) -> None:
        self.stream = stream
        self.engine = engine
        self.host = host  # the server's name, for DSN Remote-MTA and logs
        self.failure: ServerReply | None = None
        self.capabilities = Capabilities()
        self.messages = 0

    @property
    def usable(self) -> bool:
        return self.failure is None and not self.engine.closed

    @classmethod
    async def open(
        cls, peer: Peer, settings: ClientSettings, tls: ssl.SSLContext | None
    ) -> SmtpConnection | ServerReply:
        """A connection that reached `Ready`, or the reply that explains why not."""
        if tls is None:
            settings = replace(settings, starttls=False)
        opened = await cls._attempt(peer, settings, tls)
        if isinstance(opened, SmtpConnection) or opened != TLS_FAILED or settings.require_tls:
            return opened
        # A broken TLS stack at the peer: try once more in plaintext, like Postfix does.
        return await cls._attempt(peer, replace(settings, starttls=False), None)

    @classmethod
    async def _attempt(
        cls, peer: Peer, settings: ClientSettings, tls: ssl.SSLContext | None
    ) -> SmtpConnection | ServerReply:
        try:
            async with asyncio.timeout(peer.connect_timeout):
                stream = await connect(peer.address, peer.port)
        except (OSError, TimeoutError) as error:
            return connect_failure(peer.address, peer.port, error)
        connection = cls(stream, ClientEngine(settings), peer.host)
        event = await connection._pump(tls)
        if isinstance(event, Ready):
            connection.capabilities = event.capabilities
            log.event(
                "delivery.connect",
                host=peer.host,
                address=peer.address,
                port=peer.port,
                tls=event.tls,
            )
            return connection
        stream.close()
        return connection.failure or synthetic(421, "4.4.2", "Session ended unexpectedly")

    async def send(self, message: OutboundMessage) -> MessageOutcome:
        """One transaction. After a session failure every recipient gets the failure."""
        if not self.usable:
            reply = self.failure or synthetic(421, "4.4.2", "Connection closed")
            return _all(message, reply)
        self.engine.start_message(message)
        event = await self._pump(None)
        if isinstance(event, MessageDone):
            self.messages += 1
            if self.engine.closed and self.failure is None:
                self.failure = self._closing_reply()
            return event.outcome
        return _all(message, self.failure or synthetic(421, "4.4.2", "Connection closed"))

    def _closing_reply(self) -> ServerReply:
        """The engine ended the session with the transaction's report: why it ended."""
        while not isinstance(event := self.engine.next_event(), NeedData):
            if isinstance(event, SessionFailed):
                return event.reply
        return synthetic(421, "4.4.2", "Connection closed")

    async def close(self) -> None:
        """QUIT (RFC 5321 §4.1.1.10) when the session is still good, then close."""
        try:
            if self.usable:
                self.engine.quit()
                async with asyncio.timeout(QUIT_TIMEOUT):
                    await self._pump(None)
        except (TimeoutError, OSError, StreamClosed, ssl.SSLError):
            pass
        finally:
            self.stream.close()

    async def _pump(self, tls: ssl.SSLContext | None) -> ClientEvent:
        """Run the engine until it has something to report."""
        engine = self.engine
        try:
            while True:
                event = engine.next_event()
                await self._flush()
                if isinstance(event, StartTls):
                    await self._start_tls(tls)
                    continue
                if not isinstance(event, NeedData):
                    if isinstance(event, SessionFailed):
                        self.failure = event.reply
                    return event
                async with asyncio.timeout(engine.timeout):
                    engine.receive_data(await self.stream.receive_some())
        except TimeoutError:
            return self._broken(synthetic(421, "4.4.2", "Timeout waiting for the server"))
        except (OSError, StreamClosed, ssl.SSLError) as error:
            return self._broken(synthetic(421, "4.4.2", f"Connection broken: {error}"))

    def _broken(self, reply: ServerReply) -> ClientEvent:
        """Tell the engine (it reports the transaction in flight) and return that report."""
        self.failure = reply
        self.stream.abort()
        engine_events: list[ClientEvent] = []
        if not self.engine.closed:
            self.engine.abort(reply)
            while not isinstance(event := self.engine.next_event(), NeedData):
                engine_events.append(event)
        done = [e for e in engine_events if isinstance(e, MessageDone)]
        return done[0] if done else SessionFailed(reply)

    async def _flush(self) -> None:
        data = self.engine.data_to_send()
        if data:
            # RFC 5321 §4.5.3.2.5: each block of data must be taken within 3 minutes.
            async with asyncio.timeout(TIMEOUT_DATA_BLOCK):
                await self.stream.send_all(data)

    async def _start_tls(self, tls: ssl.SSLContext | None) -> None:
        if tls is None:
            self.engine.tls_failed()
            return
        try:
            await self.stream.start_tls(tls, server_hostname=None)
        except (OSError, ssl.SSLError, StreamClosed, TimeoutError):
            self.engine.tls_failed()
            return
        self.engine.tls_started()


def _all(message: OutboundMessage, reply: ServerReply) -> MessageOutcome:
    return MessageOutcome(tuple(RecipientResult(r.address, reply) for r in message.recipients))
