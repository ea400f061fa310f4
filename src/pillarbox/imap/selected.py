"""The selected mailbox as one session sees it: sequence numbers, \\Recent, pending news.

A session's view of a mailbox lags the store on purpose. RFC 3501 §5.5 and §7.4.1 say when
the client may learn what changed: EXISTS and flag FETCHes at the end of any command, but
EXPUNGE never while answering FETCH, STORE or SEARCH (which name messages by sequence number,
so numbers must not shift under them). The view therefore keeps the UIDs the client knows in
sequence order, collects what the store reports since its last MODSEQ (RFC 7162 §3.1.1), and
hands the news out only when `updates(allow_expunge=...)` is called at an allowed point.

Only UIDs live in memory (a 100,000-message mailbox is one list of ints); flags and MODSEQs
are read from the store when a command needs them.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox.imap import commands as cmd
from pillarbox.imap import responses as rsp
from pillarbox.imap.changelog import ChangeReads
from pillarbox.store import api
from pillarbox.store.api import (
    Mailbox,
    MailboxChanges,
    MailboxEntry,
    MailboxId,
    MailboxSnapshot,
    ModSeq,
    Store,
    Uid,
)


@dataclass(frozen=True, slots=True)
class Expunged:
    """`* n EXPUNGE` (RFC 3501 §7.4.1)."""

    seq: int


@dataclass(frozen=True, slots=True)
class Exists:
    """`* n EXISTS` (RFC 3501 §7.3.1)."""

    count: int


@dataclass(frozen=True, slots=True)
class Recent:
    """`* n RECENT` (RFC 3501 §7.3.2)."""

    count: int


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    """`* n FETCH (FLAGS (...))`: another session (or the store) changed flags (§7.4.2)."""

    seq: int
    uid: Uid
    flags: frozenset[str]
    modseq: ModSeq


Update = Expunged | Exists | Recent | FlagsChanged

RECENT_FLAG = "\\Recent"


class SelectedMailbox:
    """One session's view of its selected mailbox (RFC 3501 §5.5, §7.4.1, RFC 7162)."""

    def __init__(
        self,
        snapshot: MailboxSnapshot,
        read_only: bool,
        recent: Iterable[int] = (),
        listing: Listing | None = None,
    ) -> None:
        box = snapshot.mailbox
        self.mailbox_id: MailboxId = box.id
        self.name = box.name
        self.uidvalidity = box.uidvalidity
        self.read_only = read_only
        # Sequence number n is uids[n - 1]; 4 octets per message (RFC 3501 §2.3.1.1: UIDs
        # are 32-bit), so 10,000 idle sessions on big mailboxes stay small.
        self.uids: array[int] = array("I", snapshot.uids) if listing is None else listing.uids
        self.uidnext: Uid = box.uidnext if listing is None else listing.uidnext
        # Everything up to this MODSEQ is known (RFC 7162 §3.1.1).
        self.modseq: ModSeq = box.highestmodseq if listing is None else listing.modseq
        self.recent: set[Uid] = {Uid(uid) for uid in recent}
        self.flags: frozenset[str] = snapshot.flags
        self._new: list[Uid] = []  # appended, not yet told (EXISTS)
        self._gone: set[Uid] = set()  # expunged in the store, still numbered for the client
        self._flag_news: dict[Uid, MailboxEntry] = {}
        self._told: dict[Uid, ModSeq] = {}  # flag states this session already sent
        self._recent_told = len(self.recent)
        self.wanted: ModSeq = self.modseq  # the highest MODSEQ the change feed announced
        # New UIDs whose \Recent this session reserved, and the mark known before.
        self._claim: tuple[int, list[Uid]] | None = None
        self._won: tuple[int, Uid] | None = None  # see `won_recent`

    # -- sequence numbers <-> UIDs ---------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: Uid) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def uid_at(self, seq: int) -> Uid:
        return Uid(self.uids[seq - 1])

    def is_gone(self, uid: Uid) -> bool:
        """Expunged by someone else but not yet announced (RFC 2180 §4.1)."""
        return uid in self._gone

    def live(self, uids: Iterable[int]) -> list[Uid]:
        return [Uid(uid) for uid in uids if uid not in self._gone]

    def is_recent(self, uid: Uid) -> bool:
        return uid in self.recent

    # -- learning what changed -------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """The feed announced a change this view has not read yet."""
        return self.wanted > self.modseq

    def heard(self, modseq: ModSeq) -> None:
        """The change feed announced this MODSEQ for the mailbox."""
        self.wanted = max(self.wanted, modseq)

    async def refresh(self, reads: ChangeReads, claims: RecentClaims, poll: bool) -> None:
        """Read the store's changes since the last known MODSEQ into the pending news.

        `poll` reads even when the feed said nothing (NOOP, IDLE: another process, such as
        the CLI importing mail, changes the store without this process's feed).
        """
        wanted = None if poll else self.wanted
        changes = await reads.changes(self.mailbox_id, self.modseq, wanted, self.uidvalidity)
        self._take(changes, claims)
        await self.settle_claim(reads.store)

    def refresh_now(self, reads: ChangeReads, claims: RecentClaims) -> bool:
        """`refresh` from the shared log alone (IDLE pushes); False, changing nothing, when
        the log does not hold the news. A \\Recent claim may then remain (`claim_due`)."""
        changes = reads.cached(self.mailbox_id, self.modseq, self.wanted, self.uidvalidity)
        if changes is None:
            return False
        self._take(changes, claims)
        return True

    @property
    def claim_due(self) -> bool:
        """New messages wait for this session's \\Recent claim in the store."""
        return self._claim is not None

    async def settle_claim(self, store: Store) -> None:
        """RFC 3501 §2.3.2: confirm this session's claim; what it wins is \\Recent here."""
        claim, self._claim = self._claim, None
        if claim is not None:
            known, new = claim
            mark = max(await store.claim_recent(self.mailbox_id, new[-1]), known)
            alive = set(self._new)  # not expunged meanwhile
            self.recent.update(uid for uid in new if uid > mark and uid in alive)

    def won_recent(self, mark: int, up_to: Uid) -> None:
        """This session's APPEND claimed \\Recent up to `up_to` in the store, above `mark`:
        those UIDs are recent here when this view hears of them (RFC 3501 §2.3.2)."""
        self._won = (mark, up_to)

    def _take(self, changes: MailboxChanges, claims: RecentClaims) -> None:
        new = self.absorb(changes)
        won = self._won
        if new and won is not None:
            mark, up_to = won
            self.recent.update(uid for uid in new if mark < uid <= up_to)
            if max(new) >= up_to:
                self._won = None
            new = [uid for uid in new if uid > up_to]
        if new and not self.read_only:
            # RFC 3501 §2.3.2: the first session to be told of a message gets \Recent.
            known = claims.reserve(self.mailbox_id, self.uidvalidity, max(new))
            if known is not None:
                previous = self._claim
                if previous is not None:  # an earlier claim not yet settled joins this one
                    known, new = min(known, previous[0]), sorted({*previous[1], *new})
                self._claim = (known, sorted(new))

    def absorb(self, changes: MailboxChanges) -> list[Uid]:
        """Merge one change set; returns the UIDs that are new to this view."""
        self.modseq = max(self.modseq, changes.mailbox.highestmodseq)
        self.uidnext = max(self.uidnext, changes.mailbox.uidnext)
        last = self._new[-1] if self._new else Uid(self.uids[-1] if self.uids else 0)
        new: list[Uid] = []
        for entry in changes.changed:
            self.flags = self.flags | entry.flags
            if entry.uid > last:
                new.append(entry.uid)
            elif self.seq_of(entry.uid) is not None and self._told.get(entry.uid) != entry.modseq:
                self._flag_news[entry.uid] = entry
        self._new.extend(new)
        for uid in changes.expunged:
            if self.seq_of(uid) is not None:
                self._gone.add(uid)
                self._flag_news.pop(uid, None)
            elif uid in self._new:
                self._new.remove(uid)
                self.recent.discard(uid)
        pending = set(self._new)
        return [uid for uid in new if uid in pending]

    def told(self, entries: Sequence[MailboxEntry]) -> None:
        """This session sent these flag states itself (STORE, FETCH with \\Seen)."""
        for entry in entries:
            self._told[entry.uid] = entry.modseq
            self._flag_news.pop(entry.uid, None)

    def removed(self, uids: Iterable[Uid]) -> list[Expunged]:
        """This session expunged `uids`: the EXPUNGE responses, renumbering as they go."""
        return self._drop(set(uids))

    # -- handing out the news at allowed points --------------------------------------------

    def updates(self, allow_expunge: bool) -> list[Update]:
        """The untagged news the client may get now (RFC 3501 §7.4.1)."""
        out: list[Update] = []
        if allow_expunge and self._gone:
            out.extend(self._drop(self._gone))
            self._gone = set()
        if self._new:
            self.uids.extend(self._new)
            self._new = []
            out.append(Exists(len(self.uids)))
        if len(self.recent) != self._recent_told or (out and isinstance(out[-1], Exists)):
            self._recent_told = len(self.recent)
            out.append(Recent(len(self.recent)))
        for uid in sorted(self._flag_news):
            seq = self.seq_of(uid)
            entry = self._flag_news[uid]
            if seq is not None and uid not in self._gone:
                out.append(FlagsChanged(seq, uid, entry.flags, entry.modseq))
                self._told[uid] = entry.modseq
        self._flag_news.clear()
        return out

    def _drop(self, uids: set[Uid]) -> list[Expunged]:
        # Highest sequence number first: each EXPUNGE then leaves the lower numbers as they
        # are, so every number sent is right at the instant the client reads it.
        seqs = sorted((seq for uid in uids if (seq := self.seq_of(uid)) is not None), reverse=True)
        for seq in seqs:
            uid = Uid(self.uids[seq - 1])
            self.recent.discard(uid)
            self._told.pop(uid, None)
            del self.uids[seq - 1]  # one memmove in C, even for 100,000 messages
        self._recent_told = len(self.recent)
        return [Expunged(seq) for seq in seqs]


