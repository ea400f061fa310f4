"""Outbound connections: a TCP stream to a remote SMTP server, with client-side STARTTLS."""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

from pillarbox.net.stream import TLS_HANDSHAKE_TIMEOUT, Stream, StreamClosed, StreamProtocol

# Not set by RFC 5321; 30 s is what Postfix (smtp_connect_timeout) uses.
CONNECT_TIMEOUT: Final = 30.0


class ClientStream(Stream):
    """A `Stream` whose TLS upgrade is the client side of the handshake."""

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None = None) -> None:
        self._protocol.discard()  # RFC 3207 §4.2: nothing from before TLS is kept
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self._transport,
            self._protocol,
            context,
            server_side=False,
            server_hostname=server_hostname,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
        )
        if transport is None:
            raise StreamClosed
        self._transport = transport  # (uvloop's class is not an asyncio.Transport subclass)
        self._protocol.transport = transport
        self.tls = True


async def connect(host: str, port: int) -> ClientStream:
    """Open a TCP connection to an IP address; raises OSError (callers add a timeout)."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(StreamProtocol, host, port)
    return ClientStream(protocol)


def opportunistic_context() -> ssl.SSLContext:
    """RFC 7435 opportunistic TLS for MX delivery: encrypt, but do not authenticate the peer.

    MX hosts rarely present a certificate for the name we looked up (RFC 7672 explains why);
    refusing them would send the mail in plaintext instead, which is worse.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
