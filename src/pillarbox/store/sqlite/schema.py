"""The SQLite schema and its migrations, versioned by PRAGMA user_version.

Each migration is a tuple of single statements (triggers contain ';', so no script
splitting); `migrate` applies the missing ones in one IMMEDIATE transaction, so two
processes that open a new file at once cannot both create it.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from pillarbox.store.api import StoreUnavailable

# Version 1: the data model of DESIGN.md. Message bodies are stored once and reference
# counted by triggers: every mailbox entry and queue row holds one reference, and the
# body row is deleted when the last one goes. Mailbox counters (messages, size) are kept
# by the same triggers so that STATUS and the quota check never scan entries.
SCHEMA_V1: Final[tuple[str, ...]] = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE domain (
        name TEXT PRIMARY KEY COLLATE NOCASE
    ) WITHOUT ROWID""",
    """CREATE TABLE account (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE COLLATE NOCASE,
        domain TEXT NOT NULL REFERENCES domain(name),
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        quota INTEGER NOT NULL,
        apop_secret TEXT
    )""",
    "CREATE INDEX account_domain ON account(domain)",
    """CREATE TABLE alias (
        address TEXT PRIMARY KEY COLLATE NOCASE,
        targets TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE mailbox (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL,
        highestmodseq INTEGER NOT NULL,
        special_use TEXT,
        subscribed INTEGER NOT NULL,
        messages INTEGER NOT NULL DEFAULT 0,
        size INTEGER NOT NULL DEFAULT 0,
        UNIQUE (account_id, name)
    )""",
    """CREATE TABLE message (
        id INTEGER PRIMARY KEY,
        body BLOB NOT NULL,
        size INTEGER NOT NULL,
        refs INTEGER NOT NULL DEFAULT 0,
        parsed BLOB
    )""",
    """CREATE TABLE entry (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags TEXT NOT NULL,
        internaldate REAL NOT NULL,
        tzoffset INTEGER NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID""",
    """CREATE TABLE expunged (
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID""",
    """CREATE TABLE queue (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL,
        sender TEXT NOT NULL,
        ret TEXT,
        envid TEXT,
        body_type TEXT NOT NULL,
        smtputf8 INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        notify TEXT NOT NULL,
        orcpt TEXT,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        last_result TEXT NOT NULL DEFAULT '',
        held INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL
    )""",
    "CREATE INDEX queue_due ON queue(next_attempt)",
    """CREATE TRIGGER entry_added AFTER INSERT ON entry BEGIN
        UPDATE message SET refs = refs + 1 WHERE id = NEW.message_id;
        UPDATE mailbox SET messages = messages + 1, size = size + NEW.size
            WHERE id = NEW.mailbox_id;
    END""",
    """CREATE TRIGGER entry_removed AFTER DELETE ON entry BEGIN
        UPDATE mailbox SET messages = messages - 1, size = size - OLD.size
            WHERE id = OLD.mailbox_id;
        UPDATE message SET refs = refs - 1 WHERE id = OLD.message_id;
    END""",
    """CREATE TRIGGER queue_added AFTER INSERT ON queue BEGIN
        UPDATE message SET refs = refs + 1 WHERE id = NEW.message_id;
    END""",
    """CREATE TRIGGER queue_removed AFTER DELETE ON queue BEGIN
        UPDATE message SET refs = refs - 1 WHERE id = OLD.message_id;
    END""",
    """CREATE TRIGGER message_unreferenced AFTER UPDATE OF refs ON message
        WHEN NEW.refs <= 0 BEGIN
        DELETE FROM message WHERE id = NEW.id;
    END""",
)

# Index i holds the statements that take the schema from version i to version i + 1.
# Conditions of the partial indexes below; queries must use exactly these texts for
# SQLite to pick the indexes. The entry.flags column is space-separated, sorted flags.
UNSEEN_CONDITION: Final = "instr(' ' || flags || ' ', ' \\Seen ') = 0"
KEYWORDS_CONDITION: Final = "flags NOT IN ('', '\\Seen')"

# Version 2: IMAP sessions ask "what changed in this mailbox since MODSEQ n" after every
# command (RFC 7162 §3.1; selected-mailbox updates, CONDSTORE CHANGEDSINCE): an index
# makes that a range scan instead of a scan of the whole mailbox.
# Two partial indexes hold only the rows SELECT and SEARCH look for most: unread messages
# (RFC 3501 §6.3.1 UNSEEN, SEARCH UNSEEN) and messages with flags other than \Seen (the
# FLAGS a mailbox uses); in a 100,000-message mailbox both are small.
SCHEMA_V2: Final[tuple[str, ...]] = (
    "CREATE INDEX entry_modseq ON entry(mailbox_id, modseq)",
    "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq)",
    f"CREATE INDEX entry_unseen ON entry(mailbox_id, uid, flags) WHERE {UNSEEN_CONDITION}",
    f"CREATE INDEX entry_keywords ON entry(mailbox_id, flags) WHERE {KEYWORDS_CONDITION}",
)

