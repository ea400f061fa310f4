"""Domains, accounts, aliases and mailboxes: the SQL, run in the writer or a reader thread.

Write functions take a `Txn` (they run inside the writer's transaction); read functions
take a plain connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Final

from pillarbox.store import api
from pillarbox.store.api import (
    INBOX,
    Account,
    AccountId,
    Alias,
    Domain,
    InUse,
    Mailbox,
    MailboxId,
    NotFound,
)
from pillarbox.store.sqlite import rows
from pillarbox.store.sqlite.rows import ACCOUNT_COLUMNS, MAILBOX_COLUMNS
from pillarbox.store.sqlite.writer import Txn

# RFC 3501 §2.3.1.1: UIDVALIDITY is a 32-bit non-zero number, strictly ascending.
MAX_UIDVALIDITY: Final = 2**32 - 1
ALIAS_TARGET_SEPARATOR: Final = "\n"

_INSERT_ACCOUNT: Final = (
    "INSERT INTO account (address, domain, name, password_hash, quota) "  # noqa: S608
    f"VALUES (?, ?, ?, ?, ?) RETURNING {ACCOUNT_COLUMNS}"
)
# RFC 3501 §2.3.1.1: UIDs start at 1; RFC 7162 §3.1.1: MODSEQs are positive.
_INSERT_MAILBOX: Final = (
    "INSERT INTO mailbox (account_id, name, uidvalidity, uidnext, highestmodseq, "  # noqa: S608
    f"special_use, subscribed) VALUES (?, ?, ?, 1, 1, ?, 0) RETURNING {MAILBOX_COLUMNS}"
)

# -- domains -------------------------------------------------------------------------


def add_domain(txn: Txn, name: str) -> Domain:
    name = name.lower()
    txn.conn.execute("INSERT INTO domain (name) VALUES (?)", (name,))
    return Domain(name)


def remove_domain(txn: Txn, name: str) -> None:
    name = name.lower()
    if txn.conn.execute("SELECT 1 FROM account WHERE domain = ? LIMIT 1", (name,)).fetchone():
        raise InUse(f"domain {name} still has accounts")
    if txn.conn.execute("DELETE FROM domain WHERE name = ?", (name,)).rowcount == 0:
        raise NotFound(f"no domain {name}")


def list_domains(conn: sqlite3.Connection) -> list[Domain]:
    return [Domain(row[0]) for row in conn.execute("SELECT name FROM domain ORDER BY name")]


def is_local_domain(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM domain WHERE name = ?", (name.lower(),)).fetchone()
    return row is not None


# -- accounts ------------------------------------------------------------------------


def add_account(txn: Txn, address: str, password_hash: str, name: str, quota: int) -> Account:
    local, domain = rows.split_address(address)
    if not local or not domain:
        raise ValueError(f"not an address: {address!r}")
    if txn.conn.execute("SELECT 1 FROM domain WHERE name = ?", (domain,)).fetchone() is None:
        raise NotFound(f"{domain} is not a local domain")
    row = txn.conn.execute(
        _INSERT_ACCOUNT,
        (f"{local}@{domain}", domain, name, password_hash, quota),
    )
    created = rows.account(rows.returning(row)[0])
    create_mailbox(txn, created.id, INBOX, None, subscribed=True)
    for box, special_use in api.DEFAULT_SPECIAL_USE:
        create_mailbox(txn, created.id, box, special_use, subscribed=True)
    return created


def _one_account(conn: sqlite3.Connection, where: str, key: object) -> Account:
    row = conn.execute(rows.SELECT_ACCOUNT + where, (key,)).fetchone()
    if row is None:
        raise NotFound(f"no account {key}")
    return rows.account(row)


def get_account(conn: sqlite3.Connection, address: str) -> Account:
    return _one_account(conn, "WHERE address = ?", rows.normal_address(address))


def get_account_by_id(conn: sqlite3.Connection, account_id: AccountId) -> Account:
    return _one_account(conn, "WHERE id = ?", account_id)


def list_accounts(conn: sqlite3.Connection, domain: str | None) -> list[Account]:
    if domain is None:
        cursor = conn.execute(rows.SELECT_ACCOUNT + "ORDER BY address")
    else:
        cursor = conn.execute(
            rows.SELECT_ACCOUNT + "WHERE domain = ? ORDER BY address",
            (domain.lower(),),
        )
    return [rows.account(row) for row in cursor]


# The account fields that can change, each with its statement.
ACCOUNT_UPDATES: Final = {
    "password_hash": "UPDATE account SET password_hash = ? WHERE address = ?",
    "apop_secret": "UPDATE account SET apop_secret = ? WHERE address = ?",
    "name": "UPDATE account SET name = ? WHERE address = ?",
    "quota": "UPDATE account SET quota = ? WHERE address = ?",
}


def update_account(txn: Txn, address: str, field: str, value: object) -> None:
    """Set one field of ACCOUNT_UPDATES."""
    cursor = txn.conn.execute(ACCOUNT_UPDATES[field], (value, rows.normal_address(address)))
    if cursor.rowcount == 0:
        raise NotFound(f"no account {address}")


def remove_account(txn: Txn, address: str) -> None:
    # Mailboxes and entries go by ON DELETE CASCADE; the triggers release the bodies.
    cursor = txn.conn.execute(
        "DELETE FROM account WHERE address = ?", (rows.normal_address(address),)
    )
    if cursor.rowcount == 0:
        raise NotFound(f"no account {address}")


# -- aliases -------------------------------------------------------------------------


def add_alias(txn: Txn, address: str, targets: Sequence[str]) -> Alias:
    address = rows.normal_address(address)
    if not targets or any(ALIAS_TARGET_SEPARATOR in target for target in targets):
        raise ValueError("an alias needs one or more single-line targets")
    txn.conn.execute(
        "INSERT INTO alias (address, targets) VALUES (?, ?) "
        "ON CONFLICT (address) DO UPDATE SET targets = excluded.targets",
        (address, ALIAS_TARGET_SEPARATOR.join(targets)),
    )
    return Alias(address, tuple(targets))


def get_alias(conn: sqlite3.Connection, address: str) -> Alias:
    row = conn.execute(
        "SELECT address, targets FROM alias WHERE address = ?", (rows.normal_address(address),)
    ).fetchone()
    if row is None:
        raise NotFound(f"no alias {address}")
    return Alias(row[0], tuple(row[1].split(ALIAS_TARGET_SEPARATOR)))


def remove_alias(txn: Txn, address: str) -> None:
    cursor = txn.conn.execute(
        "DELETE FROM alias WHERE address = ?", (rows.normal_address(address),)
    )
    if cursor.rowcount == 0:
        raise NotFound(f"no alias {address}")


def list_aliases(conn: sqlite3.Connection) -> list[Alias]:
    cursor = conn.execute("SELECT address, targets FROM alias ORDER BY address")
    return [Alias(row[0], tuple(row[1].split(ALIAS_TARGET_SEPARATOR))) for row in cursor]


# -- mailboxes -----------------------------------------------------------------------


def _next_uidvalidity(conn: sqlite3.Connection) -> int:
    """RFC 3501 §2.3.1.1: from the clock, and never the same twice in this store."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()
    last = 0 if row is None else int(row[0])
    value = max(int(time.time()), last + 1)
    if value > MAX_UIDVALIDITY:
        value = last + 1 if last < MAX_UIDVALIDITY else 1
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (value,),
    )
    return value


