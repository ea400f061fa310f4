"""SqliteStore: the embedded backend of `pillarbox.store.api.Store`.

One writer thread owns the write connection and commits batches of jobs (group commit,
see writer.py); queries run on a small pool of reader threads with their own connections
(WAL lets them read while the writer writes). Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from pillarbox.store.api import (
    Account,
    AccountId,
    Alias,
    Change,
    Delivery,
    DeliveryResult,
    Domain,
    Envelope,
    LocalTarget,
    Mailbox,
    MailboxChanges,
    MailboxEntry,
    MailboxId,
    MailboxSnapshot,
    MessageId,
    ModSeq,
    QueueEntry,
    QueueId,
    Store,
    StoreUnavailable,
    Uid,
)
from pillarbox.store.feed import ChangeHub, QueueFeed
from pillarbox.store.sqlite import accounts, messages, queue, schema, selection
from pillarbox.store.sqlite.readers import ReaderPool
from pillarbox.store.sqlite.writer import Publisher, Txn, Writer, WriterStats, translate

T = TypeVar("T")

# Reader threads: queries are short, so a few cover many sessions; SQLite releases the
# GIL while it works, so they run beside the writer. Two, not more: each thread more
# contends for the GIL, and the IMAP bench's mix cost 10-20% more CPU per operation with
# four (two still let a long read, a SEARCH of 100,000 messages, leave room for others).
READER_THREADS: Final = 2
# How long a connection waits for another process's write lock (the CLI beside `serve`).
BUSY_TIMEOUT_MS: Final = 10_000
# Prepared statements kept per connection: every statement of the store fits.
STATEMENT_CACHE: Final = 256
# Beside the database: the writer of every process holds an flock on it while it writes
# (see writer.py), so writers of several processes take turns without busy-wait sleeps.
WRITE_LOCK_SUFFIX: Final = ".writelock"
# sqlite.org/pragma.html#pragma_secure_delete; see `connect`.
SECURE_DELETE: Final = "FAST"


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT) with the store's pragmas."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=STATEMENT_CACHE,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    conn.execute("PRAGMA foreign_keys = ON")
    # With journal_mode=WAL, synchronous=FULL syncs the WAL at every COMMIT: a commit
    # that returned is on disk (sqlite.org/pragma.html#pragma_synchronous).
    conn.execute("PRAGMA synchronous = FULL")
    # Some builds (Debian's) default to secure_delete = ON, which overwrites every freed
    # page: expunging 1,000 messages of 100 KB then writes and fsyncs 100 MB of zeros.
    # FAST still clears freed content on b-tree pages but skips the extra I/O for
    # overflow pages, so deleted bodies linger in free pages until reused, as an
    # unlinked Maildir file lingers on disk.
    conn.execute(f"PRAGMA secure_delete = {SECURE_DELETE}")
    return conn


class SqliteStore:
    """The SQLite backend. `await open()` before use, `await close()` after."""

    def __init__(self, path: Path, *, on_commit: Publisher | None = None) -> None:
        """`on_commit` also hears of every committed change (an SMTP worker process
        forwards them to the main process, whose sessions subscribe to its hub)."""
        self.path = Path(path)
        self.stats = WriterStats()
        self._hub = ChangeHub()
        self._on_commit = on_commit
        self._writer: Writer | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._readers: ReaderPool | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        try:
            conn = await asyncio.to_thread(self._open_writer)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        self._write_conn = conn
        lock = self.path.with_name(self.path.name + WRITE_LOCK_SUFFIX)
        self._writer = Writer(conn, self._publish, self.stats, lock_path=lock)
        self._writer.start()
        self._readers = ReaderPool(self._connect_reader, READER_THREADS, translate)

    def _connect_reader(self) -> sqlite3.Connection:
        conn = connect(self.path)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            schema.migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._readers is not None:
            readers, self._readers = self._readers, None
            await asyncio.to_thread(readers.close)
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- plumbing ------------------------------------------------------------------------

    async def _write(self, job: Callable[[Txn], T]) -> T:
        if self._writer is None:
            raise StoreUnavailable("the store is not open")
        return await self._writer.submit(job)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StoreUnavailable("the store is not open")
        return await self._readers.read(query)

    # -- domains -------------------------------------------------------------------------

    async def add_domain(self, name: str) -> Domain:
        return await self._write(lambda txn: accounts.add_domain(txn, name))

    async def remove_domain(self, name: str) -> None:
        await self._write(lambda txn: accounts.remove_domain(txn, name))

    async def list_domains(self) -> list[Domain]:
        return await self._read(accounts.list_domains)

    async def is_local_domain(self, name: str) -> bool:
        return await self._read(lambda conn: accounts.is_local_domain(conn, name))

    # -- accounts ------------------------------------------------------------------------

    async def add_account(
        self, address: str, password_hash: str, name: str = "", quota: int = 0
    ) -> Account:
        return await self._write(
            lambda txn: accounts.add_account(txn, address, password_hash, name, quota)
        )

    async def get_account(self, address: str) -> Account:
        return await self._read(lambda conn: accounts.get_account(conn, address))

    async def get_account_by_id(self, account_id: AccountId) -> Account:
        return await self._read(lambda conn: accounts.get_account_by_id(conn, account_id))

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        return await self._read(lambda conn: accounts.list_accounts(conn, domain))

    async def set_password(self, address: str, password_hash: str) -> None:
        await self._write(
            lambda txn: accounts.update_account(txn, address, "password_hash", password_hash)
        )

    async def set_apop_secret(self, address: str, secret: str | None) -> None:
        await self._write(lambda txn: accounts.update_account(txn, address, "apop_secret", secret))

    async def set_account_name(self, address: str, name: str) -> None:
        await self._write(lambda txn: accounts.update_account(txn, address, "name", name))

    async def set_quota(self, address: str, quota: int) -> None:
        await self._write(lambda txn: accounts.update_account(txn, address, "quota", quota))

    async def remove_account(self, address: str) -> None:
        await self._write(lambda txn: accounts.remove_account(txn, address))

    # -- aliases -------------------------------------------------------------------------

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        return await self._write(lambda txn: accounts.add_alias(txn, address, targets))

    async def get_alias(self, address: str) -> Alias:
        return await self._read(lambda conn: accounts.get_alias(conn, address))

    async def remove_alias(self, address: str) -> None:
        await self._write(lambda txn: accounts.remove_alias(txn, address))

    async def list_aliases(self) -> list[Alias]:
        return await self._read(accounts.list_aliases)

    # -- mailboxes -----------------------------------------------------------------------

    async def create_mailbox(
        self,
        account_id: AccountId,
        name: str,
        special_use: str | None = None,
        subscribed: bool = False,
    ) -> Mailbox:
        return await self._write(
            lambda txn: accounts.create_mailbox(txn, account_id, name, special_use, subscribed)
        )

    async def get_mailbox(self, account_id: AccountId, name: str) -> Mailbox:
        return await self._read(lambda conn: accounts.get_mailbox(conn, account_id, name))

    async def get_mailbox_by_id(self, mailbox_id: MailboxId) -> Mailbox:
        return await self._read(lambda conn: accounts.get_mailbox_by_id(conn, mailbox_id))

    async def list_mailboxes(self, account_id: AccountId) -> list[Mailbox]:
        return await self._read(lambda conn: accounts.list_mailboxes(conn, account_id))

    async def rename_mailbox(self, mailbox_id: MailboxId, new_name: str) -> Mailbox:
        return await self._write(lambda txn: accounts.rename_mailbox(txn, mailbox_id, new_name))

    async def delete_mailbox(self, mailbox_id: MailboxId) -> None:
        await self._write(lambda txn: accounts.delete_mailbox(txn, mailbox_id))

    async def set_subscription(self, account_id: AccountId, name: str, subscribed: bool) -> bool:
        return await self._write(
            lambda txn: accounts.set_subscription(txn, account_id, name, subscribed)
        )

    async def list_subscriptions(self, account_id: AccountId) -> list[str]:
        return await self._read(lambda conn: accounts.list_subscriptions(conn, account_id))

    # -- messages ------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        return await self._write(lambda txn: messages.deliver(txn, delivery))

    async def append(
        self,
        account_id: AccountId,
        mailbox: str,
        body: bytes,
        flags: frozenset[str] = frozenset(),
        internaldate: dt.datetime | None = None,
        *,
        parsed: bytes | None = None,
    ) -> MailboxEntry:
        delivery = _appending(account_id, mailbox, body, flags, internaldate, parsed)
        result = await self._write(lambda txn: messages.deliver(txn, delivery))
        return result.entries[0]

    async def append_claiming_recent(
        self,
        account_id: AccountId,
        mailbox: str,
        body: bytes,
        flags: frozenset[str] = frozenset(),
        internaldate: dt.datetime | None = None,
        *,
        parsed: bytes | None = None,
    ) -> tuple[MailboxEntry, Uid]:
        delivery = _appending(account_id, mailbox, body, flags, internaldate, parsed)

        def job(txn: Txn) -> tuple[MailboxEntry, Uid]:
            entry = messages.deliver(txn, delivery).entries[0]
            return entry, selection.claim_recent(txn, entry.mailbox_id, entry.uid)

        return await self._write(job)

    async def list_entries(self, mailbox_id: MailboxId) -> list[MailboxEntry]:
        return await self._read(lambda conn: messages.list_entries(conn, mailbox_id))

    async def get_body(self, message_id: MessageId) -> bytes:
        return await self._read(lambda conn: messages.get_body(conn, message_id))

    async def set_message_cache(self, message_id: MessageId, parsed: bytes | None) -> None:
        await self._write(lambda txn: messages.set_message_cache(txn, message_id, parsed))

    async def get_message_cache(self, message_id: MessageId) -> bytes | None:
        return await self._read(lambda conn: messages.get_message_cache(conn, message_id))

    async def expunge(
        self, mailbox_id: MailboxId, uids: Sequence[Uid], *, only_deleted: bool = False
    ) -> list[Uid]:
        return await self._write(lambda txn: messages.expunge(txn, mailbox_id, uids, only_deleted))

    async def list_expunged(self, mailbox_id: MailboxId, since: ModSeq) -> list[tuple[Uid, ModSeq]]:
        return await self._read(lambda conn: messages.list_expunged(conn, mailbox_id, since))

    async def store_flags(
        self,
        mailbox_id: MailboxId,
        uids: Sequence[Uid],
        add: frozenset[str],
        remove: frozenset[str],
    ) -> list[MailboxEntry]:
        return await self._write(
            lambda txn: messages.store_flags(txn, mailbox_id, uids, add, remove)
        )

    async def copy_entries(
        self,
        mailbox_id: MailboxId,
        uids: Sequence[Uid],
        target_id: MailboxId,
        move: bool = False,
    ) -> list[tuple[Uid, MailboxEntry]]:
        return await self._write(
            lambda txn: messages.copy_entries(txn, mailbox_id, uids, target_id, move)
        )

    # -- IMAP selected-mailbox views -----------------------------------------------------

    async def mailbox_snapshot(
        self, mailbox_id: MailboxId, with_uids: bool = True
    ) -> MailboxSnapshot:
        return await self._read(lambda conn: selection.snapshot(conn, mailbox_id, with_uids))

    async def changes_since(self, mailbox_id: MailboxId, since: ModSeq) -> MailboxChanges:
        return await self._read(lambda conn: selection.changes_since(conn, mailbox_id, since))

    async def get_entries(self, mailbox_id: MailboxId, uids: Sequence[Uid]) -> list[MailboxEntry]:
        return await self._read(lambda conn: selection.get_entries(conn, mailbox_id, uids))

    async def claim_recent(self, mailbox_id: MailboxId, up_to: Uid) -> Uid:
        # Most checks find nothing new: read first so that they cost no commit.
        mark = await self._read(lambda conn: selection.recent_mark(conn, mailbox_id))
        if up_to <= mark:
            return mark
        return await self._write(lambda txn: selection.claim_recent(txn, mailbox_id, up_to))

    async def search_flags(
        self, mailbox_id: MailboxId, present: frozenset[str], absent: frozenset[str]
    ) -> list[Uid]:
        return await self._read(
            lambda conn: selection.search_flags(conn, mailbox_id, present, absent)
        )

    async def get_messages(
        self, message_ids: Sequence[MessageId]
    ) -> dict[MessageId, tuple[bytes, bytes | None]]:
        return await self._read(lambda conn: selection.get_messages(conn, message_ids))

    # -- outbound queue ------------------------------------------------------------------

    async def list_queue(self) -> list[QueueEntry]:
        return await self._read(queue.list_queue)

    async def get_queue_entry(self, queue_id: QueueId) -> QueueEntry:
        return await self._read(lambda conn: queue.get(conn, queue_id))

    async def remove_queue_entry(self, queue_id: QueueId) -> None:
        await self._write(lambda txn: queue.remove(txn, queue_id))

    async def hold_queue_entry(
        self, queue_id: QueueId, held: bool, note: str | None = None
    ) -> None:
        await self._write(lambda txn: queue.hold(txn, queue_id, held, note))

    async def release_leases(self, owner_prefix: str) -> int:
        return await self._write(lambda txn: queue.release_leases(txn, owner_prefix))

    async def claim_due(
        self, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int
    ) -> list[QueueEntry]:
        return await self._write(lambda txn: queue.claim_due(txn, owner, now, lease, limit))

    async def finish_queue_entry(self, queue_id: QueueId) -> None:
        await self._write(lambda txn: queue.remove(txn, queue_id))

    async def reschedule_queue_entry(
        self, queue_id: QueueId, next_attempt: dt.datetime, last_result: str
    ) -> QueueEntry:
        return await self._write(
            lambda txn: queue.reschedule(txn, queue_id, next_attempt, last_result)
        )

    async def flush_queue(self, domain: str | None = None, now: dt.datetime | None = None) -> int:
        when = now or dt.datetime.now(dt.UTC)
        return await self._write(lambda txn: queue.flush(txn, domain, when))

    # -- change feed ---------------------------------------------------------------------

    def subscribe(self, account_id: AccountId) -> QueueFeed:
        return self._hub.subscribe(account_id)

    def publish(self, changes: list[tuple[AccountId, Change]]) -> None:
        """Announce changes another process committed to this process's subscribers."""
        self._hub.publish(changes)

    def _publish(self, changes: list[tuple[AccountId, Change]]) -> None:
        self._hub.publish(changes)
        if self._on_commit is not None:
            self._on_commit(changes)


if TYPE_CHECKING:

    def _conforms(store: SqliteStore) -> Store:
        return store  # mypy proves that SqliteStore implements the Store protocol


def _appending(
    account_id: AccountId,
    mailbox: str,
    body: bytes,
    flags: frozenset[str],
    internaldate: dt.datetime | None,
    parsed: bytes | None,
) -> Delivery:
    """An IMAP APPEND as a delivery: no envelope, one mailbox."""
    return Delivery(
        body=body,
        envelope=Envelope(sender=""),
        local=(LocalTarget(account_id, mailbox, flags),),
        received_at=internaldate or dt.datetime.now(dt.UTC),
        parsed=parsed,
    )
