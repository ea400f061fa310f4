"""POP3 session states as data (RFC 1939 §3): AUTHORIZATION (with its USER-given and
SASL sub-states), TRANSACTION, UPDATE, and the engine's own TLS-pending and closed states.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Authorization:
    """RFC 1939 §4: waiting for USER, APOP, AUTH, CAPA, STLS, UTF8 or QUIT."""


@dataclass(frozen=True, slots=True)
class UserGiven:
    """RFC 1939 §7: USER accepted; PASS is now allowed, for this name."""

    name: str


@dataclass(frozen=True, slots=True)
class SaslExchange:
    """RFC 5034 §4: a challenge was sent; the next line is a client response or "*"."""

    mechanism: str


@dataclass(frozen=True, slots=True)
class TlsPending:
    """RFC 2595 §4: "+OK" to STLS was sent; the driver runs the handshake next."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """RFC 1939 §5: logged in, the maildrop is locked."""


@dataclass(frozen=True, slots=True)
class Update:
    """RFC 1939 §6: QUIT received in TRANSACTION; the session applies the deletions."""


@dataclass(frozen=True, slots=True)
class Closed:
    """No more input is read and no more responses are written."""


State = Authorization | UserGiven | SaslExchange | TlsPending | Transaction | Update | Closed
