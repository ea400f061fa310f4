"""`pillarbox queue flush|remove|hold|release` on a store with queued mail."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from pillarbox import cli
from pillarbox.delivery.retry import HELD_NOTE, RELEASED_NOTE
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore

T = TypeVar("T")


def store_run(data: Path, job: Callable[[SqliteStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = SqliteStore(data / "pillarbox.sqlite3")
        await store.open()
        try:
            return await job(store)
        finally:
            await store.close()

    return asyncio.run(main())


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pillarbox.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\nhostname = "mx.a.test"\n')
    return path


def queued(data: Path, *addresses: str) -> list[api.QueueId]:
    async def job(store: api.Store) -> list[api.QueueId]:
        remote = tuple(api.DsnRecipient(a) for a in addresses)
        body = b"Subject: x\r\n\r\nx\r\n"
        result = await store.deliver(api.Delivery(body, api.Envelope("a@a.test"), remote=remote))
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        for qid in result.queued:
            await store.reschedule_queue_entry(qid, later, "451 4.4.1 later")
        return list(result.queued)

    return store_run(data, job)


def entries(data: Path) -> dict[str, api.QueueEntry]:
    async def job(store: api.Store) -> dict[str, api.QueueEntry]:
        return {e.recipient.address: e for e in await store.list_queue()}

    return store_run(data, job)


def test_hold_release_remove_and_flush(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = config.parent / "data"
    data.mkdir()
    b1, b2, c1 = queued(data, "x@b.test", "y@b.test", "z@c.test")
    base = ["--config", str(config), "queue"]
    assert cli.main([*base, "hold", str(b1)]) == 0
    assert entries(data)["x@b.test"].held
    assert cli.main([*base, "release", str(b1)]) == 0
    released = entries(data)["x@b.test"]
    assert not released.held and released.last_result == RELEASED_NOTE
    assert cli.main([*base, "remove", str(c1)]) == 0
    assert "z@c.test" not in entries(data)
    assert cli.main([*base, "remove", "4242"]) == 1  # not found
    assert cli.main([*base, "hold", "x1"]) == 2  # usage
    now = dt.datetime.now(dt.UTC)
    store_run(data, lambda s: s.hold_queue_entry(b2, True, note=HELD_NOTE))
    capsys.readouterr()
    assert cli.main([*base, "flush", "B.test"]) == 0
    assert capsys.readouterr().out == "flushed 2 queued recipients for B.test\n"
    rows = entries(data)
    assert not rows["y@b.test"].held  # held for ETRN: released by a domain flush
    assert all(e.next_attempt <= now + dt.timedelta(seconds=5) for e in rows.values())
