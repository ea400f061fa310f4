"""Store contract: the outbound queue (rows, DSN parameters, leases) and the change feed."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from store_helpers import account, body

from pillarbox.store.api import (
    INBOX,
    Change,
    ChangeDetail,
    ChangeFeed,
    Delivery,
    DsnRecipient,
    Envelope,
    LocalTarget,
    MailboxId,
    ModSeq,
    NotFound,
    QueueId,
    QuotaExceeded,
    Store,
    Uid,
)

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def outbound(*recipients: DsnRecipient, local: tuple[LocalTarget, ...] = ()) -> Delivery:
    return Delivery(
        body=body("out"),
        envelope=Envelope(
            sender="jane@example.test", ret="HDRS", envid="QQ314159", body="8BITMIME", smtputf8=True
        ),
        local=local,
        remote=recipients,
        received_at=T0,
    )


async def queued(store: Store, count: int) -> list[QueueId]:
    recipients = [DsnRecipient(f"r{i}@remote{i % 2}.test") for i in range(count)]
    return list((await store.deliver(outbound(*recipients))).queued)


async def test_deliver_queues_one_row_per_remote_recipient_with_dsn_parameters(
    store: Store,
) -> None:
    full = DsnRecipient("bob@remote.test", ("SUCCESS", "DELAY"), "rfc822;bob@remote.test")
    bare = DsnRecipient("ann@remote.test")
    result = await store.deliver(outbound(full, bare))
    assert len(result.queued) == 2
    rows = await store.list_queue()
    assert [row.id for row in rows] == list(result.queued)
    first = rows[0]
    assert first.recipient == full
    assert rows[1].recipient == bare
    assert first.envelope == outbound().envelope
    assert (first.message_id, first.size) == (result.message_id, len(body("out")))
    assert (first.created, first.next_attempt) == (T0, T0)
    assert (first.attempts, first.last_result, first.held) == (0, "", False)
    assert (first.lease_owner, first.lease_until) == (None, None)
    assert await store.get_queue_entry(first.id) == first


async def test_a_queued_body_stays_until_its_last_row_is_finished(store: Store) -> None:
    jane = await account(store)
    result = await store.deliver(
        outbound(
            DsnRecipient("a@remote.test"),
            DsnRecipient("b@remote.test"),
            local=(LocalTarget(jane.id),),
        )
    )
    entry = result.entries[0]
    await store.expunge(entry.mailbox_id, [entry.uid])
    await store.finish_queue_entry(result.queued[0])
    assert await store.get_body(result.message_id) == body("out")
    await store.remove_queue_entry(result.queued[1])
    with pytest.raises(NotFound):
        await store.get_body(result.message_id)
    assert await store.list_queue() == []


async def test_claim_due_leases_entries_to_one_owner(store: Store) -> None:
    ids = await queued(store, 3)
    claimed = await store.claim_due("worker-a", T0, 5 * MINUTE, limit=2)
    assert [e.id for e in claimed] == ids[:2]
    assert all(e.lease_owner == "worker-a" and e.lease_until == T0 + 5 * MINUTE for e in claimed)
    later = await store.claim_due("worker-b", T0 + MINUTE, 5 * MINUTE, limit=10)
    assert [e.id for e in later] == ids[2:]
    assert await store.claim_due("worker-c", T0 + 2 * MINUTE, 5 * MINUTE, limit=10) == []
    # worker-a died: its lease runs out and another worker takes the entries over.
    taken = await store.claim_due("worker-c", T0 + 5 * MINUTE, 5 * MINUTE, limit=10)
    assert [e.id for e in taken] == ids[:2]
    assert {e.lease_owner for e in taken} == {"worker-c"}


async def test_entries_not_yet_due_or_held_are_not_claimed(store: Store) -> None:
    ids = await queued(store, 3)
    assert await store.claim_due("w", T0 - MINUTE, MINUTE, limit=10) == []
    await store.hold_queue_entry(ids[0], held=True)
    assert (await store.get_queue_entry(ids[0])).held
    assert [e.id for e in await store.claim_due("w", T0, MINUTE, limit=10)] == ids[1:]
    await store.hold_queue_entry(ids[0], held=False)
    assert [e.id for e in await store.claim_due("w", T0, MINUTE, limit=10)] == ids[:1]


async def test_reschedule_counts_the_attempt_and_releases_the_lease(store: Store) -> None:
    [qid] = await queued(store, 1)
    await store.claim_due("w", T0, MINUTE, limit=1)
    entry = await store.reschedule_queue_entry(qid, T0 + 15 * MINUTE, "451 4.3.0 try later")
    assert (entry.attempts, entry.next_attempt, entry.last_result) == (
        1,
        T0 + 15 * MINUTE,
        "451 4.3.0 try later",
    )
    assert (entry.lease_owner, entry.lease_until) == (None, None)
    assert await store.claim_due("w", T0 + 14 * MINUTE, MINUTE, limit=1) == []
    [again] = await store.claim_due("w", T0 + 15 * MINUTE, MINUTE, limit=1)
    assert again.id == qid


async def test_flush_makes_entries_due_now(store: Store) -> None:
    ids = await queued(store, 4)
    for qid in ids:
        await store.reschedule_queue_entry(qid, T0 + 60 * MINUTE, "451")
    await store.hold_queue_entry(ids[2], held=True)
    assert await store.flush_queue("REMOTE0.test", now=T0) == 1  # r0; r2 is held
    assert [e.id for e in await store.claim_due("w", T0, MINUTE, limit=10)] == [ids[0]]
    assert await store.flush_queue(now=T0) == 3
    assert [e.id for e in await store.claim_due("w", T0, MINUTE, limit=10)] == [ids[1], ids[3]]


async def test_missing_queue_entries_raise_not_found(store: Store) -> None:
    missing = QueueId(4242)
    with pytest.raises(NotFound):
        await store.get_queue_entry(missing)
    with pytest.raises(NotFound):
        await store.remove_queue_entry(missing)
    with pytest.raises(NotFound):
        await store.finish_queue_entry(missing)
    with pytest.raises(NotFound):
        await store.hold_queue_entry(missing, held=True)
    with pytest.raises(NotFound):
        await store.reschedule_queue_entry(missing, T0, "")


# -- change feed -----------------------------------------------------------------------


async def next_change(feed: ChangeFeed) -> Change:
    return await asyncio.wait_for(feed.get(), timeout=5)


async def expect_change(store: Store, feed: ChangeFeed, mailbox_id: MailboxId) -> Change:
    """The next change names the mailbox at its HIGHESTMODSEQ, and its detail (if the backend
    gives one) is exactly what `changes_since` reports of that MODSEQ."""
    change = await next_change(feed)
    box = await store.get_mailbox_by_id(mailbox_id)
    assert (change.mailbox_id, change.modseq) == (mailbox_id, box.highestmodseq)
    if change.detail is not None:
        read = await store.changes_since(mailbox_id, ModSeq(change.modseq - 1))
        assert change.detail == ChangeDetail(
            box.uidvalidity, box.uidnext, read.changed, read.expunged
        )
    return change


async def test_the_feed_announces_appends_flag_changes_and_expunges(store: Store) -> None:
    jane = await account(store)
    feed = store.subscribe(jane.id)
    entry = await store.append(jane.id, INBOX, body())
    assert (await expect_change(store, feed, entry.mailbox_id)).modseq == entry.modseq
    other = await store.append(jane.id, INBOX, body())
    assert (await expect_change(store, feed, entry.mailbox_id)).modseq == other.modseq
    flagged = await store.store_flags(
        entry.mailbox_id, [entry.uid, other.uid], frozenset({"\\Seen"}), frozenset()
    )
    change = await expect_change(store, feed, entry.mailbox_id)
    assert change.modseq == flagged[0].modseq
    await store.expunge(entry.mailbox_id, [entry.uid])
    change = await expect_change(store, feed, entry.mailbox_id)
    if change.detail is not None:
        assert change.detail.expunged == (entry.uid,)
    feed.close()


async def test_the_feed_is_per_account_and_silent_about_failures(store: Store) -> None:
    jane = await account(store, "jane", quota=10)
    john = await account(store, "john")
    jane_feed, john_feed = store.subscribe(jane.id), store.subscribe(john.id)
    with pytest.raises(QuotaExceeded):
        await store.append(jane.id, INBOX, body())
    await store.store_flags(
        (await store.get_mailbox(jane.id, INBOX)).id, [Uid(1)], frozenset({"x"}), frozenset()
    )
    entry = await store.append(john.id, INBOX, body())
    assert (await expect_change(store, john_feed, entry.mailbox_id)).modseq == entry.modseq
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(jane_feed.get(), timeout=0.1)
    john_feed.close()
    await store.append(john.id, INBOX, body())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(john_feed.get(), timeout=0.1)
    jane_feed.close()


async def test_every_subscriber_gets_the_change(store: Store) -> None:
    jane = await account(store)
    feeds = [store.subscribe(jane.id) for _ in range(3)]
    entry = await store.append(jane.id, "Sent", body())
    for feed in feeds:
        assert (await expect_change(store, feed, entry.mailbox_id)).modseq == entry.modseq
        feed.close()
