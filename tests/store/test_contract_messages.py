"""Store contract: delivery, bodies, UIDs, MODSEQs, flags, expunge, copy, quota."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest
from store_helpers import account, body, to

from pillarbox.store.api import (
    INBOX,
    AccountId,
    LocalTarget,
    MailboxId,
    MessageId,
    NotFound,
    QuotaExceeded,
    Store,
    Uid,
)


async def test_deliver_to_several_mailboxes_stores_the_body_once(store: Store) -> None:
    jane = await account(store, "jane")
    john = await account(store, "john")
    await store.create_mailbox(jane.id, "Lists")
    data = body("shared", size=2048)
    result = await store.deliver(
        to(
            LocalTarget(jane.id),
            LocalTarget(jane.id, "Lists", frozenset({"\\Seen"})),
            LocalTarget(john.id),
            data=data,
        )
    )
    assert [(e.uid, e.size, e.message_id) for e in result.entries] == [
        (1, len(data), result.message_id)
    ] * 3
    assert result.entries[1].flags == frozenset({"\\Seen"})
    assert await store.get_body(result.message_id) == data
    lists = await store.get_mailbox(jane.id, "Lists")
    assert (lists.messages, lists.size, lists.uidnext) == (1, len(data), 2)
    assert await store.list_entries(lists.id) == [result.entries[1]]


async def test_uids_ascend_and_are_never_reused(store: Store) -> None:
    jane = await account(store)
    inbox = await store.get_mailbox(jane.id, INBOX)
    uids = [(await store.append(jane.id, INBOX, body(str(i)))).uid for i in range(3)]
    assert uids == [1, 2, 3]
    assert await store.expunge(inbox.id, [Uid(2), Uid(3), Uid(99)]) == [2, 3]
    entry = await store.append(jane.id, "inbox", body("after"))
    assert entry.uid == 4
    assert [e.uid for e in await store.list_entries(inbox.id)] == [1, 4]
    assert (await store.get_mailbox_by_id(inbox.id)).uidnext == 5


async def test_every_append_raises_highestmodseq(store: Store) -> None:
    jane = await account(store)
    before = await store.get_mailbox(jane.id, INBOX)
    first = await store.append(jane.id, INBOX, body())
    second = await store.append(jane.id, INBOX, body())
    after = await store.get_mailbox(jane.id, INBOX)
    assert before.highestmodseq < first.modseq < second.modseq == after.highestmodseq


async def test_append_keeps_flags_and_internaldate_with_its_zone(store: Store) -> None:
    jane = await account(store)
    zone = dt.timezone(dt.timedelta(hours=-7))
    when = dt.datetime(2024, 3, 1, 9, 30, 15, tzinfo=zone)
    entry = await store.append(jane.id, "Drafts", body(), frozenset({"\\Draft"}), when)
    [listed] = await store.list_entries(entry.mailbox_id)
    assert listed == entry
    assert listed.internaldate == when
    assert listed.internaldate.utcoffset() == dt.timedelta(hours=-7)
    assert listed.flags == frozenset({"\\Draft"})


async def test_store_flags_changes_only_what_differs(store: Store) -> None:
    jane = await account(store)
    a = await store.append(jane.id, INBOX, body(), frozenset({"\\Seen"}))
    b = await store.append(jane.id, INBOX, body())
    changed = await store.store_flags(
        a.mailbox_id, [a.uid, b.uid], frozenset({"\\Seen", "$Label1"}), frozenset()
    )
    assert [(e.uid, e.flags) for e in changed] == [
        (a.uid, frozenset({"\\Seen", "$Label1"})),
        (b.uid, frozenset({"\\Seen", "$Label1"})),
    ]
    box = await store.get_mailbox_by_id(a.mailbox_id)
    assert all(e.modseq == box.highestmodseq > b.modseq for e in changed)
    removed = await store.store_flags(a.mailbox_id, [a.uid], frozenset(), frozenset({"$Label1"}))
    assert [(e.uid, e.flags) for e in removed] == [(a.uid, frozenset({"\\Seen"}))]
    unchanged = await store.store_flags(a.mailbox_id, [a.uid], frozenset({"\\Seen"}), frozenset())
    assert unchanged == []
    after = await store.get_mailbox_by_id(a.mailbox_id)
    assert after.highestmodseq == removed[0].modseq
    entries = {e.uid: e for e in await store.list_entries(a.mailbox_id)}
    assert entries[b.uid].flags == frozenset({"\\Seen", "$Label1"})


async def test_expunge_raises_modseq_and_remembers_vanished_uids(store: Store) -> None:
    jane = await account(store)
    entries = [await store.append(jane.id, INBOX, body()) for _ in range(3)]
    box_id = entries[0].mailbox_id
    before = await store.get_mailbox_by_id(box_id)
    assert await store.expunge(box_id, [Uid(1), Uid(3)]) == [1, 3]
    after = await store.get_mailbox_by_id(box_id)
    assert after.highestmodseq > before.highestmodseq
    assert (after.messages, after.size) == (1, entries[1].size)
    assert await store.list_expunged(box_id, before.highestmodseq) == [
        (1, after.highestmodseq),
        (3, after.highestmodseq),
    ]
    assert await store.list_expunged(box_id, after.highestmodseq) == []
    assert await store.expunge(box_id, [Uid(1)]) == []
    assert (await store.get_mailbox_by_id(box_id)).highestmodseq == after.highestmodseq


async def test_expunge_only_deleted_removes_just_the_entries_flagged_deleted(
    store: Store,
) -> None:
    jane = await account(store)
    flags = [{"\\Deleted"}, {"\\Seen"}, {"\\Deleted", "\\Seen", "$Work"}, set(), {"$Deleted"}]
    entries = [await store.append(jane.id, INBOX, body(), frozenset(f)) for f in flags]
    box_id = entries[0].mailbox_id
    before = await store.get_mailbox_by_id(box_id)
    uids = [e.uid for e in entries]
    # Only the UIDs asked for: the \Deleted entry 3 is left when it is not among them.
    assert await store.expunge(box_id, uids[:2], only_deleted=True) == [uids[0]]
    await store.store_flags(box_id, [uids[3]], frozenset({"\\Deleted"}), frozenset())
    assert await store.expunge(box_id, uids, only_deleted=True) == [uids[2], uids[3]]
    left = await store.list_entries(box_id)
    assert [e.uid for e in left] == [uids[1], uids[4]]
    assert await store.list_expunged(box_id, before.highestmodseq) == [
        (uids[0], before.highestmodseq + 1),
        (uids[2], before.highestmodseq + 3),
        (uids[3], before.highestmodseq + 3),
    ]
    modseq = (await store.get_mailbox_by_id(box_id)).highestmodseq
    assert await store.expunge(box_id, uids, only_deleted=True) == []
    assert (await store.get_mailbox_by_id(box_id)).highestmodseq == modseq


async def test_a_body_goes_when_its_last_entry_goes(store: Store) -> None:
    jane = await account(store)
    result = await store.deliver(to(LocalTarget(jane.id), LocalTarget(jane.id, "Archive")))
    inbox, archive = result.entries
    await store.expunge(inbox.mailbox_id, [inbox.uid])
    assert await store.get_body(result.message_id) == body()
    await store.expunge(archive.mailbox_id, [archive.uid])
    with pytest.raises(NotFound):
        await store.get_body(result.message_id)


async def test_copy_shares_the_body_and_keeps_flags_and_date(store: Store) -> None:
    jane = await account(store)
    a = await store.append(jane.id, INBOX, body("a"), frozenset({"\\Flagged"}))
    b = await store.append(jane.id, INBOX, body("b"))
    archive = await store.get_mailbox(jane.id, "Archive")
    pairs = await store.copy_entries(a.mailbox_id, [b.uid, a.uid, Uid(77)], archive.id)
    assert [(src, new.uid) for src, new in pairs] == [(a.uid, 1), (b.uid, 2)]
    copy_a = pairs[0][1]
    assert (copy_a.message_id, copy_a.flags, copy_a.internaldate) == (
        a.message_id,
        a.flags,
        a.internaldate,
    )
    assert await store.list_entries(archive.id) == [new for _, new in pairs]
    assert len(await store.list_entries(a.mailbox_id)) == 2


async def test_move_expunges_the_source(store: Store) -> None:
    jane = await account(store)
    a = await store.append(jane.id, INBOX, body("a"))
    trash = await store.get_mailbox(jane.id, "Trash")
    [(source, moved)] = await store.copy_entries(a.mailbox_id, [a.uid], trash.id, move=True)
    assert (source, moved.message_id) == (a.uid, a.message_id)
    assert await store.list_entries(a.mailbox_id) == []
    assert await store.list_expunged(a.mailbox_id, a.modseq) != []
    assert await store.get_body(a.message_id) == body("a")


async def test_quota_refuses_the_whole_delivery(store: Store) -> None:
    jane = await account(store, "jane", quota=3000)
    john = await account(store, "john")
    await store.deliver(to(LocalTarget(jane.id), data=body(size=2000)))
    with pytest.raises(QuotaExceeded):
        await store.deliver(to(LocalTarget(john.id), LocalTarget(jane.id), data=body(size=1500)))
    assert (await store.get_mailbox(john.id, INBOX)).uidnext == 1
    assert (await store.get_mailbox(jane.id, INBOX)).messages == 1
    with pytest.raises(QuotaExceeded):  # two copies in one account count twice
        await store.deliver(
            to(LocalTarget(jane.id), LocalTarget(jane.id, "Archive"), data=body(size=600))
        )
    await store.deliver(to(LocalTarget(jane.id), data=body(size=1000)))
    with pytest.raises(QuotaExceeded):
        await store.append(jane.id, INBOX, body(size=10))


async def test_quota_applies_to_copy_but_not_to_move_within_the_account(store: Store) -> None:
    jane = await account(store, quota=2500)
    a = await store.append(jane.id, INBOX, body(size=2000))
    archive = await store.get_mailbox(jane.id, "Archive")
    with pytest.raises(QuotaExceeded):
        await store.copy_entries(a.mailbox_id, [a.uid], archive.id)
    assert await store.list_entries(archive.id) == []
    assert len(await store.copy_entries(a.mailbox_id, [a.uid], archive.id, move=True)) == 1


async def test_deliver_to_a_missing_mailbox_stores_nothing(store: Store) -> None:
    jane = await account(store)
    with pytest.raises(NotFound):
        await store.deliver(to(LocalTarget(jane.id), LocalTarget(jane.id, "Nowhere")))
    assert (await store.get_mailbox(jane.id, INBOX)).messages == 0
    with pytest.raises(NotFound):
        await store.append(jane.id, "nowhere", body())


async def test_a_failing_delivery_does_not_disturb_concurrent_ones(store: Store) -> None:
    jane = await account(store)
    results = await asyncio.gather(
        *(
            store.deliver(to(LocalTarget(jane.id, "Nowhere" if i == 5 else INBOX)))
            for i in range(10)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[5], NotFound)
    assert sum(not isinstance(r, BaseException) for r in results) == 9
    inbox = await store.get_mailbox(jane.id, INBOX)
    assert [e.uid for e in await store.list_entries(inbox.id)] == list(range(1, 10))


async def test_an_unreferenced_body_is_gone_for_every_reader(store: Store) -> None:
    jane = await account(store)
    result = await store.deliver(replace(to(LocalTarget(jane.id)), parsed=b"\x00tree"))
    kept = await store.append(jane.id, INBOX, body("kept"))
    await store.expunge(result.entries[0].mailbox_id, [result.entries[0].uid])
    with pytest.raises(NotFound):
        await store.get_body(result.message_id)
    with pytest.raises(NotFound):
        await store.get_message_cache(result.message_id)
    with pytest.raises(NotFound):
        await store.set_message_cache(result.message_id, b"x")
    found = await store.get_messages([result.message_id, kept.message_id])
    assert found == {kept.message_id: (body("kept"), None)}


async def test_parse_cache_is_kept_with_the_body(store: Store) -> None:
    jane = await account(store)
    result = await store.deliver(replace(to(LocalTarget(jane.id)), parsed=b"\x00tree"))
    assert await store.get_message_cache(result.message_id) == b"\x00tree"
    entry = await store.append(jane.id, INBOX, body())
    assert await store.get_message_cache(entry.message_id) is None
    await store.set_message_cache(entry.message_id, b"later")
    assert await store.get_message_cache(entry.message_id) == b"later"
    with pytest.raises(NotFound):
        await store.set_message_cache(MessageId(result.message_id + 100), b"x")


async def test_missing_things_raise_not_found(store: Store) -> None:
    jane = await account(store)
    inbox = await store.get_mailbox(jane.id, INBOX)
    missing = MailboxId(inbox.id + 1000)
    with pytest.raises(NotFound):
        await store.list_entries(missing)
    with pytest.raises(NotFound):
        await store.expunge(missing, [Uid(1)])
    with pytest.raises(NotFound):
        await store.store_flags(missing, [Uid(1)], frozenset({"\\Seen"}), frozenset())
    with pytest.raises(NotFound):
        await store.get_body(MessageId(12345))
    with pytest.raises(NotFound):
        await store.append(AccountId(jane.id + 1000), INBOX, body())
