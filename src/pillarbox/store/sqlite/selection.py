"""The SQL behind an IMAP selected mailbox: snapshots, changes since a MODSEQ, \\Recent.

A selected mailbox keeps only its UID list in memory; flags and MODSEQs are read again when
a command needs them, and `changes_since` tells a session what others changed (RFC 7162
§3.1.1 MODSEQs make that one indexed query). Reads that must agree with each other run in
one read transaction, so a snapshot never mixes two commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from pillarbox.store.api import (
    MailboxChanges,
    MailboxEntry,
    MailboxId,
    MailboxSnapshot,
    ModSeq,
    Uid,
)
from pillarbox.store.sqlite import rows
from pillarbox.store.sqlite.accounts import get_mailbox_by_id
from pillarbox.store.sqlite.messages import _entries
from pillarbox.store.sqlite.writer import Txn

T = TypeVar("T")

# RFC 3501 §2.3.2: the flag whose absence makes a message "unseen".
SEEN: Final = "\\Seen"
_UNSEEN_WHERE: Final = "mailbox_id = ? AND instr(' ' || flags || ' ', ' \\Seen ') = 0"


def in_snapshot(conn: sqlite3.Connection, read: Callable[[sqlite3.Connection], T]) -> T:
    """Run several SELECTs in one read transaction (WAL gives them one snapshot)."""
    if conn.in_transaction:
        return read(conn)
    conn.execute("BEGIN")
    try:
        return read(conn)
    finally:
        conn.execute("COMMIT")


def _recent_key(mailbox_id: MailboxId, uidvalidity: int) -> str:
    # Keyed by UIDVALIDITY too: a deleted mailbox's id may be reused by a new one.
    return f"recent:{mailbox_id}:{uidvalidity}"


def _recent_mark(conn: sqlite3.Connection, key: str) -> Uid:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return Uid(0 if row is None else int(row[0]))


def snapshot(conn: sqlite3.Connection, mailbox_id: MailboxId, with_uids: bool) -> MailboxSnapshot:
    def read(c: sqlite3.Connection) -> MailboxSnapshot:
        box = get_mailbox_by_id(c, mailbox_id)
        uids: tuple[Uid, ...] = ()
        if with_uids:
            cursor = c.execute("SELECT uid FROM entry WHERE mailbox_id = ? ORDER BY uid", (box.id,))
            uids = tuple(Uid(row[0]) for row in cursor)
        unseen_row = c.execute(
            f"SELECT count(*), min(uid) FROM entry WHERE {_UNSEEN_WHERE}",  # noqa: S608
            (box.id,),
        ).fetchone()
        keywords: set[str] = set()
        for (text,) in c.execute(
            "SELECT DISTINCT flags FROM entry WHERE mailbox_id = ? AND flags <> ''", (box.id,)
        ):
            keywords.update(rows.flags_set(text))
        mark = _recent_mark(c, _recent_key(box.id, box.uidvalidity))
        recent = c.execute(
            "SELECT count(*) FROM entry WHERE mailbox_id = ? AND uid > ?", (box.id, mark)
        ).fetchone()[0]
        return MailboxSnapshot(
            mailbox=box,
            uids=uids,
            unseen=int(unseen_row[0]),
            first_unseen=None if unseen_row[1] is None else Uid(unseen_row[1]),
            flags=frozenset(keywords),
            recent_mark=mark,
            recent=int(recent),
        )

    return in_snapshot(conn, read)


def changes_since(conn: sqlite3.Connection, mailbox_id: MailboxId, since: ModSeq) -> MailboxChanges:
    def read(c: sqlite3.Connection) -> MailboxChanges:
        box = get_mailbox_by_id(c, mailbox_id)
        if box.highestmodseq <= since:
            return MailboxChanges(box, (), ())
        cursor = c.execute(
            rows.SELECT_ENTRY + "WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, since),
        )
        changed = tuple(rows.entry(row) for row in cursor)
        expunged = tuple(
            Uid(row[0])
            for row in c.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox_id, since),
            )
        )
        return MailboxChanges(box, changed, expunged)

    return in_snapshot(conn, read)


def get_entries(
    conn: sqlite3.Connection, mailbox_id: MailboxId, uids: Sequence[Uid]
) -> list[MailboxEntry]:
    return _entries(conn, mailbox_id, uids)


def claim_recent(txn: Txn, mailbox_id: MailboxId, up_to: Uid) -> Uid:
    """RFC 3501 §2.3.2: UIDs above the returned mark (up to `up_to`) are this session's."""
    box = get_mailbox_by_id(txn.conn, mailbox_id)
    key = _recent_key(box.id, box.uidvalidity)
    mark = _recent_mark(txn.conn, key)
    if up_to > mark:
        txn.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, int(up_to)),
        )
    return mark


def recent_mark(conn: sqlite3.Connection, mailbox_id: MailboxId) -> Uid:
    box = get_mailbox_by_id(conn, mailbox_id)
    return _recent_mark(conn, _recent_key(box.id, box.uidvalidity))