# RFC 3501 §2.3.2 system flags, the FLAGS every mailbox offers.
SYSTEM_FLAGS: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def select_responses(
    tag: str, view: SelectedMailbox, snap: api.MailboxSnapshot, command: cmd.Select | cmd.Examine
) -> list[rsp.Response]:
    """RFC 3501 §6.3.1 untagged data of SELECT/EXAMINE, RFC 7162 §3.1.2 HIGHESTMODSEQ."""
    flags = list(SYSTEM_FLAGS) + sorted(f for f in view.flags if f not in SYSTEM_FLAGS)
    permanent = [*flags, "\\*"] if not view.read_only else []
    out: list[rsp.Response] = [
        rsp.flags(flags),
        rsp.UntaggedStatus(rsp.Status.OK, "Flags permitted", rsp.permanentflags(permanent)),
        rsp.exists(view.exists),
        rsp.recent(len(view.recent)),
    ]
    if snap.first_unseen is not None:
        seq = view.seq_of(snap.first_unseen)
        if seq is not None:
            out.append(rsp.UntaggedStatus(rsp.Status.OK, "First unseen", rsp.unseen(seq)))
    out += [
        rsp.UntaggedStatus(rsp.Status.OK, "UIDs valid", rsp.uidvalidity(view.uidvalidity)),
        rsp.UntaggedStatus(rsp.Status.OK, "Predicted next UID", rsp.uidnext(view.uidnext)),
        rsp.UntaggedStatus(rsp.Status.OK, "Highest", rsp.highestmodseq(view.modseq)),
    ]
    code = rsp.READ_ONLY if view.read_only else rsp.READ_WRITE
    name = "EXAMINE" if isinstance(command, cmd.Examine) else "SELECT"
    out.append(rsp.Tagged(tag, rsp.Status.OK, f"{name} completed", code))
    return out


