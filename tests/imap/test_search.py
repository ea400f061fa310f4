"""SEARCH on decoded content, nesting, and the three-valued first pass."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pillarbox.imap import commands as cmd
from pillarbox.imap.search import Candidate, Scope, evaluate
from pillarbox.imap.sequence import SequenceSet
from pillarbox.store.api import INBOX, MailboxEntry, MailboxId, MessageId, ModSeq, Uid
from tests.imap.harness import Harness, run

ENCODED = (
    b"From: =?iso-8859-1?q?Fran=E7ois?= <f@remote.test>\r\n"
    b"Subject: =?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"RGFzIEZyw7xoc3TDvGNrIGlzdCBmZXJ0aWcu\r\n"  # "Das Frühstück ist fertig."
)


def entry(uid: int, *flags: str, size: int = 100) -> MailboxEntry:
    when = dt.datetime(2024, 3, 5, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    return MailboxEntry(
        MailboxId(1), Uid(uid), MessageId(uid), ModSeq(uid), frozenset(flags), when, size
    )


SCOPE = Scope(exists=3, largest_uid=9)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (cmd.SearchFlag("\\Seen"), True),
        (cmd.SearchNot(cmd.SearchFlag("\\Seen")), False),
        (cmd.SearchOr(cmd.SearchFlag("\\Deleted"), cmd.SearchSize(True, 50)), True),
        (cmd.SearchAnd((cmd.SearchFlag("\\Seen"), cmd.SearchSize(False, 50))), False),
        (cmd.SearchUid(SequenceSet.parse("5:*")), True),
        (cmd.SearchSeq(SequenceSet.parse("1,3")), False),
        (cmd.SearchModSeq(5), True),
        # §6.4.4: dates compare in the message's own zone, disregarding time.
        (cmd.SearchDate(cmd.DateOp.ON, dt.date(2024, 3, 5)), True),
        (cmd.SearchDate(cmd.DateOp.BEFORE, dt.date(2024, 3, 5)), False),
        (cmd.SearchFlag("\\Recent"), False),
        # Content keys cannot be decided without the body ...
        (cmd.SearchBody("x"), None),
        # ... unless the rest already decides.
        (cmd.SearchAnd((cmd.SearchBody("x"), cmd.SearchFlag("\\Draft"))), False),
        (cmd.SearchOr(cmd.SearchBody("x"), cmd.SearchFlag("\\Seen")), True),
    ],
)
def test_first_pass_needs_no_content(key: cmd.SearchKey, expected: bool | None) -> None:
    candidate = Candidate(2, entry(9, "\\Seen"), recent=False)
    assert evaluate(key, candidate, SCOPE) is expected


async def search(harness: Harness, criteria: str) -> bytes:
    client = harness.client()
    client.greet()
    await client.line("a LOGIN jane@example.test secret")
    await client.line("b SELECT INBOX")
    return await client.line(f"c SEARCH {criteria}")


@pytest.mark.parametrize(
    ("criteria", "found"),
    [
        ('SUBJECT "grüße"', True),  # RFC 2047 decoded, case-folded
        ('FROM "françois"', True),
        ('BODY "frühstück"', True),  # base64 and charset decoded
        ('TEXT "KÖLN"', True),
        ('BODY "köln"', False),  # the subject is not the body
        ('HEADER Content-Type "charset=utf-8"', True),
        ('NOT (OR SUBJECT "grüße" BODY "nothing")', False),
    ],
)
def test_content_search_decodes_headers_and_bodies(
    tmp_path: Path, criteria: str, found: bool
) -> None:
    async def check(harness: Harness) -> None:
        await harness.store.append(harness.account.id, INBOX, ENCODED)
        await harness.append()
        out = await search(harness, "CHARSET UTF-8 " + criteria)
        numbers = out.split(b"\r\n")[0].split()[2:]
        assert (b"1" in numbers) is found

    run(tmp_path, check)


@pytest.mark.parametrize(
    ("known", "matches", "seqs", "uids"),
    [
        # A gapless run, then gaps: numbers by subtraction, then by bisection.
        ([1, 2, 3, 5, 6, 9], [2, 3, 5, 7, 9, 12], [2, 3, 4, 6], [2, 3, 5, 9]),
        # The first messages expunged long ago: the run starts above 1.
        ([4, 5, 6, 7], [1, 5, 7, 8], [2, 4], [5, 7]),
        # No run beyond the first UID.
        ([2, 4, 6], [2, 3, 6], [1, 3], [2, 6]),
        ([1, 2, 3], [], [], []),
    ],
)
def test_flag_search_numbers_matches_the_client_knows(
    known: list[int], matches: list[int], seqs: list[int], uids: list[int]
) -> None:
    from array import array

    from pillarbox.imap.search import _by_flags

    class View:
        mailbox_id = MailboxId(1)

        def __init__(self) -> None:
            self.uids = array("I", known)

    class Store:
        async def search_flags(self, *args: object) -> list[int]:
            return matches

    import asyncio

    no_terms = (frozenset[str](), frozenset[str]())
    found = asyncio.run(_by_flags(View(), Store(), no_terms))  # type: ignore[arg-type]
    assert (found.seqs, found.uids) == (seqs, uids)


def test_a_message_id_given_to_new_content_is_searched_as_that_content(tmp_path: Path) -> None:
    """A session that searched a message that is then gone matches the next message on
    its own bytes (sessions once kept parse trees by message id, and the store gave the
    id of a gone newest message to the next one)."""

    async def check(harness: Harness) -> None:
        inbox = await harness.inbox_id()
        await harness.append()
        old = await harness.store.append(
            harness.account.id, INBOX, b"Subject: alpha\r\n\r\nthe old words here\r\n"
        )
        client = harness.client()
        client.greet()
        await client.line("a LOGIN jane@example.test secret")
        await client.line("b SELECT INBOX")
        assert b"* SEARCH 2\r\n" in await client.line('c SEARCH BODY "old words"')
        await harness.store.expunge(inbox, [old.uid])
        new = await harness.store.append(
            harness.account.id, INBOX, b"Subject: beta\r\n\r\nshort\r\n"
        )
        assert new.message_id != old.message_id
        await client.line("d NOOP")
        assert b"* SEARCH 2\r\n" in await client.line('e SEARCH BODY "short"')
        assert b"* SEARCH\r\n" in await client.line('f SEARCH BODY "old words"')

    run(tmp_path, check)
