"""The SQL behind an IMAP selected mailbox: snapshots, changes since a MODSEQ, \\Recent.

A selected mailbox keeps only its UID list in memory; flags and MODSEQs are read again when
a command needs them, and `changes_since` tells a session what others changed (RFC 7162
§3.1.1 MODSEQs make that one indexed query). Reads that must agree with each other run in
one read transaction, so a snapshot never mixes two commits.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Final, TypeVar, cast

from pillarbox.store.api import (
    MailboxChanges,
    MailboxEntry,
    MailboxId,
    MailboxSnapshot,
    MessageId,
    ModSeq,
    NotFound,
    Uid,
)
from pillarbox.store.sqlite import rows
from pillarbox.store.sqlite.accounts import get_mailbox_by_id
from pillarbox.store.sqlite.messages import _SELECT_ENTRIES, id_list
from pillarbox.store.sqlite.schema import KEYWORDS_CONDITION, UNSEEN_CONDITION
from pillarbox.store.sqlite.writer import Txn

T = TypeVar("T")

# RFC 3501 §2.3.2: the flag whose absence makes a message "unseen".
SEEN: Final = "\\Seen"
_UNSEEN_WHERE: Final = f"mailbox_id = ? AND {UNSEEN_CONDITION}"
# Without ANALYZE statistics SQLite prefers the primary key (it avoids a sort); these name
# the small indexes the queries are written for.
_UNSEEN_FROM: Final = "entry INDEXED BY entry_unseen"
_CHANGED_FROM: Final = "entry INDEXED BY entry_modseq"


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


# SELECT's counts of one mailbox in one statement (one statement reads one snapshot, so no
# transaction is needed): the row, RFC 3501 §6.3.1 UNSEEN count and first unseen UID, the
# flags in use, the \\Recent mark and the entries above it (RFC 3501 §2.3.2).
_RECENT_MARK: Final = (
    "COALESCE((SELECT value FROM meta WHERE key = "
    "'recent:' || mailbox.id || ':' || mailbox.uidvalidity), 0)"
)
_SNAPSHOT: Final = (
    f"SELECT {rows.MAILBOX_COLUMNS}, "  # noqa: S608 - the store's own constants
    f"(SELECT count(*) FROM {_UNSEEN_FROM} WHERE mailbox_id = mailbox.id AND {UNSEEN_CONDITION}), "
    f"(SELECT min(uid) FROM {_UNSEEN_FROM} WHERE mailbox_id = mailbox.id AND {UNSEEN_CONDITION}), "
    "(SELECT group_concat(flags, ' ') FROM (SELECT DISTINCT flags FROM entry "
    f"WHERE mailbox_id = mailbox.id AND {KEYWORDS_CONDITION})), "
    f"{_RECENT_MARK}, "
    f"(SELECT count(*) FROM entry WHERE mailbox_id = mailbox.id AND uid > {_RECENT_MARK})"
)
# One string and one C-level split: 100,000 UIDs in ~30 ms.
_ALL_UIDS: Final = (
    "(SELECT group_concat(uid) FROM "
    "(SELECT uid FROM entry WHERE mailbox_id = mailbox.id ORDER BY uid))"
)
_SNAPSHOT_BY_ID: Final = f"{_SNAPSHOT} FROM mailbox WHERE id = ?"
_SNAPSHOT_WITH_UIDS: Final = f"{_SNAPSHOT}, {_ALL_UIDS} FROM mailbox WHERE id = ?"


def snapshot(conn: sqlite3.Connection, mailbox_id: MailboxId, with_uids: bool) -> MailboxSnapshot:
    row = conn.execute(_SNAPSHOT_WITH_UIDS if with_uids else _SNAPSHOT_BY_ID, (mailbox_id,))
    found = row.fetchone()
    if found is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    box = rows.mailbox(found)
    unseen, first_unseen, keywords, mark, recent = found[10:15]
    uids: tuple[Uid, ...] = ()
    if with_uids and found[15]:
        uids = cast(tuple[Uid, ...], tuple(map(int, found[15].split(","))))
    flags = set(keywords.split()) if keywords else set()
    if unseen < box.messages:
        flags.add(SEEN)
    return MailboxSnapshot(
        mailbox=box,
        uids=uids,
        unseen=int(unseen),
        first_unseen=None if first_unseen is None else Uid(first_unseen),
        flags=frozenset(flags),
        recent_mark=Uid(int(mark)),
        recent=int(recent),
    )


def changes_since(conn: sqlite3.Connection, mailbox_id: MailboxId, since: ModSeq) -> MailboxChanges:
    def read(c: sqlite3.Connection) -> MailboxChanges:
        box = get_mailbox_by_id(c, mailbox_id)
        if box.highestmodseq <= since:
            return MailboxChanges(box, (), ())
        cursor = c.execute(
            f"SELECT {rows.ENTRY_COLUMNS} FROM {_CHANGED_FROM} "  # noqa: S608
            "WHERE mailbox_id = ? AND modseq > ?",
            (mailbox_id, since),
        )
        changed = tuple(sorted((_entry(row) for row in cursor), key=lambda e: e.uid))
        expunged = tuple(
            Uid(row[0])
            for row in c.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox_id, since),
            )
        )
        return MailboxChanges(box, changed, expunged)

    return in_snapshot(conn, read)


_RANGE_ENTRIES: Final = (
    f"{rows.SELECT_ENTRY} WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid"
)
# A UID set spanning at most this many times its size is read with one range scan.
RANGE_SCAN_SLACK: Final = 2
# Distinct flag texts and UTC offsets whose decoded forms are kept (a mailbox has few).
DECODED_VALUES: Final = 4096


@functools.lru_cache(maxsize=DECODED_VALUES)
def _flags(text: str) -> frozenset[str]:
    return rows.flags_set(text)


@functools.lru_cache(maxsize=DECODED_VALUES)
def _zone(offset: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(seconds=offset))


# Entries decoded from rows, by row: an unchanged row (most of a FETCH of the newest 50,
# asked again at every SELECT) is not decoded again. Entries are immutable values, so one
# may serve every reader thread; the table is emptied when full (no LRU bookkeeping).
DECODED_ENTRIES: Final = 16384
_decoded: dict[rows.Row, MailboxEntry] = {}


def _entry(row: rows.Row) -> MailboxEntry:
    """`rows.entry`, reusing what earlier rows decoded to (FETCH of many, every SELECT)."""
    found = _decoded.get(row)
    if found is None:
        if len(_decoded) >= DECODED_ENTRIES:
            _decoded.clear()
        found = _decoded[row] = _decode(row)
    return found


def _decode(row: rows.Row) -> MailboxEntry:
    return MailboxEntry(
        mailbox_id=MailboxId(row[0]),
        uid=Uid(row[1]),
        message_id=MessageId(row[2]),
        modseq=ModSeq(row[3]),
        flags=_flags(row[4]),
        internaldate=dt.datetime.fromtimestamp(row[5], _zone(row[6])),
        size=row[7],
    )


def get_entries(
    conn: sqlite3.Connection, mailbox_id: MailboxId, uids: Sequence[Uid]
) -> list[MailboxEntry]:
    """The entries of `uids` that still exist, in UID order."""
    if not uids:
        return []
    first, last = min(uids), max(uids)
    span = last - first + 1
    if span == len(uids) == len(set(uids)):  # every UID of a run: a range scan
        cursor = conn.execute(_RANGE_ENTRIES, (mailbox_id, first, last))
        return [_entry(row) for row in cursor]
    if span <= RANGE_SCAN_SLACK * len(uids):
        # A run with a few gaps (the newest 50 after some expunges): one range scan,
        # skipping the rows not asked for, costs less than a lookup per UID.
        wanted = set(uids)
        cursor = conn.execute(_RANGE_ENTRIES, (mailbox_id, first, last))
        return [_entry(row) for row in cursor if row[1] in wanted]
    return [_entry(row) for row in _entry_rows(conn, mailbox_id, uids)]


def _entry_rows(
    conn: sqlite3.Connection, mailbox_id: MailboxId, uids: Sequence[Uid]
) -> list[rows.Row]:
    return conn.execute(_SELECT_ENTRIES, (mailbox_id, id_list(uids))).fetchall()


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


_HAS_FLAG: Final = "instr(' ' || flags || ' ', ' ' || ? || ' ') > 0"
_LACKS_FLAG: Final = "instr(' ' || flags || ' ', ' ' || ? || ' ') = 0"


def search_flags(
    conn: sqlite3.Connection,
    mailbox_id: MailboxId,
    present: frozenset[str],
    absent: frozenset[str],
) -> list[Uid]:
    """UIDs of the entries that have every flag of `present` and none of `absent`."""
    # "Not \Seen" is written as the partial index's own condition so that SQLite uses it.
    lacks = sorted(absent - {SEEN})
    terms = [_HAS_FLAG] * len(present) + [_LACKS_FLAG] * len(lacks)
    source = "entry"
    if SEEN in absent:
        terms.append(UNSEEN_CONDITION)
        source = _UNSEEN_FROM
    where = " AND ".join(["mailbox_id = ?", *terms])
    # One string and a C-level split, as in `snapshot`: SEARCH UNSEEN may match thousands.
    row = conn.execute(
        f"SELECT group_concat(uid) FROM (SELECT uid FROM {source} WHERE {where} ORDER BY uid)",  # noqa: S608 - fixed terms
        (mailbox_id, *sorted(present), *lacks),
    ).fetchone()
    return cast(list[Uid], list(map(int, row[0].split(",")))) if row[0] else []


def get_messages(
    conn: sqlite3.Connection, message_ids: Sequence[MessageId]
) -> dict[MessageId, tuple[bytes, bytes | None]]:
    cursor = conn.execute(
        "SELECT id, body, parsed FROM message WHERE id IN (SELECT value FROM json_each(?))",
        (id_list(message_ids),),
    )
    return {
        MessageId(row[0]): (bytes(row[1]), None if row[2] is None else bytes(row[2]))
        for row in cursor
    }
