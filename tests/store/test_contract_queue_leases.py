"""Store contract: holding with a note, and releasing a dead worker's leases (delivery)."""

from __future__ import annotations

import datetime as dt

from store_helpers import body

from pillarbox.store.api import Delivery, DsnRecipient, Envelope, QueueId, Store

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=10)


async def queued(store: Store, count: int) -> list[QueueId]:
    recipients = tuple(DsnRecipient(f"r{i}@remote.test") for i in range(count))
    delivery = Delivery(body("q"), Envelope("jane@example.test"), remote=recipients, received_at=T0)
    return list((await store.deliver(delivery)).queued)


async def test_hold_with_a_note_records_it_and_drops_the_lease(store: Store) -> None:
    [qid] = await queued(store, 1)
    await store.claim_due("node-a/1", T0, LEASE, limit=1)
    await store.hold_queue_entry(qid, held=True, note="held for ETRN")
    entry = await store.get_queue_entry(qid)
    assert (entry.held, entry.last_result, entry.lease_owner) == (True, "held for ETRN", None)
    await store.hold_queue_entry(qid, held=False, note="released")
    # released at once: no lease left over to wait for
    [again] = await store.claim_due("node-a/2", T0, LEASE, limit=1)
    assert (again.id, again.last_result) == (qid, "released")


async def test_hold_without_a_note_keeps_the_last_result(store: Store) -> None:
    [qid] = await queued(store, 1)
    await store.reschedule_queue_entry(qid, T0, "451 4.3.0 later")
    await store.hold_queue_entry(qid, held=True)
    assert (await store.get_queue_entry(qid)).last_result == "451 4.3.0 later"


async def test_release_leases_frees_only_the_named_owners_entries(store: Store) -> None:
    ids = await queued(store, 3)
    await store.claim_due("node-a/old", T0, LEASE, limit=2)
    await store.claim_due("node_b/x", T0, LEASE, limit=1)
    assert await store.claim_due("node-a/new", T0, LEASE, limit=3) == []
    assert await store.release_leases("node-a/") == 2
    taken = await store.claim_due("node-a/new", T0, LEASE, limit=3)
    assert [e.id for e in taken] == ids[:2]
    # the prefix is literal: "_" and "%" are not wildcards
    assert await store.release_leases("nod_") == 0
    assert await store.release_leases("%") == 0
    assert await store.release_leases("node_b/") == 1
