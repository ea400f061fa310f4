"""The IMAP service: what all IMAP connections share, and the handler for each listener.

Mirrors `SmtpService`: the app builds one `ImapService` and gives each listener
`service.handler(implicit_tls)`; a connection over the limits gets `service.refuse`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from pillarbox.auth.authenticator import Authenticator
from pillarbox.config import Config
from pillarbox.imap import responses as rsp
from pillarbox.imap.engine import ImapConfig, ImapEngine
from pillarbox.imap.session import ImapSession, SessionContext
from pillarbox.net.imap_driver import drive_imap
from pillarbox.net.listener import ConnectionLimits
from pillarbox.net.stream import Stream
from pillarbox.store import api

# RFC 3501 §7.1.5: a server may greet with BYE when it will not serve the connection.
TOO_MANY_CONNECTIONS: Final = rsp.UntaggedStatus(rsp.Status.BYE, "Too many connections")


def connection_limits(config: Config) -> ConnectionLimits:
    return ConnectionLimits(config.imap.max_connections_per_ip, config.imap.max_connections)


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class ImapService:
    """Everything IMAP sessions share; hands each accepted stream to a new session."""

    def __init__(
        self,
        config: Config,
        store: api.Store,
        authenticator: Authenticator,
        tls: ssl.SSLContext | None,
        shutdown: asyncio.Event,
    ) -> None:
        self.config = config
        self.store = store
        self.authenticator = authenticator
        self.tls = tls
        self.shutdown = shutdown
        # APPEND takes what SMTP would accept: one message limit for the whole server.
        self.max_message_size = config.smtp.max_message_size
        self.engine_config = ImapConfig(max_message_size=self.max_message_size)
        self.context = SessionContext(self)

    def session(self, stream: Stream) -> ImapSession:
        return ImapSession(self.context, stream.peer_ip, stream.tls, is_loopback(stream.peer_ip))

    def engine(self, implicit_tls: bool) -> ImapEngine:
        return ImapEngine(self.engine_config, tls_active=implicit_tls)

    def handler(self, implicit_tls: bool) -> Callable[[Stream], Awaitable[None]]:
        async def serve(stream: Stream) -> None:
            engine = self.engine(implicit_tls)
            await drive_imap(stream, engine, self.session(stream), self.shutdown, self.tls)

        return serve

    async def refuse(self, stream: Stream) -> None:
        try:
            await stream.send_all(TOO_MANY_CONNECTIONS.to_bytes())
        finally:
            stream.close()
