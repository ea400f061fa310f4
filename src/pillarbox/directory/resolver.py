"""Recipient resolution: local users, aliases and lists (aliases(5) semantics), subaddresses.

Lookup order for local@domain (first hit wins), tried for the local part as given, then
lower-cased, then without its "+tag" subaddress:

1. an alias stored as local@domain,
2. an alias stored as the bare name "local" (it applies in every local domain),
3. the account local@domain.

Aliases come before accounts as in aliases(5), so `jane: jane, jane@elsewhere.example`
keeps a copy and forwards one: when an expansion meets an alias already on its own path
(a loop), it delivers to the account of that name if there is one and otherwise drops the
target, noting the loop. A target starting with "\\" goes to the account directly.
Unqualified targets resolve in the domain of the alias being expanded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final

from pillarbox.directory.addresses import (
    DEFAULT_SUBADDRESS_SEPARATOR,
    POSTMASTER,
    Address,
    AddressError,
    lookup_forms,
    parse_address,
    split_subaddress,
)
from pillarbox.directory.aliasfile import INCLUDE_PREFIX, AliasFileError, read_include
from pillarbox.directory.answers import (
    BAD_SYNTAX,
    CANNOT_VERIFY,
    NOT_LOCAL,
    Candidate,
    expn_answer,
    vrfy_answer,
)
from pillarbox.directory.model import (
    AddressAnswer,
    DirectoryStore,
    Expansion,
    LocalMailbox,
    Remote,
    Resolution,
    Target,
    Unknown,
)
from pillarbox.store.api import Account, Alias, NotFound

# sendmail's MAXRCRSN: aliases (and includes) nested deeper than this are cut.
MAX_ALIAS_DEPTH: Final = 10
# A list expanding to more final targets than this is cut (the rest noted as a problem).
MAX_EXPANSION_TARGETS: Final = 1000
# The escape of aliases(5): "\\user" delivers to the account without alias expansion.
DIRECT_PREFIX: Final = "\\"
# Bound on remembered resolutions, so a dictionary attack on RCPT cannot grow memory.
MAX_REMEMBERED: Final = 50_000


@dataclass(frozen=True, slots=True)
class Match:
    """What a local address names: an alias (to expand) or an account."""

    address: str  # the address as matched, local@domain (subaddress removed)
    alias: Alias | None = None
    account: Account | None = None
    detail: str | None = None

    @property
    def key(self) -> str:
        """Loop-detection key: aliases are case-insensitive names."""
        return self.address.lower()


@dataclass(slots=True)
class _Expanding:
    """Mutable state of one expansion: results, the alias path, what was already done."""

    targets: dict[str, Target] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # alias keys from the root to here
    done: set[str] = field(default_factory=set)  # aliases and includes already expanded

    def add(self, key: str, target: Target) -> None:
        if key in self.targets:
            return
        if len(self.targets) >= MAX_EXPANSION_TARGETS:
            self.problems.append(f"more than {MAX_EXPANSION_TARGETS} targets; rest dropped")
            return
        self.targets[key] = target


class Directory:
    """Resolves recipients and answers VRFY/EXPN from the store's accounts and aliases."""

    def __init__(
        self,
        store: DirectoryStore,
        *,
        postmaster: str | None = None,
        subaddress_separator: str = DEFAULT_SUBADDRESS_SEPARATOR,
        resolution_ttl: float = 0.0,
    ) -> None:
        """`postmaster`: where "postmaster" mail goes when no alias or account takes it.

        `resolution_ttl`: remember what an RCPT address resolved to for this many seconds
        (0: never), so a stream of mail to one address skips the lookups; use it only over
        a store whose answers may be that stale anyway (directory.cache.CachedLookups).
        """
        self._store = store
        self._postmaster = postmaster
        self._separator = subaddress_separator
        self._resolution_ttl = resolution_ttl
        self._resolved: dict[str, tuple[float, Resolution]] = {}

    @property
    def store(self) -> DirectoryStore:
        return self._store

    # -- lookups ----------------------------------------------------------------------
    async def _get_alias(self, address: str) -> Alias | None:
        try:
            return await self._store.get_alias(address)
        except NotFound:
            return None

    async def _get_account(self, address: str) -> Account | None:
        try:
            return await self._store.get_account(address)
        except NotFound:
            return None

    async def match(self, address: Address, *, aliases: bool = True) -> Match | None:
        """What local@domain names (see the module docstring), or None."""
        base, tag = split_subaddress(address.local, self._separator)
        candidates: list[tuple[str, str | None]] = [(address.local, None)]
        if tag is not None:
            candidates.append((base, tag))
        for local, detail in candidates:
            for form in lookup_forms(local):
                found = await self._match_form(form, address.domain, detail, aliases=aliases)
                if found is not None:
                    return found
        return None

    async def _match_form(
        self, local: str, domain: str, detail: str | None, *, aliases: bool
    ) -> Match | None:
        qualified = f"{local}@{domain}"
        if aliases:
            for name in (qualified, local):
                alias = await self._get_alias(name)
                if alias is not None:
                    return Match(qualified, alias=alias, detail=detail)
        account = await self._get_account(qualified)
        if account is not None:
            return Match(account.address, account=account, detail=detail)
        return None

    # -- RCPT -------------------------------------------------------------------------
    async def resolve_recipient(self, address: str) -> Resolution:
        """What RCPT TO:<address> delivers to (RFC 5321 §4.1.1.3).

        An alias that expands to nothing deliverable is Unknown, with the problems.
        """
        if self._resolution_ttl:
            now = time.monotonic()
            hit = self._resolved.get(address)
            if hit is not None and hit[0] > now:
                return hit[1]
        resolution = await self._resolve(address)
        if isinstance(resolution, Expansion) and not resolution.targets:
            reason = "; ".join(resolution.problems) or "alias has no targets"
            resolution = Unknown(resolution.address, f"alias expands to nothing: {reason}")
        if self._resolution_ttl:
            if len(self._resolved) >= MAX_REMEMBERED:
                self._resolved.clear()
            self._resolved[address] = (now + self._resolution_ttl, resolution)
        return resolution

    async def _resolve(self, address: str) -> Resolution:
        """Like resolve_recipient, but an alias may give an Expansion with no targets."""
        try:
            parsed = parse_address(address)
        except AddressError as exc:
            return Unknown(address, str(exc))
        if not parsed.domain:
            if parsed.is_postmaster:  # RFC 5321 §4.5.1: <Postmaster> without a domain
                return await self._resolve_bare_postmaster()
            return Unknown(address, "address has no domain")
        if not await self._store.is_local_domain(parsed.domain):
            return Remote(str(parsed))
        found = await self.match(parsed)
        if found is None:
            if parsed.is_postmaster and self._postmaster is not None:
                return await self._resolve_configured_postmaster(str(parsed))
            return Unknown(str(parsed), "no such user")
        return await self.resolve_match(found, str(parsed))

    async def resolve_match(self, found: Match, addressed: str) -> Resolution:
        """Turn a match into a mailbox or a full expansion (maybe with no targets)."""
        if found.alias is None:
            assert found.account is not None
            return _mailbox(found.account, found.detail)
        state = _Expanding(path=[found.key], done={found.key})
        domain = found.address.rpartition("@")[2]
        await self._expand(found.alias.targets, domain, state, depth=1)
        return Expansion(addressed, tuple(state.targets.values()), tuple(state.problems))

    async def _resolve_bare_postmaster(self) -> Resolution:
        bare = await self._get_alias(POSTMASTER)
        if self._postmaster is not None and bare is None:
            return await self._resolve_configured_postmaster(POSTMASTER)
        for domain in await self._store.list_domains():
            result = await self.resolve_recipient(f"{POSTMASTER}@{domain.name}")
            if not isinstance(result, Unknown):
                return result
        return Unknown(POSTMASTER, "no postmaster configured")

    async def _resolve_configured_postmaster(self, addressed: str) -> Resolution:
        assert self._postmaster is not None
        try:
            target = parse_address(self._postmaster)
        except AddressError as exc:
            return Unknown(addressed, f"configured postmaster: {exc}")
        if target.is_postmaster or not target.domain:
            return Unknown(addressed, "configured postmaster must be another, qualified address")
        result = await self.resolve_recipient(str(target))
        if isinstance(result, LocalMailbox | Remote):
            return Expansion(addressed, (result,))
        return result

    # -- VRFY and EXPN ----------------------------------------------------------------
    async def vrfy(self, arg: str, *, relay_allowed: bool = False) -> AddressAnswer:
        """RFC 5321 §3.5: the answer to VRFY `arg` (see directory.answers for the rules)."""
        candidates = await self.candidates(arg, relay_allowed=relay_allowed)
        if isinstance(candidates, AddressAnswer):
            return candidates
        return vrfy_answer(candidates)

    async def expn(self, arg: str, *, relay_allowed: bool = False) -> AddressAnswer:
        """RFC 5321 §3.5: the answer to EXPN `arg`."""
        candidates = await self.candidates(arg, relay_allowed=relay_allowed)
        if isinstance(candidates, AddressAnswer):
            return candidates
        return expn_answer(candidates)

    async def candidates(
        self, arg: str, *, relay_allowed: bool = False
    ) -> list[Candidate] | AddressAnswer:
        """The users and aliases `arg` names: a qualified address, or a bare name that
        is looked up in every local domain (RFC 5321 §3.5.1 "user name")."""
        try:
            parsed = parse_address(arg)
        except AddressError:
            return BAD_SYNTAX
        if not parsed.domain and not parsed.is_postmaster:
            return await self._bare_candidates(parsed.local)
        resolution = await self._resolve(str(parsed))
        if isinstance(resolution, Remote):
            # RFC 5321 §3.5.2: VRFY/EXPN need not work across relays.
            return CANNOT_VERIFY if relay_allowed else NOT_LOCAL
        if isinstance(resolution, Unknown):
            return []
        return [Candidate(str(parsed), resolution)]

    async def _bare_candidates(self, name: str) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        for domain in await self._store.list_domains():
            match = await self.match(Address(name, domain.name))
            if match is None:
                continue
            # A bare alias matches in every domain but is one thing: keep its first domain.
            key = f"#{match.account.id}" if match.account else _alias_key(match.alias)
            if key not in found:
                found[key] = Candidate(
                    match.address, await self.resolve_match(match, match.address)
                )
        return list(found.values())

    # -- expansion --------------------------------------------------------------------
    async def _expand(
        self, targets: tuple[str, ...] | list[str], domain: str, state: _Expanding, depth: int
    ) -> None:
        for target in targets:
            if depth > MAX_ALIAS_DEPTH:
                state.problems.append(f"aliases nested deeper than {MAX_ALIAS_DEPTH}: {target}")
                continue
            if target.lower().startswith(INCLUDE_PREFIX):
                await self._expand_include(target[len(INCLUDE_PREFIX) :], domain, state, depth)
            elif target.startswith(("|", "/")):
                state.problems.append(f"program and file targets are not supported: {target}")
            else:
                await self._expand_address(target, domain, state, depth)

    async def _expand_include(self, path: str, domain: str, state: _Expanding, depth: int) -> None:
        key = INCLUDE_PREFIX + path
        if key in state.done:
            return
        state.done.add(key)
        try:
            # read_include flattens nested includes with its own loop and depth limits.
            addresses = await asyncio.to_thread(read_include, path)
        except AliasFileError as exc:
            state.problems.append(str(exc))
            return
        await self._expand(addresses, domain, state, depth + 1)

    async def _expand_address(
        self, target: str, domain: str, state: _Expanding, depth: int
    ) -> None:
        direct = target.startswith(DIRECT_PREFIX)
        try:
            address = parse_address(target.removeprefix(DIRECT_PREFIX))
        except AddressError as exc:
            state.problems.append(f"bad target {target!r}: {exc}")
            return
        if not address.domain:  # unqualified: the domain being expanded
            address = Address(address.local, domain)
        if not await self._store.is_local_domain(address.domain):
            state.add(str(address), Remote(str(address)))
            return
        found = await self.match(address, aliases=not direct)
        if found is not None and found.alias is not None and found.key in state.path:
            # A loop (e.g. "jane: jane, jane@elsewhere"): the name means the account now.
            found = await self.match(address, aliases=False)
            if found is None:
                state.problems.append(f"alias loop through {address} cut")
                return
        if found is None:
            state.problems.append(f"unknown local target {address}")
        elif found.account is not None:
            state.add(f"#{found.account.id}", _mailbox(found.account, found.detail))
        elif found.alias is not None and found.key not in state.done:
            state.done.add(found.key)
            state.path.append(found.key)
            await self._expand(found.alias.targets, address.domain, state, depth + 1)
            state.path.pop()


def _alias_key(alias: Alias | None) -> str:
    return alias.address.lower() if alias is not None else ""


def _mailbox(account: Account, detail: str | None) -> LocalMailbox:
    return LocalMailbox(account.id, account.address, name=account.name, detail=detail)
