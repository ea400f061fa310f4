"""What changed in each selected mailbox, read once per commit for every session.

After every command, and whenever the change feed wakes an idling session, a session asks
"what changed in this mailbox since MODSEQ n" (RFC 7162 §3.1.1; RFC 3501 §7.4.1 news).
Each session has its own n, so asking the store for each would cost one read per session
per commit: with 1,000 sessions idling on a mailbox, 1,000 reads before the last one hears
of the new mail. Instead `ChangeReads` keeps a short log per mailbox: the store is asked
only for what is newer than the log (one read, shared by every session that waits for it),
and each session takes its part of the log in memory.

The log holds the latest state of every entry changed after its `floor`, in MODSEQ order,
and the UIDs expunged after it. An expunged UID is logged with the MODSEQ its read reached
(the store reports no finer one), so a session may hear of an expunge it already knows;
that is harmless, as a view ignores UIDs it no longer numbers.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from dataclasses import dataclass, field
from typing import Final

from pillarbox.store.api import (
    Change,
    Mailbox,
    MailboxChanges,
    MailboxEntry,
    MailboxId,
    ModSeq,
    NotFound,
    Store,
    Uid,
)

# Changes kept per mailbox; a session further behind reads the store itself.
MAX_LOGGED_CHANGES: Final = 4096
# Mailboxes with a log (the oldest is dropped first).
MAX_LOGGED_MAILBOXES: Final = 256


@dataclass(slots=True)
class _Log:
    """The changes of one mailbox after `floor`, up to `mailbox.highestmodseq`."""

    floor: ModSeq
    mailbox: Mailbox
    modseqs: list[int] = field(default_factory=list)  # ascending, one per record
    records: list[MailboxEntry | Uid] = field(default_factory=list)

    @property
    def top(self) -> ModSeq:
        return self.mailbox.highestmodseq

    def add(self, changes: MailboxChanges) -> None:
        for entry in sorted(changes.changed, key=lambda e: e.modseq):
            self.modseqs.append(entry.modseq)
            self.records.append(entry)
        reached = changes.mailbox.highestmodseq
        for uid in changes.expunged:
            self.modseqs.append(reached)
            self.records.append(uid)
        self.mailbox = changes.mailbox
        if len(self.records) > MAX_LOGGED_CHANGES:
            cut = len(self.records) - MAX_LOGGED_CHANGES // 2
            self.floor = ModSeq(self.modseqs[cut - 1])
            del self.modseqs[:cut], self.records[:cut]

    def since(self, since: ModSeq) -> MailboxChanges:
        """The changes after `since` (not below `floor`), as the store would report them."""
        start = bisect.bisect_right(self.modseqs, since)
        latest: dict[Uid, MailboxEntry] = {}
        expunged: set[Uid] = set()
        for record in self.records[start:]:
            if isinstance(record, MailboxEntry):
                latest[record.uid] = record  # later records hold later states
            else:
                expunged.add(record)
        # An expunged UID never comes back (RFC 3501 §2.3.1.1): its earlier states go.
        alive = (entry for uid, entry in latest.items() if uid not in expunged)
        changed = tuple(sorted(alive, key=lambda e: e.uid))
        return MailboxChanges(self.mailbox, changed, tuple(sorted(expunged)))


class ChangeReads:
    """One store read per mailbox per commit, however many sessions need to hear of it."""

    def __init__(self, store: Store, size: int = MAX_LOGGED_MAILBOXES) -> None:
        self.store = store
        self._size = size
        self._logs: dict[MailboxId, _Log] = {}
        self._flying: dict[MailboxId, asyncio.Future[None]] = {}

    async def changes(
        self, mailbox_id: MailboxId, since: ModSeq, wanted: ModSeq | None, uidvalidity: int = 0
    ) -> MailboxChanges:
        """Changes after `since`, current at least up to `wanted` (None: ask the store, for
        changes another process made without this process's feed)."""
        log = self._logs.get(mailbox_id)
        if log is None or since < log.floor:
            changes = await self.store.changes_since(mailbox_id, since)
            _check(changes.mailbox, uidvalidity)
            if log is None:
                self._start(mailbox_id, since, changes)
            return changes
        if wanted is None or log.top < wanted:
            await self._catch_up(mailbox_id, log, wanted)
            caught = self._logs.get(mailbox_id)
            if caught is None or since < caught.floor:  # the log started again meanwhile
                changes = await self.store.changes_since(mailbox_id, since)
                _check(changes.mailbox, uidvalidity)
                return changes
            log = caught
        _check(log.mailbox, uidvalidity)
        return log.since(since)

    def cached(
        self, mailbox_id: MailboxId, since: ModSeq, wanted: ModSeq, uidvalidity: int
    ) -> MailboxChanges | None:
        """`changes` when the log alone can answer (no read, no wait), else None."""
        log = self._logs.get(mailbox_id)
        if log is None or since < log.floor or log.top < wanted:
            return None
        if log.mailbox.uidvalidity != uidvalidity:
            return None  # `changes` reports the loss of the mailbox
        return log.since(since)

    async def warm(self, mailbox_id: MailboxId, since: ModSeq, wanted: ModSeq) -> None:
        """Bring the log up to `wanted`, covering `since`, so that sessions waiting for
        that MODSEQ then take their changes from memory (IDLE: one read for all idlers)."""
        log = self._logs.get(mailbox_id)
        if log is not None and since >= log.floor:
            if log.top < wanted:
                await self._catch_up(mailbox_id, log, wanted)
            return
        changes = await self.store.changes_since(mailbox_id, since)
        log = self._logs.get(mailbox_id)
        if log is None or since < log.floor:
            self._logs.pop(mailbox_id, None)
            self._start(mailbox_id, since, changes)

    def offer(self, change: Change) -> None:
        """A change from the feed. One that carries its detail and directly follows the
        log's top extends the log as `changes_since` would, without a read (every later
        session asking up to it is then answered from memory); otherwise it is left for
        the next `changes` to read."""
        detail = change.detail
        if detail is None:
            return
        mailbox_id = change.mailbox_id
        log = self._logs.get(mailbox_id)
        if log is None or change.modseq != log.top + 1 or mailbox_id in self._flying:
            return
        if log.mailbox.uidvalidity != detail.uidvalidity:
            return
        uidnext = Uid(max(log.mailbox.uidnext, detail.uidnext))
        box = dataclasses.replace(log.mailbox, highestmodseq=change.modseq, uidnext=uidnext)
        changed = tuple(sorted(detail.changed, key=lambda e: e.uid))
        log.add(MailboxChanges(box, changed, tuple(sorted(detail.expunged))))

    def _start(self, mailbox_id: MailboxId, since: ModSeq, changes: MailboxChanges) -> None:
        log = _Log(since, changes.mailbox)
        log.add(changes)
        self._logs[mailbox_id] = log
        if len(self._logs) > self._size:
            del self._logs[next(iter(self._logs))]

    async def _catch_up(self, mailbox_id: MailboxId, log: _Log, wanted: ModSeq | None) -> None:
        """Read what is newer than the log; sessions that ask meanwhile share the read."""
        flying = self._flying.get(mailbox_id)
        if flying is not None:
            await asyncio.shield(flying)
            if wanted is not None and log.top >= wanted:
                return
            # A poll must see commits made after the shared read began: read again.
        flying = asyncio.ensure_future(self._read(mailbox_id, log))
        self._flying[mailbox_id] = flying
        try:
            await asyncio.shield(flying)
        finally:
            if self._flying.get(mailbox_id) is flying:
                del self._flying[mailbox_id]

    async def _read(self, mailbox_id: MailboxId, log: _Log) -> None:
        try:
            changes = await self.store.changes_since(mailbox_id, log.top)
        except NotFound:
            self._logs.pop(mailbox_id, None)
            raise
        if changes.mailbox.uidvalidity != log.mailbox.uidvalidity:
            # The mailbox was deleted and its id reused: the log starts again.
            self._logs[mailbox_id] = _Log(changes.mailbox.highestmodseq, changes.mailbox)
            return
        log.add(changes)


def _check(mailbox: Mailbox, uidvalidity: int) -> None:
    """RFC 3501 §2.3.1.1: another UIDVALIDITY means the selected mailbox is gone."""
    if uidvalidity and mailbox.uidvalidity != uidvalidity:
        raise NotFound(f"mailbox {mailbox.id} has a new UIDVALIDITY")
