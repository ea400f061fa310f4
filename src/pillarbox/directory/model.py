"""What the directory needs from the store, and the values it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pillarbox.store.api import Account, AccountId, Alias, Domain


class DirectoryStore(Protocol):
    """The narrow slice of `store.api.Store` the directory reads (tests use a fake)."""

    async def get_account(self, address: str) -> Account: ...
    async def get_alias(self, address: str) -> Alias: ...
    async def list_domains(self) -> list[Domain]: ...
    async def is_local_domain(self, name: str) -> bool: ...
    async def list_accounts(self, domain: str | None = None) -> list[Account]: ...
    async def list_aliases(self) -> list[Alias]: ...


@dataclass(frozen=True, slots=True)
class LocalMailbox:
    """Deliver to this account (its INBOX; `detail` is the subaddress tag, if any)."""

    account_id: AccountId
    address: str  # the account's address
    name: str = field(default="", compare=False)  # display name, for VRFY/EXPN
    detail: str | None = None  # RFC 5233: "tag" of user+tag@domain


@dataclass(frozen=True, slots=True)
class Remote:
    """A non-local address: relay it (the caller decides whether relaying is allowed)."""

    address: str


Target = LocalMailbox | Remote


@dataclass(frozen=True, slots=True)
class Expansion:
    """A local alias or list, expanded to its final mailboxes and remote addresses."""

    address: str  # the alias as addressed
    targets: tuple[Target, ...]
    problems: tuple[str, ...] = ()  # loops cut, unknown or refused targets: for the log

    @property
    def is_list(self) -> bool:
        return len(self.targets) > 1


@dataclass(frozen=True, slots=True)
class Unknown:
    """No such local user or alias (RCPT answers 550 5.1.1)."""

    address: str
    reason: str


Resolution = LocalMailbox | Remote | Expansion | Unknown


def targets_of(resolution: Resolution) -> tuple[Target, ...]:
    """The mailboxes and remote addresses a resolution delivers to (none for Unknown)."""
    if isinstance(resolution, Expansion):
        return resolution.targets
    if isinstance(resolution, Unknown):
        return ()
    return (resolution,)


@dataclass(frozen=True, slots=True)
class AddressAnswer:
    """A VRFY or EXPN reply as data: one reply line per entry of `lines` (RFC 5321 §3.5)."""

    code: int
    status: str  # RFC 3463 enhanced status code, e.g. "2.1.5"
    lines: tuple[str, ...]


VrfyAnswer = AddressAnswer
ExpnAnswer = AddressAnswer
