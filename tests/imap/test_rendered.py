"""The shared FETCH render cache, FETCH plans, and the reads that FETCH/STORE leave out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pillarbox.imap import commands as cmd
from pillarbox.imap.fetch import Plan
from pillarbox.imap.rendered import ENTRY_OVERHEAD, RENDER_VALUE_MAX, RenderCache
from pillarbox.store.api import INBOX, MailboxId, Uid
from tests.imap.harness import Client, Harness, run

HEADERS = "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]"
KEY = (MailboxId(1), 7, Uid(3))


def test_cache_keeps_values_per_message_and_shape() -> None:
    cache = RenderCache()
    cache.put(KEY, "shape", [b"a", b"b"])
    assert cache.get(KEY, "shape") == [b"a", b"b"]
    assert cache.get(KEY, "other") is None
    assert cache.get((MailboxId(1), 8, Uid(3)), "shape") is None  # another UIDVALIDITY


def test_cache_drops_the_least_recently_used_beyond_its_budget() -> None:
    cache = RenderCache(budget=3 * (10 + ENTRY_OVERHEAD))
    for uid in range(1, 4):
        cache.put((MailboxId(1), 7, Uid(uid)), "s", [b"x" * 10])
    assert cache.get((MailboxId(1), 7, Uid(1)), "s") is not None  # now the most recent
    cache.put((MailboxId(1), 7, Uid(4)), "s", [b"x" * 10])
    assert cache.get((MailboxId(1), 7, Uid(2)), "s") is None
    assert cache.get((MailboxId(1), 7, Uid(1)), "s") is not None
    assert len(cache) == 3


def test_cache_refuses_large_values() -> None:
    cache = RenderCache()
    cache.put(KEY, "s", [b"x" * (RENDER_VALUE_MAX + 1)])
    assert cache.get(KEY, "s") is None


def test_plan_writes_lines_in_item_order() -> None:
    items = (cmd.Uid(), cmd.BodySection(cmd.Section(), peek=True), cmd.Rfc822Size())
    plan = Plan.of(items)
    assert not plan.uid_only and plan.content == (items[1],)
    only = Plan.of(items[:2])
    assert only.uid_only
    assert only.uid_line(2, 9, [b"{2}\r\nhi"]) == b"* 2 FETCH (UID 9 BODY[] {2}\r\nhi)\r\n"


async def _login(harness: Harness) -> Client:
    client = harness.client()
    client.greet()
    await client.line("a LOGIN jane@example.test secret")
    await client.line("b SELECT INBOX")
    return client


def test_header_fetch_is_rendered_once_for_all_sessions(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        for _ in range(3):
            await harness.append()
        first, second = await _login(harness), await _login(harness)
        out = await first.line(f"c FETCH 1:3 (UID {HEADERS})")
        assert out.count(b"FETCH (UID") == 3 and b"Subject: Message 2\r\n" in out
        assert len(harness.context.rendered) == 3
        loads: list[object] = []
        real = harness.store.get_messages

        async def counted(ids: Any) -> Any:
            loads.append(ids)
            return await real(ids)

        harness.store.get_messages = counted  # type: ignore[method-assign]
        again = await second.line(f"c FETCH 1:3 (UID {HEADERS})")
        assert again == out
        assert loads == []  # no body loaded: every value came from the cache

    run(tmp_path, check)


def test_cached_uid_fetch_answers_without_the_store_and_flags_stay_current(
    tmp_path: Path,
) -> None:
    async def check(harness: Harness) -> None:
        uid = await harness.append()
        client = await _login(harness)
        first = await client.line(f"c UID FETCH {uid} BODY.PEEK[]")
        assert b"Body of message 1." in first
        box = await harness.inbox_id()
        await harness.store.store_flags(box, [uid], frozenset({"\\Flagged"}), frozenset())
        second = await client.line(f"d UID FETCH {uid} BODY.PEEK[]")
        # The same body, then the news of the flag change another session made.
        assert second.startswith(first.split(b"c OK")[0])
        assert b"FLAGS (\\Flagged \\Recent)" in second and second.endswith(
            b"d OK FETCH completed\r\n"
        )
        flags = await client.line(f"e UID FETCH {uid} (FLAGS BODY.PEEK[])")
        assert b"\\Flagged" in flags and b"Body of message 1." in flags

    run(tmp_path, check)


def test_silent_store_reports_nothing_but_changes_the_flags(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        uid = await harness.append()
        client = await _login(harness)
        out = await client.line(f"c UID STORE {uid} +FLAGS.SILENT (\\Flagged)")
        assert out == b"c OK STORE completed\r\n"
        entries = await harness.store.get_entries(await harness.inbox_id(), [uid])
        assert entries[0].flags == frozenset({"\\Flagged"})
        out = await client.line(f"d UID STORE {uid} -FLAGS.SILENT (\\Flagged)")
        assert out == b"d OK STORE completed\r\n"
        entries = await harness.store.get_entries(await harness.inbox_id(), [uid])
        assert entries[0].flags == frozenset()

    run(tmp_path, check)


def test_entries_of_runs_with_gaps_and_scattered_uids(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        for _ in range(10):
            await harness.append(INBOX)
        box = await harness.inbox_id()
        await harness.store.expunge(box, [Uid(4), Uid(5)])
        store = harness.store

        async def uids(asked: list[int]) -> list[int]:
            return [e.uid for e in await store.get_entries(box, [Uid(u) for u in asked])]

        assert await uids([2, 3, 4]) == [2, 3]  # a run, one of them gone
        assert await uids([3, 6, 7, 8]) == [3, 6, 7, 8]  # a run with a gap
        assert await uids([8, 3, 6]) == [3, 6, 8]  # any order in, UID order out
        assert await uids([1, 10]) == [1, 10]  # scattered
        assert await uids([]) == []

    run(tmp_path, check)
