"""Store contract: domains, accounts, aliases and mailboxes (every backend)."""

from __future__ import annotations

import pytest
from store_helpers import DOMAIN, HASH, account, to

from pillarbox.store.api import (
    DEFAULT_SPECIAL_USE,
    INBOX,
    AccountId,
    AlreadyExists,
    Domain,
    InUse,
    LocalTarget,
    NotFound,
    Store,
)

# -- domains ---------------------------------------------------------------------------


async def test_domains_are_stored_lower_case_and_matched_case_insensitively(store: Store) -> None:
    await store.add_domain("Example.TEST")
    await store.add_domain("other.test")
    assert await store.list_domains() == [Domain("example.test"), Domain("other.test")]
    assert await store.is_local_domain("EXAMPLE.test")
    assert not await store.is_local_domain("nowhere.test")


async def test_a_domain_is_added_once(store: Store) -> None:
    await store.add_domain("example.test")
    with pytest.raises(AlreadyExists):
        await store.add_domain("EXAMPLE.test")


async def test_removing_domains(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.remove_domain("nowhere.test")
    await account(store)
    with pytest.raises(InUse):
        await store.remove_domain(DOMAIN)
    await store.remove_account(f"jane@{DOMAIN}")
    await store.remove_domain(DOMAIN)
    assert await store.list_domains() == []


# -- accounts --------------------------------------------------------------------------


async def test_a_new_account_has_inbox_and_the_special_use_mailboxes(store: Store) -> None:
    jane = await account(store)
    boxes = {box.name: box for box in await store.list_mailboxes(jane.id)}
    assert set(boxes) == {INBOX} | {name for name, _ in DEFAULT_SPECIAL_USE}
    assert boxes[INBOX].special_use is None
    for name, attribute in DEFAULT_SPECIAL_USE:
        assert boxes[name].special_use == attribute
    assert all(box.subscribed and box.messages == 0 and box.uidnext == 1 for box in boxes.values())
    assert (await store.list_mailboxes(jane.id))[0].name == INBOX


async def test_accounts_are_found_by_address_and_id(store: Store) -> None:
    jane = await account(store, quota=5000)
    assert jane.address == f"jane@{DOMAIN}"
    assert jane.name == "Jane"
    assert jane.password_hash == HASH
    assert jane.quota == 5000
    assert await store.get_account(f"jane@{DOMAIN.upper()}") == jane
    assert await store.get_account_by_id(jane.id) == jane
    with pytest.raises(NotFound):
        await store.get_account(f"john@{DOMAIN}")


async def test_an_account_needs_a_local_domain_and_a_free_address(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.add_account("jane@nowhere.test", HASH)
    await account(store)
    with pytest.raises(AlreadyExists):
        await store.add_account(f"jane@{DOMAIN}", HASH)


async def test_list_accounts_by_domain(store: Store) -> None:
    await account(store, "jane")
    await account(store, "john")
    await store.add_domain("other.test")
    await store.add_account("ann@other.test", HASH)
    assert [a.address for a in await store.list_accounts()] == [
        "ann@other.test",
        f"jane@{DOMAIN}",
        f"john@{DOMAIN}",
    ]
    assert [a.address for a in await store.list_accounts("OTHER.test")] == ["ann@other.test"]


async def test_password_and_apop_secret_change(store: Store) -> None:
    await account(store)
    await store.set_password(f"jane@{DOMAIN}", "$argon2id$new")
    await store.set_apop_secret(f"jane@{DOMAIN}", "tanstaaf")
    jane = await store.get_account(f"jane@{DOMAIN}")
    assert (jane.password_hash, jane.apop_secret) == ("$argon2id$new", "tanstaaf")
    await store.set_apop_secret(f"jane@{DOMAIN}", None)
    assert (await store.get_account(f"jane@{DOMAIN}")).apop_secret is None
    with pytest.raises(NotFound):
        await store.set_password(f"nobody@{DOMAIN}", "$argon2id$new")


async def test_removing_an_account_removes_its_mailboxes_and_bodies(store: Store) -> None:
    jane = await account(store)
    result = await store.deliver(to(LocalTarget(jane.id)))
    await store.remove_account(jane.address)
    with pytest.raises(NotFound):
        await store.get_account(jane.address)
    with pytest.raises(NotFound):
        await store.get_mailbox_by_id(result.entries[0].mailbox_id)
    with pytest.raises(NotFound):
        await store.get_body(result.message_id)
    with pytest.raises(NotFound):
        await store.remove_account(jane.address)


# -- aliases ---------------------------------------------------------------------------


async def test_aliases_are_created_replaced_listed_and_removed(store: Store) -> None:
    await store.add_alias(f"Staff@{DOMAIN.upper()}", [f"jane@{DOMAIN}", "bob@remote.test"])
    alias = await store.get_alias(f"staff@{DOMAIN}")
    assert alias.address == f"Staff@{DOMAIN}"
    assert alias.targets == (f"jane@{DOMAIN}", "bob@remote.test")
    await store.add_alias(f"staff@{DOMAIN}", [":include:/etc/staff"])
    assert (await store.get_alias(f"STAFF@{DOMAIN}")).targets == (":include:/etc/staff",)
    await store.add_alias("postmaster", ["root"])  # bare: every local domain
    assert [a.address for a in await store.list_aliases()] == ["postmaster", f"Staff@{DOMAIN}"]
    await store.remove_alias(f"staff@{DOMAIN}")
    with pytest.raises(NotFound):
        await store.get_alias(f"staff@{DOMAIN}")
    with pytest.raises(NotFound):
        await store.remove_alias(f"staff@{DOMAIN}")


# -- mailboxes -------------------------------------------------------------------------


async def test_inbox_is_case_insensitive_other_names_are_exact(store: Store) -> None:
    jane = await account(store)
    inbox = await store.get_mailbox(jane.id, "inbox")
    assert inbox.name == INBOX
    assert await store.get_mailbox(jane.id, "InBox") == inbox
    await store.create_mailbox(jane.id, "Lists")
    with pytest.raises(NotFound):
        await store.get_mailbox(jane.id, "lists")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(jane.id, "Inbox")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(jane.id, "Lists")
    child = await store.create_mailbox(jane.id, "inbox/Receipts")
    assert child.name == "INBOX/Receipts"


async def test_new_mailboxes_get_distinct_uidvalidity(store: Store) -> None:
    jane = await account(store)
    first = await store.create_mailbox(jane.id, "A", special_use="\\Flagged")
    second = await store.create_mailbox(jane.id, "B")
    boxes = await store.list_mailboxes(jane.id)
    assert len({box.uidvalidity for box in boxes}) == len(boxes)
    assert first.special_use == "\\Flagged"
    assert (first.uidnext, first.highestmodseq) == (1, first.highestmodseq)
    assert await store.get_mailbox_by_id(second.id) == second
    with pytest.raises(NotFound):
        await store.create_mailbox(AccountId(jane.id + 1000), "C")


async def test_rename_moves_children(store: Store) -> None:
    jane = await account(store)
    work = await store.create_mailbox(jane.id, "Work")
    await store.create_mailbox(jane.id, "Work/2024")
    await store.create_mailbox(jane.id, "Workshop")
    renamed = await store.rename_mailbox(work.id, "Job")
    assert (renamed.id, renamed.name, renamed.uidvalidity) == (work.id, "Job", work.uidvalidity)
    names = {box.name for box in await store.list_mailboxes(jane.id)}
    assert {"Job", "Job/2024", "Workshop"} <= names
    assert not {"Work", "Work/2024"} & names
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(renamed.id, "Trash")
    await store.rename_mailbox(renamed.id, "Job/Old")  # into one of its own inferiors
    names = {box.name for box in await store.list_mailboxes(jane.id)}
    assert {"Job/Old", "Job/Old/2024"} <= names
    assert not {"Job", "Job/2024", "Job/Old/Old"} & names


async def test_renaming_inbox_moves_its_messages_and_leaves_an_empty_inbox(store: Store) -> None:
    jane = await account(store)
    inbox = await store.get_mailbox(jane.id, INBOX)
    await store.deliver(to(LocalTarget(jane.id)))
    old = await store.rename_mailbox(inbox.id, "Old")
    assert (old.name, old.messages) == ("Old", 1)
    new_inbox = await store.get_mailbox(jane.id, INBOX)
    assert new_inbox.id != inbox.id
    assert new_inbox.messages == 0
    assert new_inbox.uidvalidity != inbox.uidvalidity


async def test_delete_mailbox(store: Store) -> None:
    jane = await account(store)
    inbox = await store.get_mailbox(jane.id, INBOX)
    with pytest.raises(InUse):
        await store.delete_mailbox(inbox.id)
    box = await store.create_mailbox(jane.id, "Old")
    result = await store.deliver(to(LocalTarget(jane.id, "Old")))
    await store.delete_mailbox(box.id)
    with pytest.raises(NotFound):
        await store.get_mailbox(jane.id, "Old")
    with pytest.raises(NotFound):
        await store.get_body(result.message_id)
    with pytest.raises(NotFound):
        await store.delete_mailbox(box.id)


async def test_subscription(store: Store) -> None:
    jane = await account(store)
    box = await store.create_mailbox(jane.id, "News")
    assert not box.subscribed
    assert await store.set_subscription(jane.id, "News", True)
    assert not await store.set_subscription(jane.id, "News", True)  # no change
    assert (await store.get_mailbox_by_id(box.id)).subscribed
    assert await store.set_subscription(jane.id, "News", False)
    assert not await store.set_subscription(jane.id, "News", False)
    assert not (await store.get_mailbox_by_id(box.id)).subscribed


async def test_subscriptions_are_names_that_outlive_their_mailboxes(store: Store) -> None:
    """RFC 3501 §6.3.6: a name may be subscribed without a mailbox, and a deleted
    mailbox's name stays subscribed; a rename takes the subscriptions under it along."""
    jane = await account(store)
    base = set(await store.list_subscriptions(jane.id))  # the new account's defaults
    assert await store.set_subscription(jane.id, "Later", True)  # no such mailbox (yet)
    box = await store.create_mailbox(jane.id, "Later")
    assert box.subscribed
    await store.delete_mailbox(box.id)
    assert "Later" in await store.list_subscriptions(jane.id)
    work = await store.create_mailbox(jane.id, "Work", subscribed=True)
    await store.create_mailbox(jane.id, "Work/Reports", subscribed=True)
    await store.set_subscription(jane.id, "Work/Gone", True)
    await store.rename_mailbox(work.id, "Job")
    assert set(await store.list_subscriptions(jane.id)) - base == {
        "Later",
        "Job",
        "Job/Reports",
        "Job/Gone",
    }
    inbox = await store.get_mailbox(jane.id, INBOX)
    await store.rename_mailbox(inbox.id, "Old")  # INBOX's subscription stays with INBOX
    assert INBOX in await store.list_subscriptions(jane.id)
    assert (await store.get_mailbox(jane.id, INBOX)).subscribed
