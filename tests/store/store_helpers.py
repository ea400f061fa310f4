"""Small builders shared by the store tests."""

from __future__ import annotations

from pillarbox.store.api import (
    Account,
    Delivery,
    DsnRecipient,
    Envelope,
    LocalTarget,
    Store,
)

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
DOMAIN = "example.test"


def body(text: str = "hello", size: int = 0) -> bytes:
    head = f"From: a@remote.test\r\nSubject: {text}\r\n\r\n".encode()
    return head + b"x" * max(0, size - len(head))


async def account(store: Store, local: str = "jane", quota: int = 0) -> Account:
    if not await store.is_local_domain(DOMAIN):
        await store.add_domain(DOMAIN)
    return await store.add_account(f"{local}@{DOMAIN}", HASH, name=local.title(), quota=quota)


def to(*targets: LocalTarget, data: bytes | None = None, remote: tuple[str, ...] = ()) -> Delivery:
    return Delivery(
        body=body() if data is None else data,
        envelope=Envelope(sender="a@remote.test"),
        local=targets,
        remote=tuple(DsnRecipient(address) for address in remote),
    )
