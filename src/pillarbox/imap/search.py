"""SEARCH (RFC 3501 §6.4.4, RFC 7162 §3.1.5 MODSEQ, RFC 4731 ESEARCH results).

Keys are evaluated in two passes. The first pass uses what the mailbox entry knows (flags,
size, dates, UIDs, sequence numbers, MODSEQ) and answers "unknown" for keys that need the
message (headers, body, text, sent dates); only messages still undecided have their body
loaded, and the MIME engine's text extraction (`pillarbox.mime.text`) decodes transfer
encodings, charsets and RFC 2047 words before matching. Matching is case-insensitive
substring matching on decoded text (§6.4.4).
"""

from __future__ import annotations

import bisect
import datetime as dt
import email.utils
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from pillarbox.imap import commands as cmd
from pillarbox.imap import responses
from pillarbox.imap.fetch import MessageSource, batches
from pillarbox.imap.selected import SelectedMailbox
from pillarbox.imap.sequence import format_set
from pillarbox.mime import text as mime_text
from pillarbox.mime.parts import Part
from pillarbox.store.api import MailboxEntry, Store

# RFC 3501 §6.4.4: US-ASCII must be supported; we add UTF-8 (RFC 6855 makes it standard).
CHARSETS: Final = frozenset({"US-ASCII", "UTF-8"})


class BadCharset(Exception):
    """NO [BADCHARSET (...)] (RFC 3501 §6.4.4, §7.1)."""


@dataclass(slots=True)
class Candidate:
    """One message under test; `body`/`tree` are filled only if a key needs them."""

    seq: int
    entry: MailboxEntry
    recent: bool
    body: bytes | None = None
    tree: Part | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """What sequence-number and UID keys are relative to (RFC 3501 §6.4.4)."""

    exists: int
    largest_uid: int


Verdict = bool | None  # None: cannot tell without the message's content


def _and(keys: Sequence[cmd.SearchKey], candidate: Candidate, scope: Scope) -> Verdict:
    unknown = False
    for key in keys:
        result = evaluate(key, candidate, scope)
        if result is False:
            return False
        unknown = unknown or result is None
    return None if unknown else True


def _or(left: Verdict, right: Callable[[], Verdict]) -> Verdict:
    if left is True:
        return True
    result = right()
    if result is True:
        return True
    return None if (left is None or result is None) else False


def _date_matches(op: cmd.DateOp, day: dt.date, wanted: dt.date) -> bool:
    if op is cmd.DateOp.BEFORE:
        return day < wanted
    if op is cmd.DateOp.ON:
        return day == wanted
    return day >= wanted  # SINCE: "within or later than"


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


def _header_matches(key: cmd.SearchHeader, candidate: Candidate) -> bool:
    assert candidate.body is not None and candidate.tree is not None
    name = key.field.lower().encode("utf-8", "replace")
    # Decoded values (RFC 2047 words undone) hold display names and addresses alike.
    values = mime_text.header_values(candidate.body, candidate.tree, name)
    if not key.value:
        return bool(values)  # §6.4.4: an empty string matches every message with the field
    return any(_contains(value, key.value) for value in values)


def _sent_date(candidate: Candidate) -> dt.date | None:
    assert candidate.body is not None and candidate.tree is not None
    values = mime_text.header_values(candidate.body, candidate.tree, b"date")
    if not values:
        return None
    try:
        return email.utils.parsedate_to_datetime(values[0]).date()
    except (TypeError, ValueError, IndexError):
        return None


def _content(key: cmd.SearchKey, candidate: Candidate) -> Verdict:
    """Keys that need the message: None until the body and tree are loaded."""
    body, tree = candidate.body, candidate.tree
    if body is None or tree is None:
        return None
    if isinstance(key, cmd.SearchHeader):
        return _header_matches(key, candidate)
    if isinstance(key, cmd.SearchBody):
        return _contains(mime_text.body_text(body, tree), key.value)
    if isinstance(key, cmd.SearchText):
        return _contains(mime_text.search_text(body, tree), key.value)
    assert isinstance(key, cmd.SearchDate) and key.sent
    sent = _sent_date(candidate)
    return sent is not None and _date_matches(key.op, sent, key.date)


