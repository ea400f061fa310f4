"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE LIST options (RFC 6154 §5)
and LSUB (RFC 3501 §6.3.9), replayed as transcripts through engine + session + SQLite.

The RFC examples are reproduced on the same hierarchy, with two differences from the RFC's
sample server: Pillarbox always sends \\HasChildren or \\HasNoChildren (RFC 5258 §4 allows
it without RETURN (CHILDREN)), and INBOX carries no \\Marked \\NoInferiors. A name that
exists only as a level above a mailbox (RFC 9051 §6.3.4: "foo" after DELETE foo with
"foo/bar" left) is \\Noselect, so RFC 5258 §3.5's "exists" column applies to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pillarbox.imap import commands as c
from pillarbox.imap import responses as rsp
from pillarbox.imap.mailboxes import on_list
from pillarbox.imap.parser import Parsed, parse_command
from pillarbox.imap.session import BASE_CAPABILITIES
from pillarbox.store.api import (
    INBOX,
    AccountId,
    Mailbox,
    MailboxId,
    ModSeq,
    NotFound,
    Uid,
)
from tests.imap.harness import Harness, replay, run

LOGIN = """\
S: * OK [CAPABILITY <*>] Pillarbox IMAP4rev1 ready
C: a0 LOGIN jane@example.test secret
S: a0 OK [CAPABILITY <*>] Logged in
"""

# RFC 5258 §5 examples 1-6.
FOOD = ["Fruit", "Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable"]
FOOD += ["Vegetable/Broccoli", "Vegetable/Corn"]
# "Fruit/Peach" is subscribed but does not exist (RFC 3501 §6.3.6 keeps such names).
FOOD_SUBSCRIBED = ["INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"]
# RFC 5258 §5 example 8.
FOO = ["Foo", "Foo/Bar", "Foo/Baz", "Moo"]
# RFC 5258 §5 example 9 ("qux2" itself does not exist).
TWOS = ["foo2", "foo2/bar1", "foo2/bar2", "baz2", "baz2/bar2", "baz2/bar22", "baz2/bar222"]
TWOS += ["eps2", "eps2/mamba", "qux2/bar2"]
TWOS_SUBSCRIBED = [name for name in TWOS if name not in ("foo2", "baz2")]


async def mailboxes(harness: Harness, names: Sequence[str], subscribed: Sequence[str]) -> None:
    """Only INBOX and `names` exist (no superiors made); exactly `subscribed` are
    subscribed (a subscribed name need not exist)."""
    store, account = harness.store, harness.account.id
    for box in await store.list_mailboxes(account):
        if box.name != INBOX:
            await store.delete_mailbox(box.id)
    for name in await store.list_subscriptions(account):
        await store.set_subscription(account, name, False)
    for name in names:
        await store.create_mailbox(account, name)
    for name in subscribed:
        await store.set_subscription(account, name, True)


def dialogue(
    tmp: Path,
    text: str,
    names: Sequence[str] = (),
    subscribed: Sequence[str] = (),
    appends: Sequence[tuple[str, ...]] = (),
) -> None:
    path = tmp / "dialogue.txt"
    path.write_text(LOGIN + text, encoding="utf-8")

    async def body(harness: Harness) -> None:
        await mailboxes(harness, names, subscribed)
        for mailbox, *flags in appends:
            await harness.append(mailbox, *flags)
        await replay(harness, path)

    run(tmp, body)


def test_capabilities_are_advertised() -> None:
    assert {"LIST-EXTENDED", "LIST-STATUS"} <= set(BASE_CAPABILITIES)


