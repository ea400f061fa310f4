"""The outbound queue: one row per (message, recipient), claimed by expiring leases.

A worker claims due rows (`claim_due`), which leases them to it; it then either finishes a
row (delivered or bounced: the row goes, in one transaction) or reschedules it. A worker
that dies simply lets its lease run out and another worker claims the row again.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from pillarbox.store.api import DsnRecipient, Envelope, MessageId, NotFound, QueueEntry, QueueId
from pillarbox.store.sqlite import rows
from pillarbox.store.sqlite.writer import Txn

_INSERT_SQL = (
    "INSERT INTO queue (message_id, sender, ret, envid, body_type, smtputf8, recipient, "
    "notify, orcpt, created, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DUE_SQL = (
    "UPDATE queue SET lease_owner = ?, lease_until = ? WHERE id IN ("
    "SELECT id FROM queue WHERE held = 0 AND next_attempt <= ? "
    "AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt, id LIMIT ?) "
    "RETURNING id"
)


def add(
    conn: sqlite3.Connection,
    message_id: MessageId,
    envelope: Envelope,
    recipient: DsnRecipient,
    now: dt.datetime,
) -> QueueId:
    """RFC 3461 §4, §5: the DSN parameters are kept with each recipient's row."""
    ts = rows.timestamp(now)
    cursor = conn.execute(
        _INSERT_SQL,
        (
            message_id,
            envelope.sender,
            envelope.ret,
            envelope.envid,
            envelope.body,
            envelope.smtputf8,
            recipient.address,
            ",".join(recipient.notify),
            recipient.orcpt,
            ts,
            ts,
        ),
    )
    return QueueId(cursor.lastrowid or 0)


def list_queue(conn: sqlite3.Connection) -> list[QueueEntry]:
    cursor = conn.execute(rows.SELECT_QUEUE + "ORDER BY q.id")
    return [rows.queue_entry(row) for row in cursor]


def get(conn: sqlite3.Connection, queue_id: QueueId) -> QueueEntry:
    row = conn.execute(
        rows.SELECT_QUEUE + "WHERE q.id = ?",
        (queue_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no queue entry {queue_id}")
    return rows.queue_entry(row)


def _changed(cursor: sqlite3.Cursor, queue_id: QueueId) -> None:
    if cursor.rowcount == 0:
        raise NotFound(f"no queue entry {queue_id}")


def remove(txn: Txn, queue_id: QueueId) -> None:
    # The queue_removed trigger releases the body's reference.
    _changed(txn.conn.execute("DELETE FROM queue WHERE id = ?", (queue_id,)), queue_id)


def hold(txn: Txn, queue_id: QueueId, held: bool, note: str | None = None) -> None:
    cursor = txn.conn.execute(
        "UPDATE queue SET held = ?, last_result = coalesce(?, last_result), "
        "lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END, "
        "lease_until = CASE WHEN ? THEN NULL ELSE lease_until END WHERE id = ?",
        (held, note, held, held, queue_id),
    )
    _changed(cursor, queue_id)


def release_leases(txn: Txn, owner_prefix: str) -> int:
    cursor = txn.conn.execute(
        "UPDATE queue SET lease_owner = NULL, lease_until = NULL "
        "WHERE lease_owner LIKE ? ESCAPE '\\'",
        (_like_escape(owner_prefix) + "%",),
    )
    return cursor.rowcount


def claim_due(
    txn: Txn, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[QueueEntry]:
    ts = rows.timestamp(now)
    claimed = rows.returning(
        txn.conn.execute(_DUE_SQL, (owner, rows.timestamp(now + lease), ts, ts, limit))
    )
    return sorted(
        (get(txn.conn, QueueId(row[0])) for row in claimed),
        key=lambda entry: (entry.next_attempt, entry.id),
    )


def reschedule(
    txn: Txn, queue_id: QueueId, next_attempt: dt.datetime, last_result: str
) -> QueueEntry:
    cursor = txn.conn.execute(
        "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_result = ?, "
        "lease_owner = NULL, lease_until = NULL WHERE id = ?",
        (rows.timestamp(next_attempt), last_result, queue_id),
    )
    _changed(cursor, queue_id)
    return get(txn.conn, queue_id)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def flush(txn: Txn, domain: str | None, now: dt.datetime) -> int:
    """Make entries due now (queue flush, ETRN: RFC 1985); held entries stay held."""
    ts = rows.timestamp(now)
    if domain is None:
        cursor = txn.conn.execute(
            "UPDATE queue SET next_attempt = min(next_attempt, ?) WHERE held = 0", (ts,)
        )
    else:
        cursor = txn.conn.execute(
            "UPDATE queue SET next_attempt = min(next_attempt, ?) WHERE held = 0 "
            "AND recipient LIKE ? ESCAPE '\\'",
            (ts, "%@" + _like_escape(domain)),
        )
    return cursor.rowcount
