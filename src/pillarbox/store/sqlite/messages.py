"""Bodies, mailbox entries, UIDs, MODSEQs and flags: the SQL of the message paths.

UIDs (RFC 3501 §2.3.1.1) come from the mailbox's UIDNEXT, which only grows, so a UID is
never reused; every append, flag change and expunge raises the mailbox's HIGHESTMODSEQ and
stamps the entries it touched (RFC 7162 §3.1.1). `deliver` is the hot path: one INSERT
of the body, then per local target one UPDATE ... RETURNING and one INSERT.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from pillarbox.store.api import (
    AccountId,
    Change,
    ChangeDetail,
    Delivery,
    DeliveryResult,
    LocalTarget,
    MailboxEntry,
    MailboxId,
    MessageId,
    ModSeq,
    NotFound,
    QueueId,
    QuotaExceeded,
    Uid,
)
from pillarbox.store.sqlite import queue, rows
from pillarbox.store.sqlite.accounts import get_mailbox_by_id
from pillarbox.store.sqlite.schema import KEYWORDS_CONDITION, NEXT_MESSAGE_ID
from pillarbox.store.sqlite.writer import Txn

_QUOTA_SQL = (
    "SELECT quota, CASE WHEN quota > 0 THEN "
    "(SELECT COALESCE(SUM(size), 0) FROM mailbox WHERE account_id = account.id) "
    "ELSE 0 END FROM account WHERE id = ?"
)
# Takes the next UID and MODSEQ, and returns the account's quota and use (before this
# message) so that the quota check costs no statement of its own.
_TAKE_UID_SQL = (
    "UPDATE mailbox SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
    "WHERE account_id = ? AND name = ? RETURNING id, uidnext - 1, highestmodseq, uidvalidity, "
    "(SELECT quota FROM account WHERE account.id = mailbox.account_id), "
    "(SELECT COALESCE(SUM(m.size), 0) FROM mailbox AS m WHERE m.account_id = mailbox.account_id)"
)

# Ids from the counter of schema v4: never one a gone message had.
_INSERT_MESSAGE: Final = (
    "INSERT INTO message (id, body, size, parsed) VALUES "  # noqa: S608 - a constant
    f"((SELECT value FROM meta WHERE key = '{NEXT_MESSAGE_ID}'), ?, ?, ?)"
)
_SELECT_ENTRIES = (
    f"{rows.SELECT_ENTRY} WHERE mailbox_id = ? "  # noqa: S608
    "AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid"
)


def id_list(ids: Iterable[int]) -> str:
    """A JSON array for `uid IN (SELECT value FROM json_each(?))`: one statement, any size.
    (`int` first, so only digits reach the text; for the one UID of a STORE, a join costs
    a third of `json.dumps`.)"""
    return "[" + ",".join(map(str, map(int, ids))) + "]"


def check_quota(conn: sqlite3.Connection, needs: Counter[AccountId]) -> None:
    """Raise QuotaExceeded if any account would go over its quota (0 = unlimited)."""
    for account_id, need in needs.items():
        row = conn.execute(_QUOTA_SQL, (account_id,)).fetchone()
        if row is None:
            raise NotFound(f"no account {account_id}")
        quota, used = row
        if quota > 0 and used + need > quota:
            raise QuotaExceeded(f"account {account_id}: {used} + {need} > {quota} octets")


def _add_entry(
    txn: Txn, target: LocalTarget, message_id: MessageId, size: int, when: dt.datetime
) -> MailboxEntry:
    found = rows.returning(
        txn.conn.execute(_TAKE_UID_SQL, (target.account_id, rows.mailbox_name(target.mailbox)))
    )
    if not found:
        raise NotFound(f"no mailbox {target.mailbox} for account {target.account_id}")
    mailbox_id, uid, modseq, uidvalidity, quota, used = found[0]
    if quota > 0 and used + size > quota:  # the writer rolls the whole delivery back
        raise QuotaExceeded(f"account {target.account_id}: {used} + {size} > {quota} octets")
    entry = MailboxEntry(
        MailboxId(mailbox_id), Uid(uid), message_id, ModSeq(modseq), target.flags, when, size
    )
    txn.conn.execute(rows.INSERT_ENTRY, rows.entry_params(entry))
    detail = ChangeDetail(uidvalidity, Uid(uid + 1), (entry,), ())
    txn.changes.append((target.account_id, Change(entry.mailbox_id, entry.modseq, detail)))
    return entry


def deliver(txn: Txn, delivery: Delivery) -> DeliveryResult:
    if not delivery.local and not delivery.remote:
        raise ValueError("a delivery needs a local target or a remote recipient")
    size = len(delivery.body)
    cursor = txn.conn.execute(_INSERT_MESSAGE, (delivery.body, size, delivery.parsed))
    message_id = MessageId(cursor.lastrowid or 0)
    entries = tuple(
        _add_entry(txn, target, message_id, size, delivery.received_at) for target in delivery.local
    )
    queued: tuple[QueueId, ...] = tuple(
        queue.add(txn.conn, message_id, delivery.envelope, recipient, delivery.received_at)
        for recipient in delivery.remote
    )
    return DeliveryResult(message_id, entries, queued)


def list_entries(conn: sqlite3.Connection, mailbox_id: MailboxId) -> list[MailboxEntry]:
    cursor = conn.execute(
        rows.SELECT_ENTRY + "WHERE mailbox_id = ? ORDER BY uid",
        (mailbox_id,),
    )
    found = [rows.entry(row) for row in cursor]
    if not found:
        get_mailbox_by_id(conn, mailbox_id)  # NotFound for a missing mailbox
    return found


def _entries(
    conn: sqlite3.Connection, mailbox_id: MailboxId, uids: Iterable[int]
) -> list[MailboxEntry]:
    cursor = conn.execute(
        _SELECT_ENTRIES,
        (mailbox_id, id_list(uids)),
    )
    return [rows.entry(row) for row in cursor]


def get_body(conn: sqlite3.Connection, message_id: MessageId) -> bytes:
    row = conn.execute("SELECT body FROM message WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise NotFound(f"no message {message_id}")
    return bytes(row[0])


def get_message_cache(conn: sqlite3.Connection, message_id: MessageId) -> bytes | None:
    row = conn.execute("SELECT parsed FROM message WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise NotFound(f"no message {message_id}")
    return None if row[0] is None else bytes(row[0])


def set_message_cache(txn: Txn, message_id: MessageId, parsed: bytes | None) -> None:
    cursor = txn.conn.execute("UPDATE message SET parsed = ? WHERE id = ?", (parsed, message_id))
    if cursor.rowcount == 0:
        raise NotFound(f"no message {message_id}")


@dataclass(frozen=True, slots=True)
class _Bumped:
    """A mailbox after `_bump_modseq`."""

    modseq: ModSeq
    account_id: AccountId
    uidvalidity: int
    uidnext: Uid


def _bump_modseq(txn: Txn, mailbox_id: MailboxId) -> _Bumped:
    """RFC 7162 §3.1.1: one new MODSEQ for one command's changes (see `_announce`)."""
    found = rows.returning(
        txn.conn.execute(
            "UPDATE mailbox SET highestmodseq = highestmodseq + 1 WHERE id = ? "
            "RETURNING highestmodseq, account_id, uidvalidity, uidnext",
            (mailbox_id,),
        )
    )
    if not found:
        raise NotFound(f"no mailbox {mailbox_id}")
    modseq, account_id, uidvalidity, uidnext = found[0]
    return _Bumped(ModSeq(modseq), AccountId(account_id), uidvalidity, Uid(uidnext))