def test_rfc5258_examples_1_to_6(tmp_path: Path) -> None:
    text = r"""C: A01 LIST "" "*"
S: * LIST (\HasChildren) "/" Fruit
S: * LIST (\HasNoChildren) "/" Fruit/Apple
S: * LIST (\HasNoChildren) "/" Fruit/Banana
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" Tofu
S: * LIST (\HasChildren) "/" Vegetable
S: * LIST (\HasNoChildren) "/" Vegetable/Broccoli
S: * LIST (\HasNoChildren) "/" Vegetable/Corn
S: A01 OK LIST completed
C: A02 LIST (SUBSCRIBED) "" "*"
S: * LIST (\HasNoChildren \Subscribed) "/" Fruit/Banana
S: * LIST (\NonExistent \HasNoChildren \Subscribed) "/" Fruit/Peach
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasChildren \Subscribed) "/" Vegetable
S: * LIST (\HasNoChildren \Subscribed) "/" Vegetable/Broccoli
S: A02 OK LIST completed
C: A03 LIST () "" "%" RETURN (CHILDREN)
S: * LIST (\HasChildren) "/" Fruit
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" Tofu
S: * LIST (\HasChildren) "/" Vegetable
S: A03 OK LIST completed
# REMOTE is accepted; there are no remote mailboxes, so nothing carries \Remote.
C: A04 LIST (REMOTE) "" "%" RETURN (CHILDREN)
S: * LIST (\HasChildren) "/" Fruit
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" Tofu
S: * LIST (\HasChildren) "/" Vegetable
S: A04 OK LIST completed
C: A05 LIST (REMOTE SUBSCRIBED) "" "*"
S: * LIST (\HasNoChildren \Subscribed) "/" Fruit/Banana
S: * LIST (\NonExistent \HasNoChildren \Subscribed) "/" Fruit/Peach
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasChildren \Subscribed) "/" Vegetable
S: * LIST (\HasNoChildren \Subscribed) "/" Vegetable/Broccoli
S: A05 OK LIST completed
C: A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)
S: * LIST (\HasChildren) "/" Fruit
S: * LIST (\HasNoChildren) "/" Fruit/Apple
S: * LIST (\HasNoChildren \Subscribed) "/" Fruit/Banana
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasNoChildren) "/" Tofu
S: * LIST (\HasChildren \Subscribed) "/" Vegetable
S: * LIST (\HasNoChildren \Subscribed) "/" Vegetable/Broccoli
S: * LIST (\HasNoChildren) "/" Vegetable/Corn
S: A06 OK LIST completed
"""
    dialogue(tmp_path, text, FOOD, FOOD_SUBSCRIBED)


def test_rfc5258_example_7_several_patterns(tmp_path: Path) -> None:
    names = ["Drafts", "Sent/March2004", "Sent/December2003", "Sent/August2004", "Other"]
    text = r"""C: BBB LIST "" ("INBOX" "Drafts" "Sent/%")
S: * LIST (\HasNoChildren) "/" Drafts
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" Sent/August2004
S: * LIST (\HasNoChildren) "/" Sent/December2003
S: * LIST (\HasNoChildren) "/" Sent/March2004
S: BBB OK LIST completed
# RFC 5258 §3: a name matching several patterns is listed once; INBOX in any case.
C: BBC LIST "" (inbox "INBOX" "*X" Sent)
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\Noselect \HasChildren) "/" Sent
S: BBC OK LIST completed
C: BBD LIST "Sent/" (Aug* Dec* Aug%)
S: * LIST (\HasNoChildren) "/" Sent/August2004
S: * LIST (\HasNoChildren) "/" Sent/December2003
S: BBD OK LIST completed
"""
    dialogue(tmp_path, text, names)


