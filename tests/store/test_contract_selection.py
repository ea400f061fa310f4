"""Store contract: what an IMAP selected mailbox reads (snapshots, changes, \\Recent)."""

from __future__ import annotations

from store_helpers import account, body

from pillarbox.store.api import INBOX, MessageId, ModSeq, Store, Uid


async def test_snapshot_counts_unseen_recent_and_flags(store: Store) -> None:
    jane = await account(store)
    await store.append(jane.id, INBOX, body("a"), frozenset({"\\Seen"}))
    await store.append(jane.id, INBOX, body("b"), frozenset({"$Label1"}))
    await store.append(jane.id, INBOX, body("c"))
    inbox = await store.get_mailbox(jane.id, INBOX)
    snap = await store.mailbox_snapshot(inbox.id)
    assert snap.uids == (1, 2, 3)
    assert (snap.unseen, snap.first_unseen) == (2, 2)
    assert snap.flags == frozenset({"\\Seen", "$Label1"})
    assert (snap.recent_mark, snap.recent) == (0, 3)
    lean = await store.mailbox_snapshot(inbox.id, with_uids=False)
    assert lean.uids == () and lean.unseen == 2


async def test_recent_is_claimed_once(store: Store) -> None:
    jane = await account(store)
    for text in "abc":
        await store.append(jane.id, INBOX, body(text))
    inbox = await store.get_mailbox(jane.id, INBOX)
    assert await store.claim_recent(inbox.id, Uid(3)) == 0
    assert await store.claim_recent(inbox.id, Uid(3)) == 3
    assert (await store.mailbox_snapshot(inbox.id)).recent == 0
    await store.append(jane.id, INBOX, body("d"))
    assert (await store.mailbox_snapshot(inbox.id)).recent == 1
    assert await store.claim_recent(inbox.id, Uid(4)) == 3


async def test_changes_since_reports_appends_flags_and_expunges(store: Store) -> None:
    jane = await account(store)
    for text in "abc":
        await store.append(jane.id, INBOX, body(text))
    inbox = await store.get_mailbox(jane.id, INBOX)
    since = inbox.highestmodseq
    assert (await store.changes_since(inbox.id, since)).changed == ()
    await store.store_flags(inbox.id, [Uid(1)], frozenset({"\\Flagged"}), frozenset())
    await store.expunge(inbox.id, [Uid(2)])
    await store.append(jane.id, INBOX, body("d"))
    changes = await store.changes_since(inbox.id, since)
    assert [(e.uid, e.flags) for e in changes.changed] == [
        (1, frozenset({"\\Flagged"})),
        (4, frozenset()),
    ]
    assert changes.expunged == (2,)
    assert changes.mailbox.highestmodseq > since
    later = await store.changes_since(inbox.id, ModSeq(changes.mailbox.highestmodseq))
    assert later.changed == () and later.expunged == ()


async def test_get_entries_returns_only_existing_uids(store: Store) -> None:
    jane = await account(store)
    for text in "ab":
        await store.append(jane.id, INBOX, body(text))
    inbox = await store.get_mailbox(jane.id, INBOX)
    found = await store.get_entries(inbox.id, [Uid(2), Uid(9), Uid(1)])
    assert [e.uid for e in found] == [1, 2]


async def test_search_flags_matches_present_and_absent_flags(store: Store) -> None:
    jane = await account(store)
    await store.append(jane.id, INBOX, body("a"), frozenset({"\\Seen", "$Work"}))
    await store.append(jane.id, INBOX, body("b"), frozenset({"\\Seen"}))
    await store.append(jane.id, INBOX, body("c"), frozenset({"$Work"}))
    inbox = await store.get_mailbox(jane.id, INBOX)
    assert await store.search_flags(inbox.id, frozenset(), frozenset({"\\Seen"})) == [3]
    assert await store.search_flags(inbox.id, frozenset({"$Work"}), frozenset()) == [1, 3]
    both = await store.search_flags(inbox.id, frozenset({"$Work", "\\Seen"}), frozenset())
    assert both == [1]
    # A flag name is matched whole, never as a part of another one.
    assert await store.search_flags(inbox.id, frozenset({"$Wor"}), frozenset()) == []


async def test_get_messages_reads_bodies_and_caches_together(store: Store) -> None:
    jane = await account(store)
    first = await store.append(jane.id, INBOX, body("a"), parsed=b"tree-a")
    second = await store.append(jane.id, INBOX, body("b"))
    found = await store.get_messages([first.message_id, second.message_id, MessageId(999)])
    assert found == {
        first.message_id: (body("a"), b"tree-a"),
        second.message_id: (body("b"), None),
    }


async def test_an_append_can_claim_recent_in_its_own_transaction(store: Store) -> None:
    jane = await account(store)
    await store.append(jane.id, INBOX, body("a"))
    inbox = await store.get_mailbox(jane.id, INBOX)
    assert await store.claim_recent(inbox.id, Uid(1)) == 0
    await store.append(jane.id, INBOX, body("b"))  # nobody claimed it yet
    entry, mark = await store.append_claiming_recent(jane.id, INBOX, body("c"))
    assert (entry.uid, mark) == (3, 1)  # UIDs 2 and 3 are the appender's
    assert (await store.mailbox_snapshot(inbox.id)).recent == 0
    assert await store.claim_recent(inbox.id, Uid(3)) == 3
    assert [e.uid for e in await store.list_entries(inbox.id)] == [1, 2, 3]
