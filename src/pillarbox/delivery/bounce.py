"""Delivery status notifications (RFC 3461, RFC 3464): who gets one, and delivering it.

The worker reports what happened to each recipient of a message; `Notifier` decides from
the recipient's NOTIFY whether the sender wants to hear about it (RFC 3461 §4.1), composes
one DSN per message with the MIME engine (`mime/dsn.py`) and delivers it like any other
mail, from the null sender `<>` (RFC 5321 §4.5.5): into a local mailbox, or into the queue.
A notice about a message that itself came from `<>` is never sent to `<>` (no loops); if it
is a failure, the local postmaster gets it instead.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox import log
from pillarbox.directory.model import LocalMailbox, Unknown, targets_of
from pillarbox.directory.resolver import Directory
from pillarbox.mime.dsn import DsnAction, DsnRecipientStatus, DsnReport, ReturnContent, compose_dsn
from pillarbox.smtp import trace
from pillarbox.store import api

POSTMASTER: Final = "postmaster"
# RFC 3461 §4.1: without NOTIFY the MTA reports failures (and may report delays).
DEFAULT_NOTIFY: Final = frozenset({"FAILURE", "DELAY"})
_WANTS: Final = {
    DsnAction.FAILED: "FAILURE",
    DsnAction.DELAYED: "DELAY",
    DsnAction.DELIVERED: "SUCCESS",
    DsnAction.RELAYED: "SUCCESS",
    DsnAction.EXPANDED: "SUCCESS",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """What happened to one recipient, for the DSN."""

    recipient: api.DsnRecipient
    action: DsnAction
    status: str  # RFC 3463
    diagnostic: str | None = None  # the remote reply, "550 5.1.1 ..."
    remote_mta: str | None = None
    will_retry_until: dt.datetime | None = None


def wanted(recipient: api.DsnRecipient, action: DsnAction) -> bool:
    """RFC 3461 §4.1: NOTIFY=NEVER, or the list of events the sender asked for."""
    notify = frozenset(recipient.notify) or DEFAULT_NOTIFY
    return "NEVER" not in notify and _WANTS[action] in notify


def strip_return_path(body: bytes) -> bytes:
    """Drop the leading Return-Path field the final delivery added (RFC 5321 §4.4)."""
    if body[:12].lower() != b"return-path:":
        return body
    end = body.find(b"\r\n")
    while end >= 0 and body[end + 2 : end + 3] in (b" ", b"\t"):  # folded continuation
        end = body.find(b"\r\n", end + 2)
    return body[end + 2 :] if end >= 0 else body


class Notifier:
    """Composes and delivers DSNs for the queue worker (and for local deliveries)."""

    def __init__(self, store: api.Store, directory: Directory, hostname: str) -> None:
        self.store = store
        self.directory = directory
        self.hostname = hostname

    async def notify(
        self,
        envelope: api.Envelope,
        original: bytes,
        notices: Sequence[Notice],
        arrival: dt.datetime,
    ) -> None:
        """Send one DSN about `original` covering the notices the sender asked for."""
        chosen = [n for n in notices if wanted(n.recipient, n.action)]
        if not chosen:
            return
        to = envelope.sender
        if not to:  # RFC 3461 §6.2 / RFC 5321 §4.5.5: never notify the null sender
            chosen = [n for n in chosen if n.action is DsnAction.FAILED]
            if not chosen:
                return
            postmaster = await self._postmaster_address()
            if postmaster is None:
                log.event("delivery.dsn-dropped", reason="no postmaster")
                return
            to = postmaster
        report = self._report(envelope, to, chosen, arrival)
        dsn = compose_dsn(report, strip_return_path(original))
        await self.deliver_notice(to, dsn, bounce_of_bounce=not envelope.sender)

    async def delivered_locally(
        self,
        envelope: api.Envelope,
        original: bytes,
        recipients: Sequence[api.DsnRecipient],
        arrival: dt.datetime,
    ) -> None:
        """RFC 3461 §4.1: NOTIFY=SUCCESS on recipients put into local mailboxes."""
        notices = [Notice(r, DsnAction.DELIVERED, "2.0.0") for r in recipients]
        await self.notify(envelope, original, notices, arrival)

    def _report(
        self, envelope: api.Envelope, to: str, notices: Sequence[Notice], arrival: dt.datetime
    ) -> DsnReport:
        now = dt.datetime.now(dt.UTC)
        statuses = tuple(
            DsnRecipientStatus(
                final_recipient=n.recipient.address,
                action=n.action,
                status=n.status,
                original_recipient=n.recipient.orcpt,
                remote_mta=n.remote_mta,
                diagnostic_code=n.diagnostic,
                last_attempt_date=now if n.action is not DsnAction.DELIVERED else None,
                will_retry_until=n.will_retry_until,
            )
            for n in notices
        )
        ret = ReturnContent.FULL if envelope.ret == "FULL" else ReturnContent.HEADERS
        return DsnReport(
            reporting_mta=self.hostname,
            to=to,
            recipients=statuses,
            date=now,
            message_id=f"{secrets.token_hex(10)}@{self.hostname}",
            envid=envelope.envid,
            arrival_date=arrival,
            ret=ret,
        )

    async def deliver_notice(self, to: str, dsn: bytes, *, bounce_of_bounce: bool = False) -> None:
        """Deliver a notice from <> to `to`: a local mailbox, else the outbound queue."""
        body = trace.return_path_header("") + dsn
        envelope = api.Envelope(sender="", body="7BIT" if dsn.isascii() else "8BITMIME")
        resolution = await self.directory.resolve_recipient(to)
        if isinstance(resolution, Unknown):
            postmaster = None if bounce_of_bounce else await self._postmaster_address()
            if postmaster is None or postmaster == to:
                log.event("delivery.dsn-dropped", to=to, reason=resolution.reason)
                return
            await self.deliver_notice(postmaster, dsn, bounce_of_bounce=True)
            return
        local: dict[api.AccountId, api.LocalTarget] = {}
        remote: list[api.DsnRecipient] = []
        for target in targets_of(resolution):
            if isinstance(target, LocalMailbox):
                local.setdefault(target.account_id, api.LocalTarget(target.account_id))
            else:  # a DSN is never itself reported on (RFC 3461 §6.2)
                remote.append(api.DsnRecipient(target.address, ("NEVER",)))
        await self.store.deliver(api.Delivery(body, envelope, tuple(local.values()), remote))
        log.event("delivery.dsn", to=to, local=len(local), queued=len(remote))

    async def _postmaster_address(self) -> str | None:
        """RFC 5321 §4.5.1: postmaster of the first local domain (or of our host name)."""
        domains = await self.store.list_domains()
        domain = domains[0].name if domains else self.hostname
        address = f"{POSTMASTER}@{domain}"
        resolution = await self.directory.resolve_recipient(address)
        return None if isinstance(resolution, Unknown) else address