def test_rfc5258_example_8_childinfo(tmp_path: Path) -> None:
    text = r"""C: CA3 LIST "" "%" RETURN (CHILDREN)
S: * LIST (\HasChildren) "/" Foo
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" Moo
S: CA3 OK LIST completed
C: C02 LIST (SUBSCRIBED) "" "*"
S: * LIST (\HasNoChildren \Subscribed) "/" Foo/Baz
S: C02 OK LIST completed
C: C03 LIST (SUBSCRIBED) "" "%"
S: C03 OK LIST completed
C: C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
S: * LIST (\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))
S: C04 OK LIST completed
# A1: "Foo" subscribed as well.
C: C05 SUBSCRIBE Foo
S: C05 OK SUBSCRIBE completed
C: C06 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
S: * LIST (\HasChildren \Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))
S: C06 OK LIST completed
# C: "Foo" and "Moo" subscribed, no child is: no CHILDINFO.
C: C07 UNSUBSCRIBE Foo/Baz
S: C07 OK UNSUBSCRIBE completed
C: C08 SUBSCRIBE Moo
S: C08 OK SUBSCRIBE completed
C: C09 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)
S: * LIST (\HasChildren \Subscribed) "/" Foo
S: * LIST (\HasNoChildren \Subscribed) "/" Moo
S: C09 OK LIST completed
# B: nothing subscribed: no responses, although "Foo" has children.
C: C10 UNSUBSCRIBE Foo
S: C10 OK UNSUBSCRIBE completed
C: C11 UNSUBSCRIBE Moo
S: C11 OK UNSUBSCRIBE completed
C: C12 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
S: C12 OK LIST completed
# A2: "Foo" no longer a mailbox, only the level above a subscribed child (RFC 9051
# §6.3.4: such a name is \Noselect).
C: C13 SUBSCRIBE Foo/Baz
S: C13 OK SUBSCRIBE completed
C: C14 DELETE Foo
S: C14 OK DELETE completed
C: C15 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)
S: * LIST (\Noselect \HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))
S: C15 OK LIST completed
"""
    dialogue(tmp_path, text, FOO, ["Foo/Baz"])


def test_rfc5258_example_9_childinfo_whatever_the_pattern(tmp_path: Path) -> None:
    text = r"""C: D02 LIST (SUBSCRIBED) "" "*"
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar2
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar22
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar222
S: * LIST (\HasChildren \Subscribed) "/" eps2
S: * LIST (\HasNoChildren \Subscribed) "/" eps2/mamba
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar1
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar2
S: * LIST (\HasNoChildren \Subscribed) "/" qux2/bar2
S: D02 OK LIST completed
# "baz2" and "qux2" are left out: their subscribed children are all listed (§3.5 SHOULD).
C: D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar2
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar22
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar222
S: * LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasChildren) "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar2
S: * LIST (\HasNoChildren \Subscribed) "/" qux2/bar2
S: D03 OK LIST completed
C: D04 LIST (RECURSIVEMATCH SUBSCRIBED) "" "%"
S: * LIST (\HasChildren) "/" baz2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasChildren) "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\Noselect \HasChildren) "/" qux2 ("CHILDINFO" ("SUBSCRIBED"))
S: D04 OK LIST completed
# With "*" every subscribed child is listed: only the subscribed parent keeps CHILDINFO.
C: D05 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar2
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar22
S: * LIST (\HasNoChildren \Subscribed) "/" baz2/bar222
S: * LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasNoChildren \Subscribed) "/" eps2/mamba
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar1
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar2
S: * LIST (\HasNoChildren \Subscribed) "/" qux2/bar2
S: D05 OK LIST completed
# "%" one level down, through the reference and through the pattern alike.
C: D06 LIST (SUBSCRIBED RECURSIVEMATCH) "foo2/" "%"
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar1
S: * LIST (\HasNoChildren \Subscribed) "/" foo2/bar2
S: D06 OK LIST completed
C: D07 list (subscribed recursivematch) "" "%2" return (children)
S: * LIST (\HasChildren) "/" baz2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasChildren) "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\Noselect \HasChildren) "/" qux2 ("CHILDINFO" ("SUBSCRIBED"))
S: D07 OK LIST completed
"""
    dialogue(tmp_path, text, TWOS, TWOS_SUBSCRIBED)