# -- UID lists shared by the sessions of one service ---------------------------------------

# Mailboxes whose UID list is kept between SELECTs (4 octets per message each).
MAX_LISTED_MAILBOXES: Final = 256


@dataclass(frozen=True, slots=True)
class Listing:
    """A mailbox's UIDs as of a MODSEQ (a fresh copy for each session)."""

    uids: array[int]
    modseq: ModSeq
    uidnext: Uid


class UidIndex:
    """UID lists of recently selected mailboxes, brought up to date from MODSEQ changes.

    SELECT needs every UID of the mailbox (sequence numbers, RFC 3501 §2.3.1.2). Reading
    100,000 of them costs ~30 ms; a mailbox selected again only needs what changed since
    its list was made (RFC 7162 §3.1.1), usually nothing.
    """

    def __init__(self, size: int = MAX_LISTED_MAILBOXES) -> None:
        self._size = size
        self._lists: OrderedDict[tuple[MailboxId, int], Listing] = OrderedDict()

    async def select(
        self, store: Store, box: Mailbox, reads: ChangeReads | None = None
    ) -> tuple[MailboxSnapshot, Listing]:
        """The mailbox's counts and a private copy of its current UID list (the changes
        since the kept list come through `reads` when given, shared with the sessions)."""
        mailbox_id = box.id
        key = (mailbox_id, box.uidvalidity)
        cached = self._lists.get(key)
        snap = await store.mailbox_snapshot(mailbox_id, with_uids=cached is None)
        if cached is None:
            now = snap.mailbox
            listing = Listing(array("I", snap.uids), now.highestmodseq, now.uidnext)
        elif cached.modseq == snap.mailbox.highestmodseq:
            listing = cached
        else:
            top = snap.mailbox.highestmodseq
            changes = await (
                store.changes_since(mailbox_id, cached.modseq)
                if reads is None
                else reads.changes(mailbox_id, cached.modseq, top, box.uidvalidity)
            )
            listing = _advance(cached, changes)
        self._lists[key] = listing
        self._lists.move_to_end(key)
        if len(self._lists) > self._size:
            self._lists.popitem(last=False)
        return snap, Listing(array("I", listing.uids), listing.modseq, listing.uidnext)


