"""ETRN (RFC 1985): a client asks us to start delivering the mail queued for its domain.

Who may ask: an authenticated client, a client in `smtp.relay_networks`, or a client whose
address is one of the node's own addresses or of its MX hosts (the offline host that the
mail is for, RFC 1985 §5.1 "only allow certain combinations for each of the nodes").
Which nodes: a hold domain (`delivery.hold_domains`) or any domain with queued mail;
`@domain` adds its subdomains (RFC 1985 §5.3); `#queue` names no queue we have (458).

`release` is shared with `pillarbox queue flush DOMAIN`: entries held for the hold domain
are released, and every entry of the domain is made due now.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox import log
from pillarbox.config import Config
from pillarbox.delivery.retry import HELD_NOTE, RELEASED_NOTE
from pillarbox.delivery.routing import Router
from pillarbox.smtp.replies import Reply
from pillarbox.store import api

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1035 §2.3.1 host names (letters, digits, hyphens; dot-separated labels).
_DOMAIN_RE: Final = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
BAD_NODE: Final = Reply(501, "5.5.4", "Syntax error in parameters: ETRN [@|#]node")


@dataclass(frozen=True, slots=True)
class EtrnRequest:
    node: str  # lower-cased domain (or queue name for "#")
    subdomains: bool = False  # "@domain"
    queue: bool = False  # "#name"


def parse(arg: str) -> EtrnRequest | Reply:
    """RFC 1985 §5: `node`, `@node` or `#queue`."""
    text = arg.strip()
    if text.startswith("#"):
        return EtrnRequest(text[1:], queue=True) if text[1:] else BAD_NODE
    subdomains = text.startswith("@")
    node = text[1:] if subdomains else text
    if not _DOMAIN_RE.fullmatch(node):
        return BAD_NODE
    return EtrnRequest(node.lower().rstrip("."), subdomains)


def matches(domain: str, node: str, subdomains: bool) -> bool:
    return domain == node or (subdomains and domain.endswith("." + node))


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


async def release(
    store: api.Store, node: str, *, subdomains: bool = False, now: dt.datetime | None = None
) -> int:
    """Release hold-domain entries of `node` and make all its entries due; returns how many.

    Entries an operator held (`queue hold`) stay held.
    """
    moment = now or dt.datetime.now(dt.UTC)
    domains: set[str] = set()
    count = 0
    for entry in await store.list_queue():
        domain = _domain(entry.recipient.address)
        if not matches(domain, node, subdomains):
            continue
        if entry.held and entry.last_result != HELD_NOTE:
            continue
        if entry.held:
            await store.hold_queue_entry(entry.id, False, note=RELEASED_NOTE)
        domains.add(domain)
        count += 1
    for domain in sorted(domains):
        await store.flush_queue(domain, now=moment)
    return count


class EtrnService:
    """Answers ETRN for SMTP sessions and wakes the queue worker."""

    def __init__(
        self, config: Config, store: api.Store, router: Router, wake: Callable[[], None]
    ) -> None:
        self.config = config
        self.store = store
        self.router = router
        self.wake = wake
        self.hold_domains = frozenset(d.lower() for d in config.delivery.hold_domains)

    async def handle(self, arg: str, *, authenticated: bool, peer: IPAddress) -> Reply:
        request = parse(arg)
        if isinstance(request, Reply):
            return request
        node = ("#" if request.queue else "@" if request.subdomains else "") + request.node
        if request.queue:  # RFC 1985 §5.3: named queues are a local matter; we have none
            return Reply(458, "4.3.0", f"Unable to queue messages for node {node}")
        if not await self._known(request):
            return Reply(459, "4.7.1", f"Node {node} not allowed: no mail is queued for it")
        if not await self._allowed(request.node, authenticated, peer):
            return Reply(459, "4.7.1", f"Node {node} not allowed: client not authorized")
        try:
            count = await release(self.store, request.node, subdomains=request.subdomains)
        except api.StoreError:
            return Reply(458, "4.3.0", f"Unable to queue messages for node {node}")
        log.event("smtp.etrn", node=node, peer=str(peer), released=count)
        self.wake()
        if count == 0:
            return Reply(251, "2.0.0", f"OK, no messages waiting for node {node}")
        return Reply(253, "2.0.0", f"OK, {count} pending messages for node {node} started")

    async def _known(self, request: EtrnRequest) -> bool:
        if any(matches(d, request.node, request.subdomains) for d in self.hold_domains):
            return True
        entries = await self.store.list_queue()
        return any(
            matches(_domain(e.recipient.address), request.node, request.subdomains) for e in entries
        )

    async def _allowed(self, node: str, authenticated: bool, peer: IPAddress) -> bool:
        if authenticated or any(peer in net for net in self.config.smtp.relay_networks):
            return True
        hosts = [node, *await self.router.exchanges(node)]
        for host in hosts:
            addresses = await self.router.addresses(host)
            if any(ipaddress.ip_address(a) == peer for a in addresses):
                return True
        return False