def test_rfc5258_example_11_missing_levels(tmp_path: Path) -> None:
    text = r"""C: a1 LIST (REMOTE) "" *
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\Noselect \HasChildren) "/" music
S: * LIST (\HasNoChildren) "/" music/rock
S: a1 OK LIST completed
C: a2 LIST () "" %
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\Noselect \HasChildren) "/" music
S: a2 OK LIST completed
C: a3 LIST "" (% music/rock)
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\Noselect \HasChildren) "/" music
S: * LIST (\HasNoChildren) "/" music/rock
S: a3 OK LIST completed
"""
    dialogue(tmp_path, text, ["music/rock"])


def test_empty_pattern_is_special_only_without_extensions(tmp_path: Path) -> None:
    text = r"""C: e1 LIST "" ""
S: * LIST (\Noselect) "/" ""
S: e1 OK LIST completed
C: e2 LIST () "" ""
S: e2 OK LIST completed
C: e3 LIST "" ("")
S: e3 OK LIST completed
C: e4 LIST "" "" RETURN ()
S: e4 OK LIST completed
C: e5 LIST "" ("" INBOX)
S: * LIST (\HasNoChildren) "/" INBOX
S: e5 OK LIST completed
C: e6 LIST (SUBSCRIBED) "" ""
S: e6 OK LIST completed
"""
    dialogue(tmp_path, text, ["Work"], ["INBOX"])


def test_return_options_without_selection(tmp_path: Path) -> None:
    text = r"""C: r1 LIST "" "*" RETURN (SUBSCRIBED CHILDREN)
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasChildren \Subscribed) "/" Work
S: * LIST (\HasNoChildren) "/" Work/2024
S: r1 OK LIST completed
C: r2 LIST "" % RETURN (SUBSCRIBED SUBSCRIBED)
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasChildren \Subscribed) "/" Work
S: r2 OK LIST completed
C: r3 LIST (SUBSCRIBED SUBSCRIBED REMOTE) "" "W*" RETURN (CHILDREN)
S: * LIST (\HasChildren \Subscribed) "/" Work
S: r3 OK LIST completed
"""
    dialogue(tmp_path, text, ["Work", "Work/2024"], ["INBOX", "Work"])


def test_rfc6154_special_use_selection_and_return(tmp_path: Path) -> None:
    # The account's default mailboxes carry special uses (RFC 6154 §5.2 examples t2, t3).
    text = r"""C: t2 LIST "" "%" RETURN (SPECIAL-USE)
S: * LIST (\HasNoChildren \Archive) "/" Archive
S: * LIST (\HasNoChildren \Drafts) "/" Drafts
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren \Junk) "/" Junk
S: * LIST (\HasNoChildren \Sent) "/" Sent
S: * LIST (\HasNoChildren \Trash) "/" Trash
S: t2 OK LIST completed
C: t3 CREATE Projects/Sent2024 (USE (\Sent))
S: t3 OK CREATE completed
C: t4 LIST (SPECIAL-USE) "" "*"
S: * LIST (\HasNoChildren \Archive) "/" Archive
S: * LIST (\HasNoChildren \Drafts) "/" Drafts
S: * LIST (\HasNoChildren \Junk) "/" Junk
S: * LIST (\HasNoChildren \Sent) "/" Projects/Sent2024
S: * LIST (\HasNoChildren \Sent) "/" Sent
S: * LIST (\HasNoChildren \Trash) "/" Trash
S: t4 OK LIST completed
C: t5 LIST (SPECIAL-USE SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))
S: * LIST (\HasNoChildren \Drafts \Subscribed) "/" Drafts
S: * STATUS Drafts (MESSAGES 0)
S: * LIST (\HasNoChildren \Sent \Subscribed) "/" Sent
S: * STATUS Sent (MESSAGES 0)
S: t5 OK LIST completed
"""
    path = tmp_path / "dialogue.txt"
    path.write_text(LOGIN + text, encoding="utf-8")

    async def body(harness: Harness) -> None:
        account = harness.account.id
        for name in await harness.store.list_subscriptions(account):
            await harness.store.set_subscription(account, name, name in ("Drafts", "Sent"))
        await replay(harness, path)

    run(tmp_path, body)