def create_mailbox(
    txn: Txn, account_id: AccountId, name: str, special_use: str | None, subscribed: bool
) -> Mailbox:
    conn = txn.conn
    if conn.execute("SELECT 1 FROM account WHERE id = ?", (account_id,)).fetchone() is None:
        raise NotFound(f"no account {account_id}")
    name = rows.mailbox_name(name)
    if subscribed:
        set_subscription(txn, account_id, name, True)
    row = conn.execute(_INSERT_MAILBOX, (account_id, name, _next_uidvalidity(conn), special_use))
    return rows.mailbox(rows.returning(row)[0])


def get_mailbox(conn: sqlite3.Connection, account_id: AccountId, name: str) -> Mailbox:
    row = conn.execute(
        rows.SELECT_MAILBOX + "WHERE account_id = ? AND name = ?",
        (account_id, rows.mailbox_name(name)),
    ).fetchone()
    if row is None:
        raise NotFound(f"no mailbox {name}")
    return rows.mailbox(row)


def get_mailbox_by_id(conn: sqlite3.Connection, mailbox_id: MailboxId) -> Mailbox:
    row = conn.execute(
        rows.SELECT_MAILBOX + "WHERE id = ?",
        (mailbox_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return rows.mailbox(row)


def list_mailboxes(conn: sqlite3.Connection, account_id: AccountId) -> list[Mailbox]:
    cursor = conn.execute(
        rows.SELECT_MAILBOX + "WHERE account_id = ? ORDER BY name <> 'INBOX', name",
        (account_id,),
    )
    return [rows.mailbox(row) for row in cursor]


def rename_mailbox(txn: Txn, mailbox_id: MailboxId, new_name: str) -> Mailbox:
    conn = txn.conn
    old = get_mailbox_by_id(conn, mailbox_id)
    new_name = rows.mailbox_name(new_name)
    if old.name != INBOX:
        # Children first (and never the mailbox itself), so that a rename to one of its
        # own inferiors ("A" to "A/B") cannot rename the renamed row a second time.
        prefix = old.name + rows.HIERARCHY_SEPARATOR
        conn.execute(
            "UPDATE mailbox SET name = ? || substr(name, ?) "
            "WHERE account_id = ? AND substr(name, 1, ?) = ? AND id <> ?",
            (
                new_name + rows.HIERARCHY_SEPARATOR,
                len(prefix) + 1,
                old.account_id,
                len(prefix),
                prefix,
                mailbox_id,
            ),
        )
    conn.execute("UPDATE mailbox SET name = ? WHERE id = ?", (new_name, mailbox_id))
    _rename_subscriptions(conn, old, new_name)
    if old.name == INBOX:
        # RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name, leaves
        # INBOX empty and does not touch INBOX's inferiors.
        create_mailbox(txn, old.account_id, INBOX, None, subscribed=True)
    return get_mailbox_by_id(conn, mailbox_id)


def _rename_subscriptions(conn: sqlite3.Connection, old: Mailbox, new_name: str) -> None:
    """Subscribed names under a renamed mailbox go with it (as Dovecot's do); INBOX's stays
    for the new INBOX, and its inferiors do not move (RFC 3501 §6.3.5)."""
    if old.name == INBOX:
        return
    prefix = old.name + rows.HIERARCHY_SEPARATOR
    account = old.account_id
    found = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM subscription WHERE account_id = ? "
            "AND (name = ? OR substr(name, 1, ?) = ?)",
            (account, old.name, len(prefix), prefix),
        )
    ]
    for name in found:
        conn.execute("DELETE FROM subscription WHERE account_id = ? AND name = ?", (account, name))
    for name in found:
        conn.execute(
            "INSERT INTO subscription (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (account, new_name + name[len(old.name) :]),
        )


def delete_mailbox(txn: Txn, mailbox_id: MailboxId) -> None:
    found = get_mailbox_by_id(txn.conn, mailbox_id)
    if found.name == INBOX:
        raise InUse("INBOX cannot be deleted")  # RFC 3501 §6.3.4
    txn.conn.execute("DELETE FROM mailbox WHERE id = ?", (mailbox_id,))


def set_subscription(txn: Txn, account_id: AccountId, name: str, subscribed: bool) -> bool:
    """Add or remove a subscribed name (it need not have a mailbox); True if it changed."""
    name = rows.mailbox_name(name)
    if subscribed:
        cursor = txn.conn.execute(
            "INSERT INTO subscription (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (account_id, name),
        )
    else:
        cursor = txn.conn.execute(
            "DELETE FROM subscription WHERE account_id = ? AND name = ?", (account_id, name)
        )
    return cursor.rowcount > 0


def list_subscriptions(conn: sqlite3.Connection, account_id: AccountId) -> list[str]:
    cursor = conn.execute(
        "SELECT name FROM subscription WHERE account_id = ? ORDER BY name", (account_id,)
    )
    return [row[0] for row in cursor]
