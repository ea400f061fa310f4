"""VRFY and EXPN answers as data (RFC 5321 §3.5); the SMTP session puts them on the wire.

Decisions, per RFC 5321 §3.5.1-§3.5.3:
- VRFY of a user, or of an alias that ends in one mailbox: 250 with that mailbox.
- VRFY of a list: 252 "Unable to verify members of mailing list" (one of the two answers
  §3.5.1 suggests; Postfix also answers 252). EXPN shows the members.
- EXPN of a user: 250 with the one user (§3.5.1 allows "a list containing one name").
- A bare name found in several local domains: 553 5.1.4 with the candidates (§3.5.1).
- A non-local address: 252 when the client may relay (we would accept it), else 551.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pillarbox.directory.model import (
    AddressAnswer,
    Expansion,
    LocalMailbox,
    Remote,
    Resolution,
    Target,
    Unknown,
)

# RFC 3463 X.1.1: bad destination mailbox address.
USER_UNKNOWN: Final = AddressAnswer(550, "5.1.1", ("User unknown",))
LIST_EMPTY: Final = AddressAnswer(550, "5.1.1", ("List has no deliverable members",))
# RFC 3463 X.1.3: bad destination mailbox address syntax.
BAD_SYNTAX: Final = AddressAnswer(501, "5.1.3", ("Bad address syntax",))
# RFC 5321 §3.4 / §4.2.2: 551 User not local (we do not suggest a forward-path).
NOT_LOCAL: Final = AddressAnswer(551, "5.7.1", ("User not local",))
# RFC 5321 §3.5.3 / §4.2.2: 252 Cannot VRFY user, but will accept message.
CANNOT_VERIFY: Final = AddressAnswer(
    252, "2.1.5", ("Cannot VRFY user, but will accept message and attempt delivery",)
)
AMBIGUOUS_HEADER: Final = "Ambiguous; Possibilities are"  # RFC 5321 §3.5.1 wording
VERIFIED: Final = "2.1.5"  # RFC 3463 X.1.5: destination address valid
AMBIGUOUS: Final = "5.1.4"  # RFC 3463 X.1.4: destination mailbox address ambiguous

# Display names go on the wire only as printable ASCII without brackets.
_SAFE_NAME: Final = re.compile(r"[ -;=?-~]+")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A user or alias a VRFY/EXPN argument names, with what it resolves to."""

    address: str  # local@domain as found
    resolution: Resolution


def mailbox_line(address: str, name: str = "") -> str:
    """`Full Name <local@domain>`, or `<local@domain>` (RFC 5321 §3.5.1, §3.5.2)."""
    name = " ".join(name.split())
    if name and _SAFE_NAME.fullmatch(name):
        return f"{name} <{address}>"
    return f"<{address}>"


def target_line(target: Target) -> str:
    if isinstance(target, LocalMailbox):
        return mailbox_line(target.address, target.name)
    return mailbox_line(target.address)


def candidate_line(candidate: Candidate) -> str:
    if isinstance(candidate.resolution, LocalMailbox | Remote):
        return target_line(candidate.resolution)
    return mailbox_line(candidate.address)


def _empty(resolution: Resolution) -> bool:
    return isinstance(resolution, Expansion) and not resolution.targets


def _ambiguous(candidates: list[Candidate]) -> AddressAnswer:
    lines = tuple(candidate_line(candidate) for candidate in candidates)
    return AddressAnswer(553, AMBIGUOUS, (AMBIGUOUS_HEADER, *lines))


def vrfy_answer(candidates: list[Candidate]) -> AddressAnswer:
    """RFC 5321 §3.5: the VRFY answer for what the argument named."""
    if not candidates:
        return USER_UNKNOWN
    if len(candidates) > 1:
        return _ambiguous(candidates)
    candidate = candidates[0]
    resolution = candidate.resolution
    if isinstance(resolution, Unknown) or _empty(resolution):
        return LIST_EMPTY
    if isinstance(resolution, Expansion):
        if resolution.is_list:  # RFC 5321 §3.5.1: 252 for a mailing list
            line = f"Unable to verify members of mailing list {mailbox_line(candidate.address)}"
            return AddressAnswer(252, VERIFIED, (line,))
        return AddressAnswer(250, VERIFIED, (target_line(resolution.targets[0]),))
    return AddressAnswer(250, VERIFIED, (target_line(resolution),))


def expn_answer(candidates: list[Candidate]) -> AddressAnswer:
    """RFC 5321 §3.5: one 250 line per member; a user is a list of one."""
    if not candidates:
        return USER_UNKNOWN
    if len(candidates) > 1:
        return _ambiguous(candidates)
    resolution = candidates[0].resolution
    if isinstance(resolution, Unknown) or _empty(resolution):
        return LIST_EMPTY
    if isinstance(resolution, Expansion):
        return AddressAnswer(250, VERIFIED, tuple(target_line(t) for t in resolution.targets))
    return AddressAnswer(250, VERIFIED, (target_line(resolution),))