def test_rfc5819_examples(tmp_path: Path) -> None:
    text = r"""C: A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))
S: * LIST (\HasNoChildren) "/" INBOX
S: * STATUS INBOX (MESSAGES 3 UNSEEN 2)
S: * LIST (\Noselect \HasChildren) "/" bar
S: * LIST (\HasChildren) "/" foo
S: * STATUS foo (MESSAGES 1 UNSEEN 0)
S: A01 OK LIST completed
C: A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * STATUS INBOX (MESSAGES 3)
S: * LIST (\Noselect \HasChildren) "/" bar ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))
S: A02 OK LIST completed
C: A3 LIST "" (foo/* INBOX) RETURN (CHILDREN STATUS (UIDNEXT UIDVALIDITY RECENT HIGHESTMODSEQ SIZE))
S: * LIST (\HasNoChildren) "/" INBOX
S: * STATUS INBOX (UIDNEXT 4 UIDVALIDITY <n> RECENT <n> HIGHESTMODSEQ <n> SIZE <n>)
S: * LIST (\HasNoChildren) "/" foo/x
S: * STATUS foo/x (UIDNEXT 1 UIDVALIDITY <n> RECENT 0 HIGHESTMODSEQ <n> SIZE 0)
S: A3 OK LIST completed
C: A04 LIST "" "bar*" RETURN (STATUS (MESSAGES) SUBSCRIBED)
S: * LIST (\Noselect \HasChildren) "/" bar
S: * LIST (\HasNoChildren \Subscribed) "/" bar/y
S: * STATUS bar/y (MESSAGES 0)
S: A04 OK LIST completed
"""
    names = ["foo", "foo/x", "bar/y"]
    appends = [("INBOX", "\\Seen"), ("INBOX",), ("INBOX",), ("foo", "\\Seen")]
    dialogue(tmp_path, text, names, ["INBOX", "foo/x", "bar/y"], appends)


def test_bad_selection_and_return_options(tmp_path: Path) -> None:
    text = r"""C: b1 LIST (RECURSIVEMATCH) "" "*"
S: b1 BAD RECURSIVEMATCH needs the SUBSCRIBED selection option
C: b2 LIST (REMOTE RECURSIVEMATCH) "" "*"
S: b2 BAD RECURSIVEMATCH needs the SUBSCRIBED selection option
C: b3 LIST (SPECIAL-USE RECURSIVEMATCH) "" "*"
S: b3 BAD RECURSIVEMATCH needs the SUBSCRIBED selection option
C: b4 LIST (SUBSCRIBED BOGUS) "" "*"
S: b4 BAD Unknown LIST selection option
C: b5 LIST "" "*" RETURN (CHILDREN BOGUS)
S: b5 BAD Unknown LIST return option
C: b6 LIST "" "*" RETURN (STATUS (MESSAGES BOGUS))
S: b6 BAD Invalid STATUS items
C: b7 LIST "" "*" RETURN (STATUS ())
S: b7 BAD Invalid STATUS items
C: b8 LIST "" ()
S: b8 BAD <*>
C: b9 LIST "" "*" RETURN CHILDREN
S: b9 BAD <*>
C: b10 LIST "" "*" (CHILDREN)
S: b10 BAD <*>
C: b11 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"
S: b11 OK LIST completed
"""
    dialogue(tmp_path, text)