def _announce(
    txn: Txn,
    mailbox_id: MailboxId,
    bumped: _Bumped,
    changed: tuple[MailboxEntry, ...] = (),
    expunged: tuple[Uid, ...] = (),
) -> None:
    """The change feed hears of the new MODSEQ, with all it did, after the commit."""
    detail = ChangeDetail(bumped.uidvalidity, bumped.uidnext, changed, expunged)
    txn.changes.append((bumped.account_id, Change(mailbox_id, bumped.modseq, detail)))


# Entries flagged \Deleted (RFC 3501 §6.4.3); the keywords term lets SQLite use the
# partial index of entries with flags other than \Seen (schema.py), where they all are.
_FLAGGED_DELETED: Final = (
    f"AND {KEYWORDS_CONDITION} AND instr(' ' || flags || ' ', ' \\Deleted ') > 0"
)


def expunge(
    txn: Txn, mailbox_id: MailboxId, uids: Sequence[Uid], only_deleted: bool = False
) -> list[Uid]:
    deleted = _FLAGGED_DELETED if only_deleted else ""
    removed = sorted(
        Uid(row[0])
        for row in rows.returning(
            txn.conn.execute(
                "DELETE FROM entry WHERE mailbox_id = ? "  # noqa: S608 - fixed terms
                f"AND uid IN (SELECT value FROM json_each(?)) {deleted} RETURNING uid",
                (mailbox_id, id_list(uids)),
            )
        )
    )
    if not removed:
        get_mailbox_by_id(txn.conn, mailbox_id)
        return []
    bumped = _bump_modseq(txn, mailbox_id)
    # RFC 7162 §3.2.5.1: remembered for QRESYNC's VANISHED (EARLIER); one statement.
    txn.conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) "
        "SELECT ?, value, ? FROM json_each(?)",
        (mailbox_id, bumped.modseq, id_list(removed)),
    )
    _announce(txn, mailbox_id, bumped, expunged=tuple(removed))
    return removed


