"""The per-mailbox change log: one store read per commit, shared by every session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pillarbox.imap.changelog import ChangeReads
from pillarbox.store.api import ModSeq, NotFound, Uid
from tests.imap.harness import Harness, run


def counting(harness: Harness) -> list[int]:
    """Count the store's changes_since reads (the since of each)."""
    calls: list[int] = []
    real = harness.store.changes_since

    async def counted(mailbox_id: Any, since: Any) -> Any:
        calls.append(since)
        return await real(mailbox_id, since)

    harness.store.changes_since = counted  # type: ignore[method-assign]
    return calls


def test_sessions_behind_by_different_amounts_share_one_read(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        await harness.append()
        box = await harness.store.get_mailbox(harness.account.id, "INBOX")
        reads = ChangeReads(harness.store)
        start = box.highestmodseq
        await reads.changes(box.id, start, start, box.uidvalidity)  # the log begins here
        await harness.append()
        middle = (await harness.store.get_mailbox_by_id(box.id)).highestmodseq
        await reads.changes(box.id, start, middle, box.uidvalidity)  # the log learns UID 2
        await harness.store.store_flags(box.id, [Uid(1)], frozenset({"\\Seen"}), frozenset())
        await harness.store.expunge(box.id, [Uid(2)])
        top = (await harness.store.get_mailbox_by_id(box.id)).highestmodseq
        calls = counting(harness)
        early, late = await asyncio.gather(
            reads.changes(box.id, start, top, box.uidvalidity),
            reads.changes(box.id, middle, top, box.uidvalidity),
        )
        assert len(calls) == 1
        direct = await harness.store.changes_since(box.id, start)
        assert early == direct  # the log answers as the store would
        assert [e.uid for e in late.changed] == [1]  # only what changed after `middle`
        assert Uid(2) in late.expunged
        assert late.mailbox.highestmodseq == top

    run(tmp_path, check)


def test_a_poll_reads_the_store_even_when_the_log_seems_current(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        await harness.append()
        box = await harness.store.get_mailbox(harness.account.id, "INBOX")
        reads = ChangeReads(harness.store)
        top = box.highestmodseq
        await reads.changes(box.id, top, top, box.uidvalidity)
        calls = counting(harness)
        await reads.changes(box.id, top, top, box.uidvalidity)
        assert calls == []  # current as far as the feed said: no read
        await reads.changes(box.id, top, None, box.uidvalidity)
        assert calls == [top]

    run(tmp_path, check)


def test_a_session_behind_the_log_reads_the_store_itself(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        await harness.append()
        box = await harness.store.get_mailbox(harness.account.id, "INBOX")
        reads = ChangeReads(harness.store)
        top = box.highestmodseq
        await reads.changes(box.id, top, top, box.uidvalidity)
        calls = counting(harness)
        old = await reads.changes(box.id, ModSeq(0), top, box.uidvalidity)
        assert calls == [0] and [e.uid for e in old.changed] == [1]

    run(tmp_path, check)


def test_a_recreated_mailbox_is_not_the_selected_one(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        box = await harness.store.create_mailbox(harness.account.id, "Work")
        reads = ChangeReads(harness.store)
        top = box.highestmodseq
        await reads.changes(box.id, top, top, box.uidvalidity)
        with pytest.raises(NotFound):
            await reads.changes(box.id, top, None, box.uidvalidity + 1)

    run(tmp_path, check)


def test_changes_from_the_feed_extend_the_log_without_a_read(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        await harness.append()
        box = await harness.store.get_mailbox(harness.account.id, "INBOX")
        reads = ChangeReads(harness.store)
        feed = harness.store.subscribe(harness.account.id)
        start = box.highestmodseq
        await reads.changes(box.id, start, start, box.uidvalidity)
        await harness.append()
        await harness.store.store_flags(box.id, [Uid(1)], frozenset({"\\Seen"}), frozenset())
        await harness.store.expunge(box.id, [Uid(2)])
        calls = counting(harness)
        offered = []
        while (change := feed.get_nowait()) is not None:
            reads.offer(change)
            offered.append(change.modseq)
        top = (await harness.store.get_mailbox_by_id(box.id)).highestmodseq
        assert offered == [start + 1, start + 2, start + 3] and top == start + 3
        news = await reads.changes(box.id, start, top, box.uidvalidity)
        assert calls == []  # the feed's details answered
        direct = await harness.store.changes_since(box.id, start)
        assert (news.changed, news.expunged) == (direct.changed, direct.expunged)
        assert (news.mailbox.highestmodseq, news.mailbox.uidnext) == (top, direct.mailbox.uidnext)
        calls.clear()
        # A change the log cannot join (a gap before it) is left for a read.
        await harness.store.store_flags(box.id, [Uid(1)], frozenset({"a"}), frozenset())
        await harness.store.store_flags(box.id, [Uid(1)], frozenset({"b"}), frozenset())
        feed.get_nowait()
        last = feed.get_nowait()
        assert last is not None
        reads.offer(last)
        latest = await reads.changes(box.id, start, last.modseq, box.uidvalidity)
        assert calls == [top]
        assert latest.changed == (await harness.store.changes_since(box.id, start)).changed
        feed.close()

    run(tmp_path, check)
