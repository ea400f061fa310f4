"""The store's interface: what every backend offers and every other layer may call.

Other packages see only this module: the `Store` protocol, its frozen records and the
exceptions below. SQL lives in the backend modules beside it. Every method that changes
data returns only after the change is committed and fsynced ("acknowledged means durable");
a backend batches concurrent writers into one commit (group commit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NewType, Protocol

AccountId = NewType("AccountId", int)
MailboxId = NewType("MailboxId", int)
# One stored body, shared by mailbox entries and queue entries. Never given to another
# body once its own is gone: a reader holding an id finds that body or NotFound.
MessageId = NewType("MessageId", int)
QueueId = NewType("QueueId", int)
Uid = NewType("Uid", int)
ModSeq = NewType("ModSeq", int)

INBOX = "INBOX"
# RFC 6154: the special-use mailboxes every new account gets, name -> attribute.
DEFAULT_SPECIAL_USE: tuple[tuple[str, str], ...] = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


class StoreError(Exception):
    """Base of every store failure. Sessions turn these into protocol replies."""


class NotFound(StoreError):
    """The named domain, account, alias, mailbox, message or queue entry does not exist."""


class AlreadyExists(StoreError):
    """A unique name (domain, account, alias, mailbox) is taken."""


class QuotaExceeded(StoreError):
    """The change would take an account over its quota."""


class InUse(StoreError):
    """The object is still needed: a domain that has accounts, or INBOX (never deleted)."""


class StoreUnavailable(StoreError):
    """A write or read failed for a reason outside the caller's control (disk, I/O)."""


@dataclass(frozen=True, slots=True)
class Domain:
    name: str  # lower-case, IDNA (A-label) form


@dataclass(frozen=True, slots=True)
class Account:
    id: AccountId
    address: str  # the login: local@domain, domain lower-cased
    name: str  # display name, shown by VRFY
    password_hash: str  # argon2 encoded hash
    quota: int  # bytes; 0 = unlimited
    apop_secret: str | None = None  # RFC 1939 §7 shared secret, opt-in


@dataclass(frozen=True, slots=True)
class Alias:
    address: str  # local@domain, or a bare local name that applies in every local domain
    targets: tuple[str, ...]  # addresses, other aliases, or ":include:/path"


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: MailboxId
    account_id: AccountId
    name: str  # hierarchy separator "/", INBOX in upper case
    uidvalidity: int
    uidnext: Uid
    highestmodseq: ModSeq
    special_use: str | None  # "\\Sent", ... (RFC 6154)
    subscribed: bool
    messages: int = 0  # entries in the mailbox
    size: int = 0  # sum of their sizes in octets


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """One message as it appears in one mailbox."""

    mailbox_id: MailboxId
    uid: Uid
    message_id: MessageId
    modseq: ModSeq
    flags: frozenset[str]  # system flags ("\\Seen") and keywords
    internaldate: dt.datetime  # timezone-aware
    size: int  # octets of the stored body


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """Deliver into `mailbox` (default INBOX) of account `account_id`."""

    account_id: AccountId
    mailbox: str = INBOX
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """RFC 3461 §4: the per-recipient DSN parameters of one envelope recipient."""

    address: str  # the forward-path, as given in RCPT TO
    notify: tuple[str, ...] = ()  # () = not given; else subset of SUCCESS/FAILURE/DELAY or NEVER
    orcpt: str | None = None  # "rfc822;addr" decoded from xtext


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope kept with a queued message (RFC 3461 §4 and §5)."""

    sender: str  # reverse-path without brackets; "" for the null sender <>
    ret: str | None = None  # "FULL" or "HDRS"
    envid: str | None = None  # decoded from xtext
    body: str = "7BIT"  # 7BIT, 8BITMIME or BINARYMIME (RFC 6152 / RFC 3030)
    smtputf8: bool = False  # RFC 6531


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted message: where its single stored body goes, in one transaction."""

    body: bytes  # exactly as accepted, CRLF line ends, with trace headers prepended
    envelope: Envelope
    local: Sequence[LocalTarget] = ()
    remote: Sequence[DsnRecipient] = ()  # recipients for the outbound queue
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    parsed: bytes | None = None  # opaque parse cache (the MIME engine's serialized tree)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    message_id: MessageId
    entries: tuple[MailboxEntry, ...]  # the mailbox entries created, in `local` order
    queued: tuple[QueueId, ...]  # queue rows created, in `remote` order


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: QueueId
    message_id: MessageId
    envelope: Envelope
    recipient: DsnRecipient
    size: int
    created: dt.datetime
    attempts: int
    next_attempt: dt.datetime
    last_result: str  # last reply or error text, "" before the first attempt
    held: bool
    lease_owner: str | None = None  # the worker that claimed the entry, until lease_until
    lease_until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """What IMAP SELECT/EXAMINE/STATUS need of a mailbox, read in one transaction."""

    mailbox: Mailbox
    uids: tuple[Uid, ...]  # every entry's UID in order (empty when not asked for)
    unseen: int  # entries without \\Seen
    first_unseen: Uid | None
    flags: frozenset[str]  # every flag and keyword set on some entry
    recent_mark: Uid  # UIDs above it are \\Recent: no session has seen them yet
    recent: int  # entries above recent_mark


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """What changed in a mailbox after a MODSEQ (RFC 7162 §3.1): one consistent read."""

    mailbox: Mailbox  # its highestmodseq is where the caller is now up to date
    changed: tuple[MailboxEntry, ...]  # appended or re-flagged entries, UID order
    expunged: tuple[Uid, ...]  # UIDs removed, UID order


