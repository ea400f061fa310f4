"""The selected-mailbox view: sequence numbers, pending news, when EXPUNGE may be sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pillarbox.imap.selected import Exists, Expunged, FlagsChanged, Recent, SelectedMailbox
from pillarbox.store.api import (
    AccountId,
    Mailbox,
    MailboxChanges,
    MailboxEntry,
    MailboxId,
    MailboxSnapshot,
    MessageId,
    ModSeq,
    Uid,
)

BOX = MailboxId(7)
WHEN = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def mailbox(uidnext: int, modseq: int) -> Mailbox:
    return Mailbox(BOX, AccountId(1), "INBOX", 42, Uid(uidnext), ModSeq(modseq), None, True)


def view(*uids: int, modseq: int = 10) -> SelectedMailbox:
    snap = MailboxSnapshot(
        mailbox(max(uids, default=0) + 1, modseq),
        tuple(Uid(u) for u in uids),
        unseen=0,
        first_unseen=None,
        flags=frozenset(),
        recent_mark=Uid(0),
        recent=0,
    )
    return SelectedMailbox(snap, read_only=False)


def entry(uid: int, modseq: int, *flags: str) -> MailboxEntry:
    return MailboxEntry(BOX, Uid(uid), MessageId(uid), ModSeq(modseq), frozenset(flags), WHEN, 10)


def changes(modseq: int, changed: tuple[MailboxEntry, ...] = (), expunged: tuple[int, ...] = ()):
    return MailboxChanges(mailbox(100, modseq), changed, tuple(Uid(u) for u in expunged))


def test_sequence_numbers_map_to_uids_both_ways() -> None:
    v = view(3, 5, 9)
    assert [v.uid_at(n) for n in (1, 2, 3)] == [3, 5, 9]
    assert [v.seq_of(Uid(u)) for u in (3, 5, 9, 4)] == [1, 2, 3, None]


def test_expunge_is_held_back_until_allowed_and_numbers_stay_stable() -> None:
    v = view(3, 5, 9)
    v.absorb(changes(11, expunged=(5,)))
    # During FETCH/STORE/SEARCH the client still numbers 9 as message 3.
    assert v.updates(allow_expunge=False) == []
    assert v.seq_of(Uid(9)) == 3 and v.is_gone(Uid(5))
    assert v.updates(allow_expunge=True) == [Expunged(2)]
    assert list(v.uids) == [3, 9]


def test_several_expunges_are_sent_highest_first() -> None:
    v = view(1, 2, 3, 4)
    v.absorb(changes(11, expunged=(2, 4)))
    assert v.updates(allow_expunge=True) == [Expunged(4), Expunged(2)]
    assert v.exists == 2


def test_new_messages_count_held_back_expunges_in_exists() -> None:
    v = view(1, 2)
    new = v.absorb(changes(12, changed=(entry(3, 12),), expunged=(1,)))
    assert new == [3]
    assert v.updates(allow_expunge=False) == [Exists(3), Recent(0)]
    assert v.updates(allow_expunge=True) == [Expunged(1)]
    assert list(v.uids) == [2, 3]


def test_flag_changes_by_others_become_fetches_but_own_ones_do_not() -> None:
    v = view(1, 2)
    v.told([entry(2, 11, "\\Seen")])
    v.absorb(changes(12, changed=(entry(1, 12, "\\Flagged"), entry(2, 11, "\\Seen"))))
    assert v.updates(allow_expunge=False) == [
        FlagsChanged(1, Uid(1), frozenset({"\\Flagged"}), ModSeq(12))
    ]
    assert v.updates(allow_expunge=False) == []


def test_message_added_and_removed_before_the_client_heard_is_never_mentioned() -> None:
    v = view(1)
    v.absorb(changes(11, changed=(entry(2, 11),)))
    v.absorb(changes(12, expunged=(2,)))
    assert v.updates(allow_expunge=True) == []
    assert list(v.uids) == [1]


def test_own_expunge_renumbers_immediately() -> None:
    v = view(1, 2, 3)
    assert v.removed([Uid(1), Uid(3)]) == [Expunged(3), Expunged(1)]
    assert list(v.uids) == [2] and v.seq_of(Uid(2)) == 1


def test_uid_index_follows_changes_between_selects(tmp_path: Path) -> None:
    from pillarbox.imap.selected import UidIndex
    from tests.imap.harness import Harness, run

    async def check(harness: Harness) -> None:
        index = UidIndex()
        for _ in range(4):
            await harness.append()
        box = await harness.store.get_mailbox(harness.account.id, "INBOX")
        _, first = await index.select(harness.store, box)
        assert list(first.uids) == [1, 2, 3, 4]
        first.uids.append(99)  # each session owns its copy
        await harness.store.expunge(box.id, [Uid(2)])
        await harness.store.store_flags(box.id, [Uid(3)], frozenset({"\\Seen"}), frozenset())
        await harness.append()
        snap, second = await index.select(harness.store, box)
        assert list(second.uids) == [1, 3, 4, 5]
        assert second.modseq == snap.mailbox.highestmodseq
        assert [e.uid for e in await harness.store.list_entries(box.id)] == list(second.uids)

    run(tmp_path, check)