def test_lsub_keeps_rfc3501_semantics(tmp_path: Path) -> None:
    text = r"""C: l1 LSUB "" "*"
S: * LSUB () "/" INBOX
S: * LSUB () "/" Work/2024/Q1
S: l1 OK LSUB completed
C: l2 LSUB "" "%"
S: * LSUB () "/" INBOX
S: * LSUB (\Noselect) "/" Work
S: l2 OK LSUB completed
C: l3 LSUB "Work/" "%"
S: * LSUB (\Noselect) "/" Work/2024
S: l3 OK LSUB completed
C: l4 LSUB "" "Work/2024/%"
S: * LSUB () "/" Work/2024/Q1
S: l4 OK LSUB completed
C: l5 SUBSCRIBE Work
S: l5 OK SUBSCRIBE completed
C: l6 LSUB "" "%"
S: * LSUB () "/" INBOX
S: * LSUB () "/" Work
S: l6 OK LSUB completed
C: l7 LSUB "" "Nothing*"
S: l7 OK LSUB completed
# RFC 3501 §6.3.6: names stay subscribed after their mailbox goes, and may be subscribed
# before it exists; UNSUBSCRIBE of a name that is not subscribed fails.
C: l8 DELETE Work/2024/Q1
S: l8 OK DELETE completed
C: l9 SUBSCRIBE Someday
S: l9 OK SUBSCRIBE completed
C: l10 LSUB "" "*"
S: * LSUB () "/" INBOX
S: * LSUB () "/" Someday
S: * LSUB () "/" Work
S: * LSUB () "/" Work/2024/Q1
S: l10 OK LSUB completed
C: l11 UNSUBSCRIBE Someday
S: l11 OK UNSUBSCRIBE completed
C: l12 UNSUBSCRIBE Someday
S: l12 NO [NONEXISTENT] Mailbox is not subscribed
C: l13 LIST "" "*"
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasChildren) "/" Work
S: * LIST (\HasNoChildren) "/" Work/2024
S: l13 OK LIST completed
"""
    dialogue(tmp_path, text, ["Work", "Work/2024", "Work/2024/Q1"], ["INBOX", "Work/2024/Q1"])


@pytest.mark.parametrize(
    ("line", "extended"),
    [
        (b'a LIST "" ""', False),
        (b'a LIST "" %', False),
        (b'a LIST () "" ""', True),
        (b'a LIST "" ("")', True),
        (b'a LIST "" "" RETURN ()', True),
        (b'a LIST (REMOTE) "" *', True),
    ],
)
def test_extended_syntax_is_recognised(line: bytes, extended: bool) -> None:
    parsed = parse_command([line])
    assert isinstance(parsed, Parsed)
    assert isinstance(parsed.command, c.List)
    assert parsed.command.extended is extended


def test_childinfo_is_extended_data_after_the_name() -> None:
    entry = rsp.list_entry(["\\Noselect"], "/", "a b", childinfo=("SUBSCRIBED",))
    assert entry.to_bytes() == b'* LIST (\\Noselect) "/" "a b" ("CHILDINFO" ("SUBSCRIBED"))\r\n'


class VanishingStore:
    """Lists mailboxes, but each is deleted before its STATUS can be read."""

    def __init__(self, boxes: list[Mailbox]) -> None:
        self.boxes = boxes

    async def list_mailboxes(self, account_id: AccountId) -> list[Mailbox]:
        return self.boxes

    async def mailbox_snapshot(self, mailbox_id: MailboxId, with_uids: bool) -> None:
        raise NotFound(f"no mailbox {mailbox_id}")


def test_status_of_a_mailbox_gone_meanwhile_is_dropped_and_listed_nonexistent() -> None:
    # RFC 5819 §2: no STATUS; RFC 5258 §3: the name no longer exists.
    box = Mailbox(MailboxId(7), AccountId(1), "Gone", 1, Uid(1), ModSeq(1), None, False)
    command = c.List("", ("*",), status_items=("UNSEEN",), extended=True)
    store: Any = VanishingStore([box])
    out = asyncio.run(on_list(store, AccountId(1), command))
    assert [r.to_bytes() for r in out] == [b'* LIST (\\NonExistent \\HasNoChildren) "/" Gone\r\n']
