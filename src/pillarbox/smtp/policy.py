"""SMTP decisions about addresses: who may receive, who may relay, what VRFY/EXPN say.

Kept apart from the session so that the rules read in one place and can be tested with a
directory and store alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox.config import Config
from pillarbox.directory.model import Expansion, LocalMailbox, Remote, Target, Unknown
from pillarbox.directory.resolver import Directory
from pillarbox.smtp.events import MailParams, RcptParams
from pillarbox.smtp.replies import Reply
from pillarbox.store import api

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NO_SUCH_USER: Final = Reply(550, "5.1.1", "Recipient address rejected: user unknown")
RELAY_DENIED: Final = Reply(554, "5.7.1", "Relay access denied")
RECIPIENT_TEMPFAIL: Final = Reply(451, "4.3.0", "Temporary lookup failure, try again")
NO_TARGETS: Final = Reply(
    550, "5.1.1", "Recipient address rejected: alias has no deliverable targets"
)


@dataclass(frozen=True, slots=True)
class Recipient:
    """An accepted RCPT: the address as given, its DSN parameters, and where it goes."""

    address: str
    dsn: api.DsnRecipient
    targets: tuple[Target, ...]


class RecipientPolicy:
    def __init__(self, config: Config, directory: Directory, store: api.Store) -> None:
        self.config = config
        self.directory = directory
        self.store = store

    def relay_allowed(self, authenticated: bool, peer: IPAddress) -> bool:
        """DESIGN.md "No open relay": AUTH or a configured network, nobody else."""
        return authenticated or any(peer in net for net in self.config.smtp.relay_networks)

    def backup_mx(self, address: str) -> bool:
        """delivery.hold_domains: we are a backup MX and keep their mail until ETRN."""
        domain = address.rpartition("@")[2].lower()
        return domain in {d.lower() for d in self.config.delivery.hold_domains}

    async def check_recipient(
        self, address: str, params: RcptParams, authenticated: bool, peer: IPAddress
    ) -> Recipient | Reply:
        """RCPT time: a Recipient to keep, or the reply that refuses it."""
        try:
            resolution = await self.directory.resolve_recipient(address)
        except api.StoreUnavailable:
            return RECIPIENT_TEMPFAIL
        if isinstance(resolution, Unknown):
            return NO_SUCH_USER  # RFC 5321 §3.6.2 / RFC 3463 X.1.1
        relay = self.relay_allowed(authenticated, peer) or self.backup_mx(address)
        if isinstance(resolution, Remote) and not relay:
            return RELAY_DENIED  # RFC 5321 §3.6.2, RFC 3463 X.7.1
        targets = resolution.targets if isinstance(resolution, Expansion) else (resolution,)
        if not targets:
            return NO_TARGETS
        dsn = api.DsnRecipient(address, params.notify, params.orcpt)
        return Recipient(address, dsn, targets)

    def delivery(
        self, sender: str, params: MailParams, recipients: Sequence[Recipient], body: bytes
    ) -> api.Delivery:
        """One store delivery: each local account once, each remote address once."""
        local: dict[api.AccountId, api.LocalTarget] = {}
        remote: dict[str, api.DsnRecipient] = {}
        for recipient in recipients:
            for target in recipient.targets:
                if isinstance(target, LocalMailbox):
                    local.setdefault(target.account_id, api.LocalTarget(target.account_id))
                elif target.address not in remote:
                    remote[target.address] = _forwarded(recipient, target)
        envelope = self.envelope(sender, params)
        return api.Delivery(body, envelope, tuple(local.values()), tuple(remote.values()))

    @staticmethod
    def envelope(sender: str, params: MailParams) -> api.Envelope:
        return api.Envelope(
            sender=sender,
            ret=params.ret,
            envid=params.envid,
            body=params.body,
            smtputf8=params.smtputf8,
        )

    def verbose_report(self, recipients: Sequence[Recipient]) -> list[Reply]:
        """Sendmail VERB: one 050 line per final target, before the end-of-data reply."""
        lines = []
        for recipient in recipients:
            for target in recipient.targets:
                if isinstance(target, LocalMailbox):
                    what = f"<{target.address}>... Delivered to mailbox INBOX"
                else:
                    what = f"<{target.address}>... Queued for delivery"
                lines.append(Reply(50, None, what))
        return lines

    async def vrfy(self, arg: str) -> list[Reply]:
        answer = await self.directory.vrfy(arg)
        return [Reply(answer.code, answer.status, answer.lines)]

    async def expn(self, arg: str) -> list[Reply]:
        answer = await self.directory.expn(arg)
        return [Reply(answer.code, answer.status, answer.lines)]


def _forwarded(recipient: Recipient, target: Remote) -> api.DsnRecipient:
    """RFC 3461 §4.2: a recipient rewritten by an alias keeps the original as ORCPT."""
    if target.address == recipient.address:
        return recipient.dsn
    orcpt = recipient.dsn.orcpt or f"rfc822;{recipient.address}"
    return api.DsnRecipient(target.address, recipient.dsn.notify, orcpt)
