"""Schema version 3: reference counts in their own table, carried over from version 2."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_helpers import account, body, to

from pillarbox.store.api import LocalTarget, MessageId, NotFound
from pillarbox.store.sqlite import SqliteStore, schema


def _with_subscriptions(path: Path) -> None:
    """Today's code, which builds the old versions here, keeps subscriptions (version 5)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(schema.SCHEMA_V5[0])
    finally:
        conn.close()


def _refs(path: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, refs FROM message_refs ORDER BY id").fetchall()
    finally:
        conn.close()


async def test_a_version_2_store_keeps_its_bodies_and_counts_after_migrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db"
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
        async with SqliteStore(path) as store:
            _with_subscriptions(path)
            jane = await account(store)
            shared = await store.deliver(
                to(LocalTarget(jane.id), LocalTarget(jane.id, "Archive"), remote=("b@r.test",))
            )
            single = await store.deliver(to(LocalTarget(jane.id), data=body("single")))
    async with SqliteStore(path) as store:
        assert _refs(path) == [(shared.message_id, 3), (single.message_id, 1)]
        inbox, archive = shared.entries
        await store.expunge(inbox.mailbox_id, [inbox.uid])
        await store.expunge(archive.mailbox_id, [archive.uid])
        assert await store.get_body(shared.message_id) == body()  # the queue still holds it
        await store.remove_queue_entry(shared.queued[0])
        await store.expunge(single.entries[0].mailbox_id, [single.entries[0].uid])
        for message_id in (shared.message_id, single.message_id):
            with pytest.raises(NotFound):
                await store.get_body(MessageId(message_id))
    assert _refs(path) == []


async def test_an_expunge_of_many_bodies_leaves_no_counts_behind(tmp_path: Path) -> None:
    path = tmp_path / "db"
    async with SqliteStore(path) as store:
        jane = await account(store)
        results = [await store.deliver(to(LocalTarget(jane.id))) for _ in range(5)]
        box = results[0].entries[0].mailbox_id
        await store.expunge(box, [r.entries[0].uid for r in results[:3]])
        assert _refs(path) == [(r.message_id, 1) for r in results[3:]]
        assert (await store.get_mailbox_by_id(box)).messages == 2


async def test_the_id_of_a_gone_message_is_never_given_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema version 4: a reader still holding a gone message's id (a POP3 maildrop) must
    not find another message (perhaps another account's) under it."""
    path = tmp_path / "db"
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
        async with SqliteStore(path) as store:
            _with_subscriptions(path)
            jane = await account(store)
            await store.deliver(to(LocalTarget(jane.id)))
            newest = await store.deliver(to(LocalTarget(jane.id), data=body("newest")))
    async with SqliteStore(path) as store:  # migrated to version 4: counting goes on
        for _ in range(2):
            entry = newest.entries[0]
            await store.expunge(entry.mailbox_id, [entry.uid])  # the newest is gone
            with pytest.raises(NotFound):
                await store.get_body(newest.message_id)
            again = await store.deliver(to(LocalTarget(jane.id), data=body("again")))
            assert again.message_id == newest.message_id + 1
            newest = again
