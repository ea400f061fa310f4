"""Row <-> record conversions and the column lists that go with them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Final

from pillarbox.store.api import (
    INBOX,
    Account,
    AccountId,
    DsnRecipient,
    Envelope,
    Mailbox,
    MailboxEntry,
    MailboxId,
    MessageId,
    ModSeq,
    QueueEntry,
    QueueId,
    Uid,
)

Row = tuple[Any, ...]

ACCOUNT_COLUMNS: Final = "id, address, name, password_hash, quota, apop_secret"
# `subscribed` comes from the subscriptions, which are kept by name (schema v5).
MAILBOX_COLUMNS: Final = (
    "id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use, "
    "EXISTS (SELECT 1 FROM subscription AS s "
    "WHERE s.account_id = mailbox.account_id AND s.name = mailbox.name), "
    "messages, size"
)
ENTRY_COLUMNS: Final = "mailbox_id, uid, message_id, modseq, flags, internaldate, tzoffset, size"
QUEUE_COLUMNS: Final = (
    "q.id, q.message_id, q.sender, q.ret, q.envid, q.body_type, q.smtputf8, q.recipient, "
    "q.notify, q.orcpt, m.size, q.created, q.attempts, q.next_attempt, q.last_result, "
    "q.held, q.lease_owner, q.lease_until"
)
QUEUE_FROM: Final = "queue AS q JOIN message AS m ON m.id = q.message_id"

# The column lists are the store's own constants: no caller's text reaches these strings.
SELECT_ACCOUNT: Final = f"SELECT {ACCOUNT_COLUMNS} FROM account "  # noqa: S608
SELECT_MAILBOX: Final = f"SELECT {MAILBOX_COLUMNS} FROM mailbox "  # noqa: S608
SELECT_ENTRY: Final = f"SELECT {ENTRY_COLUMNS} FROM entry "  # noqa: S608
SELECT_QUEUE: Final = f"SELECT {QUEUE_COLUMNS} FROM {QUEUE_FROM} "  # noqa: S608
INSERT_ENTRY: Final = f"INSERT INTO entry ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608

HIERARCHY_SEPARATOR: Final = "/"


def mailbox_name(name: str) -> str:
    """RFC 3501 §5.1: INBOX is case-insensitive; so is INBOX as a hierarchy's first level."""
    head, sep, rest = name.partition(HIERARCHY_SEPARATOR)
    if head.upper() == INBOX:
        return INBOX + sep + rest
    return name


def split_address(address: str) -> tuple[str, str]:
    """local@domain -> (local, lower-cased domain); a bare name gives domain ""."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address, ""
    return local, domain.lower()


def normal_address(address: str) -> str:
    local, domain = split_address(address)
    return f"{local}@{domain}" if domain else local


def timestamp(when: dt.datetime) -> float:
    if when.tzinfo is None:
        raise ValueError("timezone-aware datetime required")
    return when.timestamp()


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def tzoffset(when: dt.datetime) -> int:
    offset = when.utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


def flags_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


def account(row: Row) -> Account:
    return Account(AccountId(row[0]), row[1], row[2], row[3], row[4], row[5])


def mailbox(row: Row) -> Mailbox:
    return Mailbox(
        id=MailboxId(row[0]),
        account_id=AccountId(row[1]),
        name=row[2],
        uidvalidity=row[3],
        uidnext=Uid(row[4]),
        highestmodseq=ModSeq(row[5]),
        special_use=row[6],
        subscribed=bool(row[7]),
        messages=row[8],
        size=row[9],
    )


def entry(row: Row) -> MailboxEntry:
    zone = dt.timezone(dt.timedelta(seconds=row[6]))
    return MailboxEntry(
        mailbox_id=MailboxId(row[0]),
        uid=Uid(row[1]),
        message_id=MessageId(row[2]),
        modseq=ModSeq(row[3]),
        flags=flags_set(row[4]),
        internaldate=dt.datetime.fromtimestamp(row[5], zone),
        size=row[7],
    )


def entry_params(e: MailboxEntry) -> Row:
    """The INSERT_ENTRY parameters of an entry."""
    when = e.internaldate
    return (
        e.mailbox_id,
        e.uid,
        e.message_id,
        e.modseq,
        flags_text(e.flags),
        timestamp(when),
        tzoffset(when),
        e.size,
    )


def queue_entry(row: Row) -> QueueEntry:
    envelope = Envelope(sender=row[2], ret=row[3], envid=row[4], body=row[5], smtputf8=bool(row[6]))
    notify = tuple(row[8].split(",")) if row[8] else ()
    return QueueEntry(
        id=QueueId(row[0]),
        message_id=MessageId(row[1]),
        envelope=envelope,
        recipient=DsnRecipient(address=row[7], notify=notify, orcpt=row[9]),
        size=row[10],
        created=utc(row[11]),
        attempts=row[12],
        next_attempt=utc(row[13]),
        last_result=row[14],
        held=bool(row[15]),
        lease_owner=row[16],
        lease_until=None if row[17] is None else utc(row[17]),
    )


def returning(cursor: Any) -> list[Row]:
    """Every row of an INSERT/UPDATE/DELETE ... RETURNING, stepping it to completion."""
    result: list[Row] = cursor.fetchall()
    return result