@dataclass(frozen=True, slots=True)
class ChangeDetail:
    """Everything one MODSEQ did to a mailbox (RFC 7162 §3.1.1: one write takes one)."""

    uidvalidity: int
    uidnext: Uid  # the mailbox's UIDNEXT after the change
    changed: tuple[MailboxEntry, ...]  # entries added or re-flagged, as they are now
    expunged: tuple[Uid, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed: a mailbox gained, lost or changed messages.

    `detail`, when the backend gives it, is what `changes_since(modseq - 1)` would have
    reported of this MODSEQ, so a reader that is up to `modseq - 1` needs no read; None
    (or a gap in the MODSEQs) means asking `changes_since`.
    """

    mailbox_id: MailboxId
    modseq: ModSeq
    detail: ChangeDetail | None = None


class Store(Protocol):
    """Persistence for everything Pillarbox keeps. Every backend passes tests/store."""

    async def open(self) -> None:
        """Create or migrate the schema and start background threads/pools."""

    async def close(self) -> None:
        """Finish pending commits and release every resource."""

    # -- domains ----------------------------------------------------------------------
    async def add_domain(self, name: str) -> Domain: ...
    async def remove_domain(self, name: str) -> None: ...
    async def list_domains(self) -> list[Domain]: ...
    async def is_local_domain(self, name: str) -> bool: ...

    # -- accounts ---------------------------------------------------------------------
    async def add_account(
        self, address: str, password_hash: str, name: str = "", quota: int = 0
    ) -> Account:
        """Create the account with INBOX and the DEFAULT_SPECIAL_USE mailboxes.

        Raises NotFound if the address's domain is not local, AlreadyExists if taken.
        """

    async def get_account(self, address: str) -> Account:
        """Look up by address, case-insensitively on the domain. Raises NotFound."""

    async def get_account_by_id(self, account_id: AccountId) -> Account: ...
    async def list_accounts(self, domain: str | None = None) -> list[Account]: ...
    async def set_password(self, address: str, password_hash: str) -> None: ...
    async def set_apop_secret(self, address: str, secret: str | None) -> None: ...
    async def remove_account(self, address: str) -> None:
        """Remove the account, its mailboxes and entries (bodies no longer referenced)."""

    # -- aliases ----------------------------------------------------------------------
    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        """Create or replace the alias. A bare name (no '@') applies in every domain."""

    async def get_alias(self, address: str) -> Alias: ...
    async def remove_alias(self, address: str) -> None: ...
    async def list_aliases(self) -> list[Alias]: ...

    # -- mailboxes --------------------------------------------------------------------
    async def create_mailbox(
        self, account_id: AccountId, name: str, special_use: str | None = None
    ) -> Mailbox: ...
    async def get_mailbox(self, account_id: AccountId, name: str) -> Mailbox:
        """INBOX matches case-insensitively. Raises NotFound."""

    async def list_mailboxes(self, account_id: AccountId) -> list[Mailbox]:
        """Every mailbox of the account with its message count and size."""

    async def get_mailbox_by_id(self, mailbox_id: MailboxId) -> Mailbox:
        """Raises NotFound."""

    async def rename_mailbox(self, mailbox_id: MailboxId, new_name: str) -> Mailbox:
        """Rename the mailbox and its children (RFC 3501 §6.3.5).

        Renaming INBOX moves it under the new name and creates a new, empty INBOX.
        Raises AlreadyExists if the new name (or a renamed child's) is taken.
        """

    async def delete_mailbox(self, mailbox_id: MailboxId) -> None:
        """Delete the mailbox and its entries (not its children). InUse for INBOX."""

    async def set_subscription(self, account_id: AccountId, name: str, subscribed: bool) -> bool:
        """Add or remove a name from the account's subscriptions (RFC 3501 §6.3.6); the
        name need not have a mailbox, and deleting a mailbox keeps its name subscribed.
        True if the subscriptions changed."""

    async def list_subscriptions(self, account_id: AccountId) -> list[str]:
        """The subscribed names, sorted."""

    # -- messages ---------------------------------------------------------------------
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Store one body, add it to each local mailbox and queue each remote recipient.

        One transaction; returns after it is fsynced. Concurrent calls share commits.
        Raises QuotaExceeded (nothing stored) if any local target's quota would be
        exceeded, NotFound for a missing account or mailbox.
        """

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
        """IMAP APPEND and mailbox import: one message into one mailbox, durably."""

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
        """`append` by an IMAP session that has `mailbox` selected: in the same transaction
        the \\Recent mark rises to the new UID, as `claim_recent` would (RFC 3501 §2.3.2).
        Returns the entry and the mark before: the UIDs above it are the caller's."""

    async def copy_entries(
        self,
        mailbox_id: MailboxId,
        uids: Sequence[Uid],
        target_id: MailboxId,
        move: bool = False,
    ) -> list[tuple[Uid, MailboxEntry]]:
        """IMAP COPY/MOVE (RFC 6851): (source UID, new entry) pairs in source UID order.

        The body is shared, not copied. With move=True the sources are expunged in the
        same transaction. Raises QuotaExceeded (nothing changed) for the target account.
        """

    async def set_message_cache(self, message_id: MessageId, parsed: bytes | None) -> None:
        """Store (or clear) the opaque parse cache of a body."""

    async def get_message_cache(self, message_id: MessageId) -> bytes | None: ...

    async def list_expunged(self, mailbox_id: MailboxId, since: ModSeq) -> list[tuple[Uid, ModSeq]]:
        """UIDs expunged with a MODSEQ above `since`, for QRESYNC (RFC 7162 §3.2.5)."""

    async def list_entries(self, mailbox_id: MailboxId) -> list[MailboxEntry]:
        """Every entry of the mailbox in UID order."""

    async def get_body(self, message_id: MessageId) -> bytes: ...

    async def expunge(
        self, mailbox_id: MailboxId, uids: Sequence[Uid], *, only_deleted: bool = False
    ) -> list[Uid]:
        """Remove the entries; returns the UIDs actually removed. Raises HIGHESTMODSEQ.

        `only_deleted`: remove only those whose flags hold \\Deleted at that instant, in
        the same statement (RFC 3501 §6.4.3 EXPUNGE: no flag read before, no race)."""

    async def store_flags(
        self,
        mailbox_id: MailboxId,
        uids: Sequence[Uid],
        add: frozenset[str],
        remove: frozenset[str],
    ) -> list[MailboxEntry]:
        """Add then remove flags on the entries; returns the entries whose flags changed."""

    # -- IMAP selected-mailbox views ----------------------------------------------------
    async def mailbox_snapshot(
        self, mailbox_id: MailboxId, with_uids: bool = True
    ) -> MailboxSnapshot:
        """UIDs, unseen and recent counts, flags in use (RFC 3501 §6.3.1, §6.3.10)."""

    async def changes_since(self, mailbox_id: MailboxId, since: ModSeq) -> MailboxChanges:
        """Entries whose MODSEQ is above `since` and UIDs expunged after it."""

    async def get_entries(self, mailbox_id: MailboxId, uids: Sequence[Uid]) -> list[MailboxEntry]:
        """The entries of these UIDs that exist, in UID order."""

    async def claim_recent(self, mailbox_id: MailboxId, up_to: Uid) -> Uid:
        """RFC 3501 §2.3.2 \\Recent: return the mark and raise it to `up_to`.

        The UIDs above the returned mark are recent for the caller and for no one else.
        """

    async def search_flags(
        self, mailbox_id: MailboxId, present: frozenset[str], absent: frozenset[str]
    ) -> list[Uid]:
        """UIDs (ascending) of the entries with all of `present` and none of `absent`."""

    async def get_messages(
        self, message_ids: Sequence[MessageId]
    ) -> dict[MessageId, tuple[bytes, bytes | None]]:
        """Bodies and parse caches of several messages in one read (missing ids left out)."""

    # -- outbound queue ---------------------------------------------------------------
    async def list_queue(self) -> list[QueueEntry]: ...
    async def get_queue_entry(self, queue_id: QueueId) -> QueueEntry:
        """Raises NotFound."""

    async def remove_queue_entry(self, queue_id: QueueId) -> None:
        """Drop the entry (operator action); its body goes when nothing refers to it."""

    async def hold_queue_entry(
        self, queue_id: QueueId, held: bool, note: str | None = None
    ) -> None:
        """Hold (never claimed) or release an entry; `note` replaces its last_result.

        Holding also drops the entry's lease, so that a release makes it claimable at once.
        """

    async def release_leases(self, owner_prefix: str) -> int:
        """Drop the leases of owners whose name starts with `owner_prefix`; returns how many.

        A node's queue worker calls this when it starts: leases its previous run held
        (it was killed) need not run out before the entries are delivered.
        """

    async def claim_due(
        self, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int
    ) -> list[QueueEntry]:
        """Lease up to `limit` entries due at `now`, not held and not leased by a live lease.

        Each returned entry is leased to `owner` until now + lease; a worker that dies
        loses its lease and the entry becomes claimable again.
        """

    async def finish_queue_entry(self, queue_id: QueueId) -> None:
        """The entry is done (delivered or bounced): remove it in one transaction."""

    async def reschedule_queue_entry(
        self, queue_id: QueueId, next_attempt: dt.datetime, last_result: str
    ) -> QueueEntry:
        """Count one more attempt, record its result, release the lease."""

    async def flush_queue(self, domain: str | None = None, now: dt.datetime | None = None) -> int:
        """Make entries (of recipients in `domain`, or all) due now; returns how many."""

    # -- change feed ------------------------------------------------------------------
    def subscribe(self, account_id: AccountId) -> ChangeFeed:
        """A feed of Change records for the account's mailboxes, for IMAP IDLE/NOOP."""


class ChangeFeed(Protocol):
    async def get(self) -> Change:
        """Wait for the next change."""

    def get_nowait(self) -> Change | None:
        """The next change if one is waiting (IMAP checks between commands), else None."""

    def close(self) -> None: ...
