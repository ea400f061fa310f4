"""Message commands: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE, UID EXPUNGE, APPEND.

Each handler gets the session, its selected view and the command, and returns the
responses with the tagged completion last. Sequence sets are resolved against the view
(the numbers the client knows), never against the store's present contents (RFC 3501
§7.4.1); UID sets are resolved against the view's UIDs too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from pillarbox.imap import commands as cmd
from pillarbox.imap import fetch as fetching
from pillarbox.imap import mailboxes
from pillarbox.imap import responses as rsp
from pillarbox.imap import search as searching
from pillarbox.imap.mailboxes import Refused
from pillarbox.imap.selected import SelectedMailbox
from pillarbox.imap.sequence import SequenceSet, format_ordered, format_set
from pillarbox.mime import cache as mime_cache
from pillarbox.mime.parts import normalize_line_ends, parse
from pillarbox.store import api
from pillarbox.store.api import MailboxEntry, Store, Uid

if TYPE_CHECKING:
    from pillarbox.imap.session import ImapSession

SEEN: Final = "\\Seen"
DELETED: Final = "\\Deleted"
RECENT: Final = "\\Recent"
REPLACE: Final = cmd.StoreMode.REPLACE
# A UID FETCH of at most this many messages may be answered from the render cache alone.
MAX_CACHED_ANSWER: Final = 64
# Messages above this size are parsed off the event loop (a 35 MB parse takes ~100 ms).
PARSE_IN_THREAD: Final = 1024 * 1024

READ_ONLY: Final = Refused("Mailbox is read-only")
BAD_SEQUENCE: Final = Refused("Invalid message sequence number", status=rsp.Status.BAD)


def ok(tag: str, text: str, code: rsp.Code | None = None) -> rsp.Tagged:
    return rsp.Tagged(tag, rsp.Status.OK, text, code)


def resolve(view: SelectedMailbox, numbers: SequenceSet, uid: bool) -> list[Uid]:
    """The UIDs a set names, ascending (RFC 3501 §6.4.8; §9 seq-number)."""
    if uid:
        return [Uid(u) for u in numbers.select(view.uids)]
    if not numbers.within(view.exists) and not (numbers.uses_star and not view.exists):
        raise BAD_SEQUENCE  # RFC 3501 §9: but "1:*" in an empty mailbox just finds nothing
    uids = view.uids
    return [Uid(uids[seq - 1]) for seq in numbers.iter(view.exists)]


# -- FETCH (RFC 3501 §6.4.5) ---------------------------------------------------------------


async def _mark_seen(
    session: ImapSession, view: SelectedMailbox, entries: list[MailboxEntry]
) -> tuple[list[MailboxEntry], set[Uid]]:
    """RFC 3501 §6.4.5: a non-PEEK body fetch sets \\Seen; returns entries and the changed."""
    unseen = [e.uid for e in entries if SEEN not in e.flags]
    if not unseen:
        return entries, set()
    changed = await session.store.store_flags(
        view.mailbox_id, unseen, frozenset({SEEN}), frozenset()
    )
    view.told(changed)
    by_uid = {e.uid: e for e in changed}
    return [by_uid.get(e.uid, e) for e in entries], set(by_uid)


def _items_for(
    session: ImapSession, command: cmd.Fetch, seen_changed: bool
) -> tuple[cmd.FetchItem, ...]:
    items = command.items
    if seen_changed and not any(isinstance(i, cmd.Flags) for i in items):
        items = (*items, cmd.Flags())  # RFC 3501 §6.4.5: the \Seen change is reported
    if session.condstore and cmd.ModSeq() not in items:
        items = (*items, cmd.ModSeq())  # RFC 7162 §3.1: CONDSTORE-aware: MODSEQ always
    return items


async def _answer(
    session: ImapSession,
    view: SelectedMailbox,
    command: cmd.Fetch,
    entries: list[MailboxEntry],
    changed: set[Uid],
    out: list[rsp.Response],
) -> int:
    """Append one FETCH response per entry to `out`; returns how many had vanished.

    Content values (header fields, ENVELOPE, ...) come from the shared render cache when
    it has them; only the messages it lacks are loaded, a batch at a time.
    """
    plain = fetching.plan(_items_for(session, command, seen_changed=False))
    flagged = fetching.plan(_items_for(session, command, seen_changed=True)) if changed else plain
    cache, shape = session.context.rendered, plain.shape
    mailbox, validity = view.mailbox_id, view.uidvalidity
    # (Local names: these loops run once per message, 50 per FETCH of the newest headers.)
    cached, seq_of, recent, new_message = cache.get, view.seq_of, view.recent, fetching.Message
    vanished = 0
    for batch in fetching.batches(entries):
        known: dict[Uid, list[bytes]] = {}
        missing: list[MailboxEntry] = []
        for entry in batch:
            values = cached((mailbox, validity, entry.uid), shape) if plain.content else []
            if values is None:
                missing.append(entry)
            else:
                known[entry.uid] = values
        loaded = await session.source.load_many(missing) if missing else {}
        lines: list[bytes] = []
        for entry in batch:
            uid = entry.uid
            seq = seq_of(uid)
            if seq is None:
                continue  # no longer numbered in this view: nothing to answer for it
            values = known.get(uid)
            if values is None:
                content = loaded.get(entry.message_id)
                if content is None:
                    vanished += 1  # expunged by another session meanwhile
                    continue
                message = new_message(entry, uid in recent, *content)
                values = plain.content_values(message)
                cache.put((mailbox, validity, uid), shape, values)
            else:
                message = new_message(entry, uid in recent)
            plan = flagged if uid in changed else plain
            lines.append(plan.line(seq, message, values))
        if lines:
            out.append(rsp.Lines(b"".join(lines)))
    return vanished


def _from_cache(
    session: ImapSession, view: SelectedMailbox, command: cmd.Fetch, uids: list[Uid]
) -> list[rsp.Response] | None:
    """A UID FETCH of UIDs and content only (`UID FETCH 7 BODY.PEEK[]`) that the render
    cache answers in full needs no store read: nothing in it depends on flags or MODSEQs.
    RFC 2180 §4.1.1 lets a message expunged meanwhile be answered like this too."""
    if not command.uid or command.changedsince is not None or len(uids) > MAX_CACHED_ANSWER:
        return None
    if not view.read_only and any(fetching.sets_seen(item) for item in command.items):
        return None
    plan = fetching.plan(_items_for(session, command, seen_changed=False))
    if not plan.uid_only:
        return None
    cache, lines = session.context.rendered, []
    for uid in uids:
        values = cache.get((view.mailbox_id, view.uidvalidity, uid), plan.shape)
        seq = view.seq_of(uid)
        if values is None or seq is None:
            return None
        lines.append(plan.uid_line(seq, uid, values))
    return [rsp.Lines(b"".join(lines))] if lines else []


async def on_fetch(
    session: ImapSession, view: SelectedMailbox, tag: str, command: cmd.Fetch
) -> list[rsp.Response]:
    uids = resolve(view, command.sequence_set, command.uid)
    if command.changedsince is not None or cmd.ModSeq() in command.items:
        session.condstore = True  # RFC 7162 §3.1: a CONDSTORE enabling command
    cached = _from_cache(session, view, command, uids)
    if cached is not None:
        return [*cached, ok(tag, "FETCH completed")]
    entries = await session.store.get_entries(view.mailbox_id, uids)
    vanished = len(uids) - len(entries)
    if command.changedsince is not None:
        since = command.changedsince
        entries = [e for e in entries if e.modseq > since]  # RFC 7162 §3.1.4.1
    changed: set[Uid] = set()
    if not view.read_only and any(fetching.sets_seen(item) for item in command.items):
        entries, changed = await _mark_seen(session, view, entries)
    out: list[rsp.Response] = []
    try:
        vanished += await _answer(session, view, command, entries, changed, out)
    except fetching.UnknownTransferEncoding:
        code = rsp.UNKNOWN_CTE
        return [*out, rsp.Tagged(tag, rsp.Status.NO, "Unknown transfer encoding", code)]
    if vanished and not command.uid:
        # RFC 2180 §4.1.2 / RFC 5530: some numbered messages were expunged by another session.
        text = "Some messages were expunged"
        return [*out, rsp.Tagged(tag, rsp.Status.NO, text, rsp.EXPUNGEISSUED)]
    return [*out, ok(tag, "FETCH completed")]


# -- STORE (RFC 3501 §6.4.6, RFC 7162 §3.1.3) ----------------------------------------------


def _changes(
    command: cmd.Store, entries: list[MailboxEntry]
) -> tuple[frozenset[str], frozenset[str]]:
    flags = frozenset(command.flags) - {RECENT}  # \Recent is never stored (§2.3.2)
    if command.mode is cmd.StoreMode.ADD:
        return flags, frozenset()
    if command.mode is cmd.StoreMode.REMOVE:
        return frozenset(), flags
    current: set[str] = set()
    for entry in entries:
        current |= entry.flags
    return flags, frozenset(current) - flags


async def _silent_store(
    session: ImapSession, view: SelectedMailbox, tag: str, command: cmd.Store, uids: list[Uid]
) -> list[rsp.Response]:
    """+FLAGS.SILENT / -FLAGS.SILENT: only what changes is reported (to CONDSTORE clients,
    RFC 7162 §3.1.3), so the flags need no read before the write (which reads them)."""
    add, remove = _changes(command, [])
    changed = await session.store.store_flags(view.mailbox_id, uids, add, remove)
    view.told(changed)
    out: list[rsp.Response] = []
    if session.condstore:
        out += [_flags_fetch(session, view, entry, command.uid) for entry in changed]
    return [*out, ok(tag, "STORE completed")]


async def on_store(
    session: ImapSession, view: SelectedMailbox, tag: str, command: cmd.Store
) -> list[rsp.Response]:
    if view.read_only:
        raise READ_ONLY
    uids = view.live(resolve(view, command.sequence_set, command.uid))
    if command.silent and command.unchangedsince is None and command.mode is not REPLACE:
        return await _silent_store(session, view, tag, command, uids)
    entries = await session.store.get_entries(view.mailbox_id, uids)
    modified: list[int] = []
    if command.unchangedsince is not None:
        session.condstore = True
        # RFC 7162 §3.1.3: messages changed after UNCHANGEDSINCE are left alone and named.
        limit = command.unchangedsince
        stale = [e for e in entries if e.modseq > limit]
        modified = [e.uid if command.uid else (view.seq_of(e.uid) or 0) for e in stale]
        entries = [e for e in entries if e.modseq <= limit]
    add, remove = _changes(command, entries)
    changed = await session.store.store_flags(
        view.mailbox_id, [e.uid for e in entries], add, remove
    )
    view.told(changed)
    out: list[rsp.Response] = []
    if not command.silent or session.condstore:
        by_uid = {e.uid: e for e in changed}
        for entry in entries:
            now = by_uid.get(entry.uid, entry)
            if command.silent and entry.uid not in by_uid:
                continue
            out.append(_flags_fetch(session, view, now, command.uid))
    code = rsp.modified(format_set(modified)) if modified else None
    return [*out, ok(tag, "STORE completed", code)]


def _flags_fetch(
    session: ImapSession, view: SelectedMailbox, entry: MailboxEntry, with_uid: bool
) -> rsp.FetchData:
    items: list[tuple[bytes, bytes]] = []
    if with_uid:
        items.append((b"UID", b"%d" % entry.uid))
    items.append((b"FLAGS", fetching.flag_list(entry.flags, view.is_recent(entry.uid))))
    if session.condstore:
        items.append((b"MODSEQ", b"(%d)" % entry.modseq))
    return rsp.FetchData(view.seq_of(entry.uid) or 0, tuple(items))


# -- SEARCH (RFC 3501 §6.4.4) ----------------------------------------------------------------


async def on_search(
    session: ImapSession, view: SelectedMailbox, tag: str, command: cmd.Search
) -> list[rsp.Response]:
    try:
        searching.check_charset(command.charset)
    except searching.BadCharset:
        code = rsp.badcharset(sorted(searching.CHARSETS))
        return [rsp.Tagged(tag, rsp.Status.NO, "Unsupported charset", code)]
    matches = await searching.run_search(command.key, view, session.store, session.source)
    modseq = searching.uses_modseq(command.key)
    if modseq:
        session.condstore = True  # RFC 7162 §3.1: SEARCH MODSEQ enables CONDSTORE
    if command.returns is not None:
        line = searching.esearch_response(tag, matches, command.uid, command.returns, modseq)
    else:
        line = searching.search_response(matches, command.uid, modseq)
    return [line, ok(tag, "SEARCH completed")]


# -- COPY / MOVE (RFC 3501 §6.4.7, RFC 4315 §3 COPYUID, RFC 6851) -----------------------------


async def on_copy(
    session: ImapSession, view: SelectedMailbox, tag: str, command: cmd.Copy | cmd.Move
) -> list[rsp.Response]:
    move = isinstance(command, cmd.Move)
    if move and view.read_only:
        raise READ_ONLY
    target = await mailboxes.find_target(session.store, session.account.id, command.mailbox)
    uids = view.live(resolve(view, command.sequence_set, command.uid))
    pairs = await session.store.copy_entries(view.mailbox_id, uids, target.id, move=move)
    name = "MOVE" if move else "COPY"
    if not pairs:
        return [ok(tag, f"{name} completed")]
    code = rsp.copyuid(
        target.uidvalidity,
        format_ordered([source for source, _ in pairs]),
        format_ordered([copy.uid for _, copy in pairs]),
    )
    if not move:
        return [ok(tag, f"{name} completed", code)]
    # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
    out: list[rsp.Response] = [rsp.UntaggedStatus(rsp.Status.OK, "Moved", code)]
    out += [rsp.expunge(e.seq) for e in view.removed(source for source, _ in pairs)]
    return [*out, ok(tag, "MOVE completed")]


# -- EXPUNGE (RFC 3501 §6.4.3, RFC 4315 §2.1 UID EXPUNGE) ----------------------------------


async def expunge_deleted(
    store: Store, view: SelectedMailbox, within: list[Uid] | None
) -> list[Uid]:
    """Remove the \\Deleted messages (of `within`, if given); returns the UIDs removed."""
    candidates = view.live(view.uids if within is None else within)
    if not candidates:
        return []
    return await store.expunge(view.mailbox_id, candidates, only_deleted=True)


async def on_expunge(
    session: ImapSession, view: SelectedMailbox, tag: str, command: cmd.Expunge | cmd.UidExpunge
) -> list[rsp.Response]:
    if view.read_only:
        raise READ_ONLY
    within = None
    if isinstance(command, cmd.UidExpunge):
        within = resolve(view, command.uids, uid=True)
    removed = await expunge_deleted(session.store, view, within)
    out: list[rsp.Response] = [rsp.expunge(e.seq) for e in view.removed(removed)]
    return [*out, ok(tag, "EXPUNGE completed")]


# -- APPEND (RFC 3501 §6.3.11, RFC 4315 §3 APPENDUID) ----------------------------------------


async def _parse_cache(body: bytes) -> bytes:
    if len(body) > PARSE_IN_THREAD:
        tree = await asyncio.to_thread(parse, body)
    else:
        tree = parse(body)
    return mime_cache.dump_tree(tree)


async def on_append(
    session: ImapSession, view: SelectedMailbox | None, tag: str, command: cmd.Append
) -> list[rsp.Response]:
    account = session.account
    target = await mailboxes.find_target(session.store, account.id, command.mailbox)
    if len(command.message) > session.context.max_message_size:
        return [rsp.Tagged(tag, rsp.Status.NO, "Message too large", rsp.TOOBIG)]
    body = normalize_line_ends(command.message)
    flags = frozenset(command.flags) - {RECENT}
    parsed = await _parse_cache(body)
    store = session.store
    selected = view is not None and not view.read_only and view.mailbox_id == target.id
    selected = selected and view is not None and view.uidvalidity == target.uidvalidity
    try:
        if view is not None and selected:
            # RFC 3501 §2.3.2: the session told first gets \Recent; this one will be told
            # at the end of the command, so its claim goes into the APPEND's transaction.
            entry, mark = await store.append_claiming_recent(
                account.id, target.name, body, flags, command.date, parsed=parsed
            )
            session.context.recent_claims.reserve(view.mailbox_id, view.uidvalidity, entry.uid)
            view.won_recent(mark, entry.uid)
        else:
            entry = await store.append(
                account.id, target.name, body, flags, command.date, parsed=parsed
            )
    except api.QuotaExceeded:
        return [rsp.Tagged(tag, rsp.Status.NO, "Quota exceeded", rsp.OVERQUOTA)]
    code = rsp.appenduid(target.uidvalidity, str(entry.uid))
    return [ok(tag, "APPEND completed", code)]


MessageHandler = Callable[[Any, Any, str, Any], Awaitable[list[rsp.Response]]]

HANDLERS: Final[dict[type[cmd.Command], MessageHandler]] = {
    cmd.Fetch: on_fetch,
    cmd.Store: on_store,
    cmd.Search: on_search,
    cmd.Copy: on_copy,
    cmd.Move: on_copy,
    cmd.Expunge: on_expunge,
    cmd.UidExpunge: on_expunge,
    cmd.Append: on_append,
}