def list_expunged(
    conn: sqlite3.Connection, mailbox_id: MailboxId, since: ModSeq
) -> list[tuple[Uid, ModSeq]]:
    cursor = conn.execute(
        "SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        (mailbox_id, since),
    )
    return [(Uid(row[0]), ModSeq(row[1])) for row in cursor]


def store_flags(
    txn: Txn,
    mailbox_id: MailboxId,
    uids: Sequence[Uid],
    add: frozenset[str],
    remove: frozenset[str],
) -> list[MailboxEntry]:
    changed: list[tuple[MailboxEntry, frozenset[str]]] = []
    for entry in _entries(txn.conn, mailbox_id, uids):
        flags = (entry.flags | add) - remove
        if flags != entry.flags:
            changed.append((entry, flags))
    if not changed:
        get_mailbox_by_id(txn.conn, mailbox_id)
        return []
    bumped = _bump_modseq(txn, mailbox_id)
    after = tuple(replace(entry, flags=flags, modseq=bumped.modseq) for entry, flags in changed)
    txn.conn.executemany(
        "UPDATE entry SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
        [(rows.flags_text(e.flags), e.modseq, mailbox_id, e.uid) for e in after],
    )
    _announce(txn, mailbox_id, bumped, changed=after)
    return list(after)


def copy_entries(
    txn: Txn, mailbox_id: MailboxId, uids: Sequence[Uid], target_id: MailboxId, move: bool
) -> list[tuple[Uid, MailboxEntry]]:
    """RFC 3501 §6.4.7 / RFC 6851: flags and INTERNALDATE go with the copy."""
    conn = txn.conn
    sources = _entries(conn, mailbox_id, uids)
    source_box = get_mailbox_by_id(conn, mailbox_id)
    target = get_mailbox_by_id(conn, target_id)
    if not sources:
        return []
    if not (move and source_box.account_id == target.account_id):
        check_quota(conn, Counter({target.account_id: sum(e.size for e in sources)}))
    taken = rows.returning(
        conn.execute(
            "UPDATE mailbox SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1 "
            "WHERE id = ? RETURNING uidnext - ?, highestmodseq, uidnext",
            (len(sources), target_id, len(sources)),
        )
    )
    first_uid, modseq, uidnext = taken[0]
    copies = [
        replace(e, mailbox_id=target_id, uid=Uid(first_uid + i), modseq=ModSeq(modseq))
        for i, e in enumerate(sources)
    ]
    conn.executemany(rows.INSERT_ENTRY, [rows.entry_params(c) for c in copies])
    detail = ChangeDetail(target.uidvalidity, Uid(uidnext), tuple(copies), ())
    txn.changes.append((target.account_id, Change(target_id, ModSeq(modseq), detail)))
    if move:
        expunge(txn, mailbox_id, [e.uid for e in sources])
    return [(source.uid, copy) for source, copy in zip(sources, copies, strict=True)]
