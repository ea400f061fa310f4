"""IMAP in the not-authenticated state (RFC 3501 §6.2): STARTTLS, LOGIN, AUTHENTICATE.

Handlers of `session.HANDLERS`, each taking the session first; the SASL mechanisms
themselves are the shared pure exchanges of `pillarbox.auth.sasl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pillarbox import log
from pillarbox.auth import sasl
from pillarbox.auth.authenticator import Outcome
from pillarbox.imap import commands as cmd
from pillarbox.imap import responses as rsp
from pillarbox.imap.states import Authenticated, LoggedOut
from pillarbox.store import api

if TYPE_CHECKING:
    from pillarbox.imap.session import ImapSession

# Failed logins a connection may use before BYE (password guessing).
MAX_AUTH_FAILURES: Final = 5


def ok(tag: str, text: str, code: rsp.Code | None = None) -> rsp.Tagged:
    return rsp.Tagged(tag, rsp.Status.OK, text, code)


def no(tag: str, text: str, code: rsp.Code | None = None) -> rsp.Tagged:
    return rsp.Tagged(tag, rsp.Status.NO, text, code)


async def on_starttls(session: ImapSession, tag: str, command: cmd.StartTls) -> list[rsp.Response]:
    if session.tls:
        return [no(tag, "TLS already active")]
    if not session.context.tls_available:
        return [no(tag, "TLS not available")]
    session.tls_requested = True
    return [ok(tag, "Begin TLS negotiation now")]


async def on_login(session: ImapSession, tag: str, command: cmd.Login) -> list[rsp.Response]:
    if not session.auth_allowed:
        return [no(tag, "Plaintext login refused: use TLS", rsp.PRIVACYREQUIRED)]
    return await check_password(session, tag, command.user, command.password)


async def check_password(
    session: ImapSession, tag: str, login: str, password: str
) -> list[rsp.Response]:
    result = await session.context.authenticator.authenticate(login, password, session.peer_ip)
    if result.outcome is Outcome.OK and result.account is not None:
        return logged_in(session, tag, result.account)
    if result.outcome is Outcome.REFUSED:
        return [no(tag, "Too many failed logins, try again later", rsp.UNAVAILABLE)]
    session.auth_failures += 1
    log.event("imap.auth_failed", id=session.session_id, peer=session.peer_ip)
    if session.auth_failures >= MAX_AUTH_FAILURES:
        session.state = LoggedOut()
        return [
            no(tag, "Authentication failed", rsp.AUTHENTICATIONFAILED),
            rsp.UntaggedStatus(rsp.Status.BYE, "Too many failed logins"),
        ]
    return [no(tag, "Authentication failed", rsp.AUTHENTICATIONFAILED)]


def logged_in(session: ImapSession, tag: str, account: api.Account) -> list[rsp.Response]:
    session.state = Authenticated(account)
    session.feed = session.store.subscribe(account.id)
    log.event("imap.login", id=session.session_id, account=account.address)
    code = rsp.capability_code(session.capabilities())
    return [ok(tag, "Logged in", code)]


async def on_authenticate(
    session: ImapSession, tag: str, command: cmd.Authenticate
) -> list[rsp.Response]:
    if not session.auth_allowed:
        return [no(tag, "Plaintext authentication refused: use TLS", rsp.PRIVACYREQUIRED)]
    try:
        session.sasl_exchange = sasl.start(command.mechanism, command.initial)
    except sasl.UnsupportedMechanismError:
        return [no(tag, "Unsupported authentication mechanism", rsp.CANNOT)]
    session.sasl_tag = tag
    return await sasl_step(session, None)


async def on_sasl_line(session: ImapSession, line: bytes) -> list[rsp.Response]:
    """One client line of an AUTHENTICATE exchange (RFC 3501 §6.2.2)."""
    tag = session.sasl_tag
    try:
        response = sasl.decode_b64_response(line)
    except sasl.InvalidBase64Error:
        session.sasl_exchange = None
        return [rsp.Tagged(tag, rsp.Status.BAD, "Invalid base64 response")]
    if response is None:
        session.sasl_exchange = None
        return [rsp.Tagged(tag, rsp.Status.BAD, "Authentication cancelled")]
    return await sasl_step(session, response)


async def sasl_step(session: ImapSession, response: bytes | None) -> list[rsp.Response]:
    assert session.sasl_exchange is not None
    tag = session.sasl_tag
    step = session.sasl_exchange.step(response)
    if isinstance(step, sasl.Challenge):
        return [rsp.Continuation(sasl.encode_challenge(step.data).decode("ascii"))]
    session.sasl_exchange = None
    if isinstance(step, sasl.SaslFailure):
        return [no(tag, "Authentication failed", rsp.AUTHENTICATIONFAILED)]
    if step.authzid and step.authzid != step.authcid:
        return [no(tag, "Cannot act as another user", rsp.AUTHORIZATIONFAILED)]
    return await check_password(session, tag, step.authcid, step.password)
