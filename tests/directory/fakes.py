"""An in-memory store with just the methods the directory and authenticator read."""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.store.api import Account, AccountId, Alias, Domain, NotFound


def _key(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if at else address


class FakeStore:
    """Domains, accounts and aliases in dicts; counts calls so tests can see lookups."""

    def __init__(self, domains: Sequence[str] = ()) -> None:
        self.domains: list[str] = [d.lower() for d in domains]
        self.accounts: dict[str, Account] = {}
        self.aliases: dict[str, Alias] = {}
        self.calls = 0

    # -- setup helpers (synchronous) ---------------------------------------------------
    def user(
        self, address: str, name: str = "", password_hash: str = "", apop_secret: str | None = None
    ) -> Account:
        account = Account(
            id=AccountId(len(self.accounts) + 1),
            address=_key(address),
            name=name,
            password_hash=password_hash,
            quota=0,
            apop_secret=apop_secret,
        )
        self.accounts[_key(address)] = account
        return account

    def alias(self, address: str, *targets: str) -> Alias:
        alias = Alias(address=_key(address), targets=tuple(targets))
        self.aliases[_key(address).lower()] = alias
        return alias

    # -- the store methods -------------------------------------------------------------
    async def get_account(self, address: str) -> Account:
        self.calls += 1
        try:
            return self.accounts[_key(address)]
        except KeyError:
            raise NotFound(address) from None

    async def get_alias(self, address: str) -> Alias:
        self.calls += 1
        try:
            return self.aliases[_key(address).lower()]
        except KeyError:
            raise NotFound(address) from None

    async def list_domains(self) -> list[Domain]:
        self.calls += 1
        return [Domain(name) for name in self.domains]

    async def is_local_domain(self, name: str) -> bool:
        self.calls += 1
        return name.lower() in self.domains

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        self.calls += 1
        return [
            a for a in self.accounts.values() if domain is None or a.address.endswith("@" + domain)
        ]

    async def list_aliases(self) -> list[Alias]:
        self.calls += 1
        return list(self.aliases.values())