# Version 3: reference counts move to a narrow table of their own. Counting down in the
# message row made SQLite read (and compare) the whole body for every expunged entry,
# since an UPDATE rebuilds the row and `refs` sits after `body`: a POP3 QUIT that removed
# 1,000 messages of 100 KB read 100 MB twice, once to count down and once to delete. Now
# the count is a few octets and only the final DELETE of a body walks its pages.
# message.refs is left in place, unused: dropping it would rewrite every stored body.
SCHEMA_V3: Final[tuple[str, ...]] = (
    """CREATE TABLE message_refs (
        id INTEGER PRIMARY KEY,
        refs INTEGER NOT NULL
    )""",
    # Counted from the references themselves: reading message.refs would read every body.
    """INSERT INTO message_refs (id, refs)
        SELECT message_id, count(*) FROM (
            SELECT message_id FROM entry UNION ALL SELECT message_id FROM queue
        ) GROUP BY message_id""",
    "DROP TRIGGER entry_added",
    "DROP TRIGGER entry_removed",
    "DROP TRIGGER queue_added",
    "DROP TRIGGER queue_removed",
    "DROP TRIGGER message_unreferenced",
    """CREATE TRIGGER entry_added AFTER INSERT ON entry BEGIN
        INSERT INTO message_refs (id, refs) VALUES (NEW.message_id, 1)
            ON CONFLICT (id) DO UPDATE SET refs = refs + 1;
        UPDATE mailbox SET messages = messages + 1, size = size + NEW.size
            WHERE id = NEW.mailbox_id;
    END""",
    """CREATE TRIGGER entry_removed AFTER DELETE ON entry BEGIN
        UPDATE mailbox SET messages = messages - 1, size = size - OLD.size
            WHERE id = OLD.mailbox_id;
        UPDATE message_refs SET refs = refs - 1 WHERE id = OLD.message_id;
    END""",
    """CREATE TRIGGER queue_added AFTER INSERT ON queue BEGIN
        INSERT INTO message_refs (id, refs) VALUES (NEW.message_id, 1)
            ON CONFLICT (id) DO UPDATE SET refs = refs + 1;
    END""",
    """CREATE TRIGGER queue_removed AFTER DELETE ON queue BEGIN
        UPDATE message_refs SET refs = refs - 1 WHERE id = OLD.message_id;
    END""",
    """CREATE TRIGGER message_unreferenced AFTER UPDATE OF refs ON message_refs
        WHEN NEW.refs <= 0 BEGIN
        DELETE FROM message WHERE id = NEW.id;
        DELETE FROM message_refs WHERE id = NEW.id;
    END""",
)

# Version 4: a message id is never given again. An INTEGER PRIMARY KEY takes the largest
# id + 1, so once the newest message was gone (expunged everywhere, delivered out) the next
# delivery took its id, and a reader still holding the old id (a POP3 maildrop, a FETCH
# between its entry read and its body read) could get the new message's bytes: perhaps
# another account's. A counter in meta hands ids out as AUTOINCREMENT would, without
# rebuilding the table of bodies.
NEXT_MESSAGE_ID: Final = "next_message_id"
SCHEMA_V4: Final[tuple[str, ...]] = (
    f"""INSERT INTO meta (key, value)
        SELECT '{NEXT_MESSAGE_ID}', COALESCE(max(id), 0) + 1 FROM message""",  # noqa: S608
    f"""CREATE TRIGGER message_numbered AFTER INSERT ON message BEGIN
        UPDATE meta SET value = max(value, NEW.id + 1) WHERE key = '{NEXT_MESSAGE_ID}';
    END""",  # noqa: S608
)

# Version 5: subscriptions are names of their own (RFC 3501 §6.3.6: a server MUST NOT
# remove a name from the subscriptions because its mailbox went, and a client may subscribe
# a name that has no mailbox yet). mailbox.subscribed is left in place, unused. (Written
# to run twice: tests build old versions with today's code, which needs the table.)
SCHEMA_V5: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS subscription (
        account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (account_id, name)
    ) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO subscription (account_id, name) "
    "SELECT account_id, name FROM mailbox WHERE subscribed",
)

MIGRATIONS: list[tuple[str, ...]] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5]


def latest_version() -> int:
    return len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest version; returns the version found before."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        if found > latest_version():
            raise StoreUnavailable(
                f"database schema version {found} is newer than this program's ({latest_version()})"
            )
        for version in range(found, latest_version()):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        if found != latest_version():
            # PRAGMA takes no parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {latest_version():d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
