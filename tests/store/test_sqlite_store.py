"""SQLite backend specifics: group commit, durability across a crash, schema migrations."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from store_helpers import DOMAIN, HASH, account, body, to

from pillarbox.store.api import (
    INBOX,
    AlreadyExists,
    LocalTarget,
    StoreUnavailable,
    Uid,
)
from pillarbox.store.sqlite import SqliteStore, schema
from pillarbox.store.sqlite.writer import translate

SRC = Path(__file__).resolve().parents[2] / "src"


async def test_concurrent_deliveries_share_commits(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db") as store:
        jane = await account(store)
        commits, jobs = store.stats.commits, store.stats.jobs
        results = await asyncio.gather(
            *(store.deliver(to(LocalTarget(jane.id), data=body(size=2048))) for _ in range(50))
        )
        assert sorted(r.entries[0].uid for r in results) == list(range(1, 51))
        assert store.stats.jobs - jobs == 50
        assert store.stats.commits - commits <= 10


async def test_writes_survive_reopening_and_uids_are_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    async with SqliteStore(path) as store:
        jane = await account(store)
        entry = await store.append(jane.id, INBOX, body())
        await store.expunge(entry.mailbox_id, [entry.uid])
    async with SqliteStore(path) as store:
        assert await store.is_local_domain(DOMAIN)
        assert (await store.append(jane.id, INBOX, body())).uid == 2


async def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    """The CLI opens the file while `serve` runs (WAL, busy_timeout)."""
    async with SqliteStore(tmp_path / "db") as server, SqliteStore(tmp_path / "db") as cli:
        await server.add_domain(DOMAIN)
        await cli.add_account(f"jane@{DOMAIN}", HASH)
        jane = await server.get_account(f"jane@{DOMAIN}")
        await asyncio.gather(
            *(s.append(jane.id, INBOX, body()) for s in (server, cli, server, cli))
        )
        inbox = await cli.get_mailbox(jane.id, INBOX)
        assert [e.uid for e in await server.list_entries(inbox.id)] == [1, 2, 3, 4]


async def test_close_finishes_pending_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    await store.open()
    jane = await account(store)
    pending = [asyncio.ensure_future(store.append(jane.id, INBOX, body())) for _ in range(20)]
    await asyncio.sleep(0)
    await store.close()
    assert len({(await p).uid for p in pending}) == 20
    with pytest.raises(StoreUnavailable):
        await store.append(jane.id, INBOX, body())


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from pillarbox.store.api import Delivery, Envelope, LocalTarget
    from pillarbox.store.sqlite import SqliteStore

    async def main() -> None:
        store = SqliteStore(Path(sys.argv[1]))
        await store.open()
        await store.add_domain("example.test")
        jane = await store.add_account("jane@example.test", "$argon2id$x")
        body = b"Subject: durable\\r\\n\\r\\nkept\\r\\n"
        result = await store.deliver(
            Delivery(body, Envelope("a@remote.test"), local=[LocalTarget(jane.id)])
        )
        print("acked", result.message_id, flush=True)
        time.sleep(60)  # killed here, with the store still open

    asyncio.run(main())
    """
)


async def test_an_acknowledged_delivery_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), timeout=30)
        assert line.startswith("acked")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    async with SqliteStore(path) as store:
        jane = await store.get_account("jane@example.test")
        [entry] = await store.list_entries((await store.get_mailbox(jane.id, INBOX)).id)
        assert entry.message_id == int(line.split()[1])
        assert await store.get_body(entry.message_id) == b"Subject: durable\r\n\r\nkept\r\n"


# -- schema ----------------------------------------------------------------------------


async def test_a_new_database_is_at_the_latest_schema_version(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db"):
        pass
    conn = sqlite3.connect(tmp_path / "db")
    try:
        assert schema.schema_version(conn) == schema.latest_version() >= 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_an_old_database_is_migrated_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db"
    async with SqliteStore(path) as store:
        await account(store)
    step = ("ALTER TABLE account ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated'",)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    async with SqliteStore(path) as store:
        assert (await store.get_account(f"jane@{DOMAIN}")).name == "Jane"
    conn = sqlite3.connect(path)
    try:
        assert schema.schema_version(conn) == schema.latest_version()
        assert conn.execute("SELECT note FROM account").fetchall() == [("migrated",)]
    finally:
        conn.close()


async def test_a_database_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.latest_version() + 1}")
    conn.close()
    with pytest.raises(StoreUnavailable, match="newer"):
        await SqliteStore(path).open()


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    with pytest.raises(StoreUnavailable):
        await SqliteStore(path).open()


def test_sqlite_errors_map_to_store_errors() -> None:
    assert isinstance(translate(sqlite3.IntegrityError("UNIQUE")), AlreadyExists)
    assert isinstance(translate(sqlite3.OperationalError("disk I/O error")), StoreUnavailable)


async def test_expunge_takes_many_uids_at_once(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db") as store:
        jane = await account(store)
        results = await asyncio.gather(*(store.append(jane.id, INBOX, body()) for _ in range(300)))
        box = results[0].mailbox_id
        removed = await store.expunge(box, [Uid(u) for u in range(1, 2000)])
        assert removed == list(range(1, 301))
