"""A short-lived cache in front of the store's directory lookups.

Every RCPT resolves its address through several lookups (alias as given, bare alias,
account, each in a few spellings). Accounts and aliases change rarely and are edited by
another process (the CLI), so answers are kept for `ttl` seconds: a change made with
`pillarbox user/alias ...` takes effect within that time, and the SMTP hot path stays on
the event loop. Misses (NotFound) are cached too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from pillarbox.directory.model import DirectoryStore
from pillarbox.store.api import Account, Alias, Domain, NotFound

# How stale a lookup may be. Short enough that an operator never waits for it.
DEFAULT_TTL: Final = 2.0
# Bound on remembered answers, so a dictionary attack on RCPT cannot grow memory.
MAX_ENTRIES: Final = 50_000

T = TypeVar("T")


class CachedLookups:
    """Implements DirectoryStore over another DirectoryStore, remembering answers."""

    def __init__(
        self,
        store: DirectoryStore,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._answers: dict[tuple[str, str], tuple[float, object]] = {}

    async def _cached(self, key: tuple[str, str], fetch: Callable[[], Awaitable[T]]) -> T:
        now = self._clock()
        hit = self._answers.get(key)
        if hit is not None and hit[0] > now:
            answer = hit[1]
        else:
            try:
                answer = await fetch()
            except NotFound as missing:
                answer = missing
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
            self._answers[key] = (now + self._ttl, answer)
        if isinstance(answer, NotFound):
            raise NotFound(*answer.args)
        return answer  # type: ignore[return-value]

    async def get_account(self, address: str) -> Account:
        return await self._cached(("account", address), lambda: self._store.get_account(address))

    async def get_alias(self, address: str) -> Alias:
        return await self._cached(("alias", address), lambda: self._store.get_alias(address))

    async def list_domains(self) -> list[Domain]:
        return await self._cached(("domains", ""), self._store.list_domains)

    async def is_local_domain(self, name: str) -> bool:
        return await self._cached(("local", name), lambda: self._store.is_local_domain(name))

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        return await self._cached(
            ("accounts", domain or ""), lambda: self._store.list_accounts(domain)
        )

    async def list_aliases(self) -> list[Alias]:
        return await self._cached(("aliases", ""), self._store.list_aliases)