def _advance(listing: Listing, changes: MailboxChanges) -> Listing:
    last = listing.uids[-1] if listing.uids else 0
    gone = set(changes.expunged)
    uids = array("I", listing.uids)
    for uid in sorted(gone, reverse=True):  # a few per SELECT; each one memmove in C
        index = bisect.bisect_left(uids, uid)
        if index < len(uids) and uids[index] == uid:
            del uids[index]
    uids.extend(sorted(e.uid for e in changes.changed if e.uid > last and e.uid not in gone))
    box = changes.mailbox
    return Listing(uids, box.highestmodseq, box.uidnext)


class RecentClaims:
    """\\Recent marks this process has claimed (RFC 3501 §2.3.2), to skip store round trips.

    The store's `claim_recent` decides; but when a new message arrives, every session with
    the mailbox selected asks. The first records its claim here before it awaits the store,
    so the others learn at once that the message is taken, without a read or a commit.
    Marks only grow, so a mark known here is never ahead of the store's.
    """

    def __init__(self) -> None:
        # Keyed by UIDVALIDITY too: a deleted mailbox's id may come back for a new one.
        self._marks: dict[tuple[MailboxId, int], int] = {}

    async def claim(self, store: Store, mailbox_id: MailboxId, uidvalidity: int, up_to: Uid) -> Uid:
        known = self.reserve(mailbox_id, uidvalidity, up_to)
        if known is None:
            return Uid(up_to)  # taken by a session of this process: nothing is ours
        mark = await store.claim_recent(mailbox_id, up_to)
        return Uid(max(mark, known))

    def reserve(self, mailbox_id: MailboxId, uidvalidity: int, up_to: Uid) -> int | None:
        """Take the UIDs up to `up_to` for the caller, who must then confirm with the store's
        `claim_recent`: the mark known before, or None if this process took them already."""
        key = (mailbox_id, uidvalidity)
        known = self._marks.get(key, 0)
        if up_to <= known:
            return None
        self._marks[key] = up_to
        return known
