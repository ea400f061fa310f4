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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pillarbox.store.api import (
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
        self, snapshot: MailboxSnapshot, read_only: bool, recent: Iterable[Uid] = ()
    ) -> None:
        box = snapshot.mailbox
        self.mailbox_id: MailboxId = box.id
        self.name = box.name
        self.uidvalidity = box.uidvalidity
        self.read_only = read_only
        # Sequence number n is uids[n - 1]; 4 octets per message (RFC 3501 §2.3.1.1: UIDs
        # are 32-bit), so 10,000 idle sessions on big mailboxes stay small.
        self.uids: array[int] = array("I", snapshot.uids)
        self.uidnext: Uid = box.uidnext
        self.modseq: ModSeq = box.highestmodseq  # everything up to here is known
        self.recent: set[Uid] = set(recent)
        self.flags: frozenset[str] = snapshot.flags
        self._new: list[Uid] = []  # appended, not yet told (EXISTS)
        self._gone: set[Uid] = set()  # expunged in the store, still numbered for the client
        self._flag_news: dict[Uid, MailboxEntry] = {}
        self._told: dict[Uid, ModSeq] = {}  # flag states this session already sent
        self._recent_told = len(self.recent)
        self.dirty = False  # the feed said something changed

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

    async def refresh(self, store: Store) -> None:
        """Read the store's changes since the last known MODSEQ into the pending news."""
        changes = await store.changes_since(self.mailbox_id, self.modseq)
        new = self.absorb(changes)
        if new and not self.read_only:
            # RFC 3501 §2.3.2: the first session to be told of a message gets \Recent.
            mark = await store.claim_recent(self.mailbox_id, max(new))
            self.recent.update(uid for uid in new if uid > mark)
        self.dirty = False

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
        self.uids = array("I", (uid for uid in self.uids if uid not in uids))
        self._recent_told = len(self.recent)
        return [Expunged(seq) for seq in seqs]