def evaluate(key: cmd.SearchKey, candidate: Candidate, scope: Scope) -> Verdict:
    """Three-valued match: True, False, or None when the content is needed."""
    entry = candidate.entry
    if isinstance(key, cmd.SearchAll):
        return True
    if isinstance(key, cmd.SearchAnd):
        return _and(key.keys, candidate, scope)
    if isinstance(key, cmd.SearchOr):
        left = evaluate(key.left, candidate, scope)
        return _or(left, lambda: evaluate(key.right, candidate, scope))
    if isinstance(key, cmd.SearchNot):
        inner = evaluate(key.key, candidate, scope)
        return None if inner is None else not inner
    if isinstance(key, cmd.SearchFlag):
        if key.flag == "\\Recent":
            return candidate.recent == key.present
        has = key.flag in entry.flags or key.flag.lower() in {f.lower() for f in entry.flags}
        return has == key.present
    if isinstance(key, cmd.SearchSize):
        return entry.size > key.size if key.larger else entry.size < key.size
    if isinstance(key, cmd.SearchUid):
        return key.uids.contains(entry.uid, scope.largest_uid)
    if isinstance(key, cmd.SearchSeq):
        return key.numbers.contains(candidate.seq, scope.exists)
    if isinstance(key, cmd.SearchModSeq):
        return entry.modseq >= key.modseq  # RFC 7162 §3.1.5
    if isinstance(key, cmd.SearchDate) and not key.sent:
        return _date_matches(key.op, entry.internaldate.date(), key.date)
    return _content(key, candidate)


def check_charset(charset: str | None) -> None:
    if charset is not None and charset.upper() not in CHARSETS:
        raise BadCharset(charset)


def uses_modseq(key: cmd.SearchKey) -> bool:
    if isinstance(key, cmd.SearchModSeq):
        return True
    if isinstance(key, cmd.SearchAnd):
        return any(uses_modseq(k) for k in key.keys)
    if isinstance(key, cmd.SearchOr):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, cmd.SearchNot):
        return uses_modseq(key.key)
    return False


def flag_terms(key: cmd.SearchKey) -> tuple[frozenset[str], frozenset[str]] | None:
    """(flags required, flags excluded) when `key` only tests stored flags, else None.

    SEARCH UNSEEN, DELETED, FLAGGED NOT SEEN ... are what clients send most; the store
    answers them with one query instead of every entry being read and tested here.
    """
    if isinstance(key, cmd.SearchAll):
        return frozenset(), frozenset()
    if isinstance(key, cmd.SearchFlag) and key.flag != "\\Recent":
        one = frozenset({key.flag})
        return (one, frozenset()) if key.present else (frozenset(), one)
    if isinstance(key, cmd.SearchNot) and isinstance(key.key, cmd.SearchFlag):
        return flag_terms(cmd.SearchFlag(key.key.flag, not key.key.present))
    if isinstance(key, cmd.SearchAnd):
        present: frozenset[str] = frozenset()
        absent: frozenset[str] = frozenset()
        for part in key.keys:
            terms = flag_terms(part)
            if terms is None:
                return None
            present, absent = present | terms[0], absent | terms[1]
        return present, absent
    return None


@dataclass(slots=True)
class Found:
    """What SEARCH found: sequence numbers and UIDs side by side, ascending."""

    seqs: list[int] = field(default_factory=list)
    uids: list[int] = field(default_factory=list)
    modseq: int = 0  # the highest MODSEQ among them (RFC 7162 §3.1.5), when asked

    def numbers(self, uid: bool) -> list[int]:
        return self.uids if uid else self.seqs


async def _by_flags(
    view: SelectedMailbox, store: Store, terms: tuple[frozenset[str], frozenset[str]]
) -> Found:
    # A merge by bisection with local names: this loop runs once per match (thousands
    # for UNSEEN in a big mailbox), so it avoids method calls and allocations.
    found = Found()
    known, count, left = view.uids, len(view.uids), bisect.bisect_left
    matches: list[int] = list(await store.search_flags(view.mailbox_id, *terms))
    if not known or not matches:
        return found
    # The UIDs of a mailbox are mostly one gapless run (older messages, never expunged):
    # there sequence numbers follow from the UIDs by subtraction, in one comprehension.
    first, run = known[0], _run_length(known)
    start, end = left(matches, first), left(matches, first + run)
    found.uids = matches[start:end]
    found.seqs = [uid - first + 1 for uid in found.uids]
    seqs, uids = found.seqs, found.uids
    for uid in matches[end:]:
        index = left(known, uid, run)
        if index < count and known[index] == uid:
            seqs.append(index + 1)
            uids.append(uid)
    return found


def _run_length(known: Sequence[int]) -> int:
    """How many leading UIDs form a gapless run (UIDs ascend, so a gap never closes)."""
    low, high, first = 1, len(known), known[0]
    while low < high:  # the largest n with known[n - 1] == first + n - 1
        middle = (low + high + 1) // 2
        if known[middle - 1] == first + middle - 1:
            low = middle
        else:
            high = middle - 1
    return low


async def run_search(
    key: cmd.SearchKey, view: SelectedMailbox, store: Store, source: MessageSource
) -> Found:
    """The messages of the view that match, in sequence order."""
    terms = flag_terms(key)
    if terms is not None and not uses_modseq(key):
        return await _by_flags(view, store, terms)
    entries = await store.list_entries(view.mailbox_id)
    scope = Scope(view.exists, view.uids[-1] if view.uids else 0)
    verdicts: list[tuple[Candidate, Verdict]] = []
    undecided: dict[int, Candidate] = {}  # by index in `verdicts`
    for entry in entries:
        seq = view.seq_of(entry.uid)
        if seq is None:
            continue  # new since the client last heard: not yet numbered (§7.4.1)
        candidate = Candidate(seq, entry, view.is_recent(entry.uid))
        verdict = evaluate(key, candidate, scope)
        if verdict is None:
            undecided[len(verdicts)] = candidate
        verdicts.append((candidate, verdict))
    for index, verdict in await _by_content(key, scope, source, undecided):
        verdicts[index] = (verdicts[index][0], verdict)
    found = Found()
    for candidate, verdict in verdicts:
        if verdict:
            found.seqs.append(candidate.seq)
            found.uids.append(candidate.entry.uid)
            found.modseq = max(found.modseq, candidate.entry.modseq)
    return found


async def _by_content(
    key: cmd.SearchKey, scope: Scope, source: MessageSource, undecided: dict[int, Candidate]
) -> list[tuple[int, bool]]:
    """Verdicts of the candidates that need their message: one store read per batch of
    FETCH's size, each batch's bodies let go before the next is read."""
    out: list[tuple[int, bool]] = []
    waiting = list(undecided.items())
    done = 0
    for batch in batches([candidate.entry for _, candidate in waiting]):
        loaded = await source.load_many(batch)
        for index, candidate in waiting[done : done + len(batch)]:
            content = loaded.get(candidate.entry.message_id)
            if content is None:
                out.append((index, False))  # expunged meanwhile (RFC 2180 §4.1)
                continue
            candidate.body, candidate.tree = content
            out.append((index, bool(evaluate(key, candidate, scope))))
            candidate.body = candidate.tree = None
        done += len(batch)
    return out


def search_response(found: Found, uid: bool, modseq: bool) -> responses.Untagged:
    """`* SEARCH 2 3 [(MODSEQ n)]` (RFC 3501 §7.2.5, RFC 7162 §3.1.5)."""
    highest = found.modseq if modseq and found.uids else None
    return responses.search(found.numbers(uid), highest)


def esearch_response(
    tag: str, found: Found, uid: bool, returns: tuple[str, ...], modseq: bool
) -> responses.Untagged:
    """`* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set` (RFC 4731 §3.1)."""
    numbers = found.numbers(uid)
    wanted = returns or ("ALL",)
    results: list[tuple[str, bytes]] = []
    if numbers:
        if "MIN" in wanted:
            results.append(("MIN", b"%d" % numbers[0]))
        if "MAX" in wanted:
            results.append(("MAX", b"%d" % numbers[-1]))
        if "ALL" in wanted:
            results.append(("ALL", format_set(numbers).encode("ascii")))
    if "COUNT" in wanted:
        results.append(("COUNT", b"%d" % len(numbers)))
    if modseq and numbers:
        results.append(("MODSEQ", b"%d" % found.modseq))
    return responses.esearch(tag, uid, results)
