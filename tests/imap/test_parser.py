"""The command grammar: every command parsed to its typed form, and refused with BAD."""

from __future__ import annotations

import datetime
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pillarbox.imap import commands as c
from pillarbox.imap.parse_items import MAX_SEARCH_DEPTH
from pillarbox.imap.parser import Bad, Parsed, parse_command
from pillarbox.imap.responses import Status, Tagged, UntaggedStatus
from pillarbox.imap.sequence import SequenceSet

S = SequenceSet.parse
UTC1 = datetime.timezone(datetime.timedelta(hours=1))


def parse(line: bytes, *literals: bytes) -> c.Command:
    """Parse `line`, splitting it at each `{n}` marker for the given literals."""
    parts: list[bytes] = []
    rest = line
    for literal in literals:
        text, sep, rest = rest.partition(b"\x00")
        assert sep, "mark each literal's place with NUL"
        parts += [text, literal]
    parts.append(rest)
    result = parse_command(parts)
    assert isinstance(result, Parsed), result
    assert result.tag == "t1"
    return result.command


def bad(line: bytes) -> Tagged | UntaggedStatus:
    result = parse_command([line])
    assert isinstance(result, Bad), result
    return result.response


GOOD: list[tuple[bytes, c.Command]] = [
    (b"t1 CAPABILITY", c.Capability()),
    (b"t1 noop", c.Noop()),
    (b"t1 LOGOUT", c.Logout()),
    (b"t1 STARTTLS", c.StartTls()),
    (b"t1 AUTHENTICATE plain", c.Authenticate("PLAIN")),
    (b"t1 AUTHENTICATE PLAIN AGEAYg==", c.Authenticate("PLAIN", b"\0a\0b")),
    (b"t1 AUTHENTICATE PLAIN =", c.Authenticate("PLAIN", b"")),
    (b"t1 LOGIN alice secret", c.Login("alice", "secret")),
    (b't1 LOGIN "al\\"ice" "p\\\\w d"', c.Login('al"ice', "p\\w d")),
    (b't1 LOGIN "j\xc3\xb6rg" pw', c.Login("jörg", "pw")),
    (b"t1 SELECT inbox", c.Select("INBOX")),
    (b"t1 SELECT InBoX/sub", c.Select("InBoX/sub")),
    (b"t1 SELECT Drafts (CONDSTORE)", c.Select("Drafts", condstore=True)),
    (b't1 EXAMINE "Sent Items"', c.Examine("Sent Items")),
    (b"t1 CREATE a/b", c.Create("a/b")),
    (b"t1 CREATE Junk (USE (\\junk \\Trash))", c.Create("Junk", ("\\Junk", "\\Trash"))),
    (b"t1 DELETE x", c.Delete("x")),
    (b"t1 RENAME a &ZeVnLIqe-", c.Rename("a", "日本語")),
    (b"t1 SUBSCRIBE a", c.Subscribe("a")),
    (b"t1 UNSUBSCRIBE a", c.Unsubscribe("a")),
    (b't1 LIST "" %', c.List("", ("%",))),
    (b"t1 LIST ~/ INBOX*]", c.List("~/", ("INBOX*]",))),
    (
        b't1 LIST (special-use) "" ("*" Lists/%) RETURN (children STATUS (UIDNEXT))',
        c.List(
            "",
            ("*", "Lists/%"),
            frozenset({"SPECIAL-USE"}),
            frozenset({"CHILDREN"}),
            ("UIDNEXT",),
            extended=True,
        ),
    ),
    (b't1 LSUB "" *', c.Lsub("", "*")),
    (b"t1 STATUS inbox (messages UNSEEN)", c.Status("INBOX", ("MESSAGES", "UNSEEN"))),
    (b"t1 NAMESPACE", c.Namespace()),
    (b"t1 ID NIL", c.Id(None)),
    (b't1 ID ("name" "x" "os" NIL)', c.Id((("name", "x"), ("os", None)))),
    (b"t1 ENABLE condstore X-Y", c.Enable(("CONDSTORE", "X-Y"))),
    (b"t1 IDLE", c.Idle()),
    (b"t1 CHECK", c.Check()),
    (b"t1 CLOSE", c.Close()),
    (b"t1 UNSELECT", c.Unselect()),
    (b"t1 EXPUNGE", c.Expunge()),
    (b"t1 UID EXPUNGE 1:3,9", c.UidExpunge(S("1:3,9"))),
    (b"t1 SEARCH ALL", c.Search(c.SearchAll())),
    (b"t1 UID SEARCH 1:*", c.Search(c.SearchSeq(S("1:*")), uid=True)),
    (
        b"t1 SEARCH RETURN () CHARSET us-ascii UNSEEN",
        c.Search(c.SearchFlag("\\Seen", False), charset="US-ASCII", returns=()),
    ),
    (b"t1 FETCH 1 FLAGS", c.Fetch(S("1"), (c.Flags(),))),
    (b"t1 FETCH $ FAST", c.Fetch(S("$"), (c.Flags(), c.InternalDate(), c.Rfc822Size()))),
    (b"t1 UID FETCH 1:* FLAGS", c.Fetch(S("1:*"), (c.Uid(), c.Flags()), uid=True)),
    (
        b"t1 FETCH 1 (UID FLAGS) (CHANGEDSINCE 5)",
        c.Fetch(S("1"), (c.Uid(), c.Flags(), c.ModSeq()), changedsince=5),
    ),
    (b"t1 STORE 1 FLAGS \\Seen", c.Store(S("1"), c.StoreMode.REPLACE, ("\\Seen",))),
    (
        b"t1 UID STORE 1:2 (UNCHANGEDSINCE 9) -flags.silent (\\DELETED foo)",
        c.Store(
            S("1:2"),
            c.StoreMode.REMOVE,
            ("\\Deleted", "foo"),
            silent=True,
            uid=True,
            unchangedsince=9,
        ),
    ),
    (b"t1 STORE 3 +FLAGS ()", c.Store(S("3"), c.StoreMode.ADD, ())),
    (b"t1 COPY 1:3 Trash", c.Copy(S("1:3"), "Trash")),
    (b"t1 UID COPY 5 inbox", c.Copy(S("5"), "INBOX", uid=True)),
    (b"t1 MOVE 2 Junk", c.Move(S("2"), "Junk")),
    (b"t1 UID MOVE 2 Junk", c.Move(S("2"), "Junk", uid=True)),
]


@pytest.mark.parametrize(("line", "command"), GOOD, ids=[g[0].decode("latin-1") for g in GOOD])
def test_command_parses(line: bytes, command: c.Command) -> None:
    assert parse(line) == command


def test_append_with_flags_date_and_literal() -> None:
    command = parse(b't1 APPEND Sent (\\Seen $x) "07-Feb-2024 10:00:00 +0100" {5}\x00', b"hello")
    assert command == c.Append(
        "Sent", ("\\Seen", "$x"), datetime.datetime(2024, 2, 7, 10, tzinfo=UTC1), b"hello"
    )
    assert parse(b"t1 APPEND INBOX ~{2}\x00", b"\0\1") == c.Append("INBOX", (), None, b"\0\1")
    empty = parse(b't1 APPEND x " 1-Jan-2020 00:00:00 -0000" {0}\x00', b"")
    assert empty == c.Append("x", (), datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), b"")


def test_literals_for_strings_and_mailboxes() -> None:
    assert parse(b"t1 LOGIN {5}\x00 {3}\x00", b"alice", b"a b") == c.Login("alice", "a b")
    assert parse(b"t1 SELECT {5}\x00", b"iNbOx") == c.Select("INBOX")


def test_fetch_items_and_sections() -> None:
    command = parse(
        b"t1 FETCH 1 (ENVELOPE INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY"
        b" BODYSTRUCTURE MODSEQ BODY[] BODY.PEEK[TEXT]<10.20> BODY[1.2.3] BODY[2.MIME]"
        b" BODY[HEADER.FIELDS.NOT (X-A {3}\x00)] BINARY.PEEK[1]<0.5> BINARY.SIZE[2])",
        b"X-B",
    )
    assert isinstance(command, c.Fetch)
    names = [c.fetch_item_name(item).decode() for item in command.items]
    assert names == [
        "ENVELOPE", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE", "RFC822.TEXT",
        "BODY", "BODYSTRUCTURE", "MODSEQ", "BODY[]", "BODY[TEXT]<10>", "BODY[1.2.3]",
        "BODY[2.MIME]", "BODY[HEADER.FIELDS.NOT (X-A X-B)]", "BINARY[1]<0>", "BINARY.SIZE[2]",
    ]  # fmt: skip
    peek = command.items[10]
    assert peek == c.BodySection(c.Section((), c.SectionSpec.TEXT), True, (10, 20))


def test_fetch_macros() -> None:
    all_ = parse(b"t1 FETCH 1 all")
    full = parse(b"t1 FETCH 1 FULL")
    assert isinstance(all_, c.Fetch) and isinstance(full, c.Fetch)
    assert all_.items == (c.Flags(), c.InternalDate(), c.Rfc822Size(), c.Envelope())
    assert full.items == (*all_.items, c.Body())


def test_search_keys() -> None:
    command = parse(
        b"t1 SEARCH ANSWERED UNANSWERED DELETED UNDELETED DRAFT UNDRAFT FLAGGED UNFLAGGED"
        b' SEEN UNSEEN RECENT OLD NEW KEYWORD $Job UNKEYWORD x BCC a CC b FROM c SUBJECT "d e"'
        b' TO f HEADER X-Spam yes BODY g TEXT h BEFORE 1-Feb-2024 ON "02-Mar-2024"'
        b" SINCE 3-Apr-2024 SENTBEFORE 4-May-2024 SENTON 5-Jun-2024 SENTSINCE 6-Jul-2024"
        b' LARGER 10 SMALLER 20 UID 1:5 2,4 MODSEQ 7 MODSEQ "/flags/\\\\draft" all 9'
        b" NOT (OR SEEN (DELETED)) ALL"
    )
    assert isinstance(command, c.Search)
    assert isinstance(command.key, c.SearchAnd)
    keys = command.key.keys
    flag = c.SearchFlag
    assert keys[:12] == (
        flag("\\Answered"), flag("\\Answered", False), flag("\\Deleted"),
        flag("\\Deleted", False), flag("\\Draft"), flag("\\Draft", False), flag("\\Flagged"),
        flag("\\Flagged", False), flag("\\Seen"), flag("\\Seen", False), flag("\\Recent"),
        flag("\\Recent", False),
    )  # fmt: skip
    assert keys[12] == c.SearchAnd((flag("\\Recent"), flag("\\Seen", False)))
    assert keys[13:15] == (flag("$Job"), flag("x", False))
    assert keys[15:22] == (
        c.SearchHeader("bcc", "a"), c.SearchHeader("cc", "b"), c.SearchHeader("from", "c"),
        c.SearchHeader("subject", "d e"), c.SearchHeader("to", "f"),
        c.SearchHeader("x-spam", "yes"), c.SearchBody("g"),
    )  # fmt: skip
    assert keys[22] == c.SearchText("h")
    assert keys[23] == c.SearchDate(c.DateOp.BEFORE, datetime.date(2024, 2, 1))
    assert keys[24] == c.SearchDate(c.DateOp.ON, datetime.date(2024, 3, 2))
    assert keys[28] == c.SearchDate(c.DateOp.SINCE, datetime.date(2024, 7, 6), sent=True)
    assert keys[29:33] == (
        c.SearchSize(True, 10), c.SearchSize(False, 20), c.SearchUid(S("1:5")),
        c.SearchSeq(S("2,4")),
    )  # fmt: skip
    assert keys[33] == c.SearchModSeq(7)
    assert keys[34] == c.SearchModSeq(9, ("/flags/\\draft", "all"))
    assert keys[35] == c.SearchNot(c.SearchOr(flag("\\Seen"), flag("\\Deleted")))
    assert keys[36] == c.SearchAll()


def test_search_strings_are_decoded_utf8() -> None:
    command = parse(b"t1 SEARCH CHARSET UTF-8 SUBJECT {6}\x00", "grüß".encode())
    assert command == c.Search(c.SearchHeader("subject", "grüß"), charset="UTF-8")


def test_search_nesting_limit() -> None:
    deep = b"t1 SEARCH " + b"(" * MAX_SEARCH_DEPTH + b"ALL" + b")" * MAX_SEARCH_DEPTH
    assert isinstance(parse(deep), c.Search)
    too_deep = b"t1 SEARCH " + b"(" * (MAX_SEARCH_DEPTH + 1) + b"ALL" + b")" * 40
    assert bad(too_deep).text == "Search too complex"
    assert bad(b"t1 SEARCH " + b"OR ALL " * 5000 + b"ALL").text == "Search too complex"


BAD: list[tuple[bytes, str]] = [
    (b"t1 FROB", "Unknown command FROB"),
    (b"t1 ", "Missing command"),
    (b"t1 NOOP x", "Unexpected extra arguments"),
    (b"t1 LOGIN j\xc3\xb6rg pw", "Expected a space"),  # 8-bit only in quoted or literal
    (b"t1 LOGIN alice", "Expected a space"),
    (b't1 LOGIN a "\xff"', "The password is not valid UTF-8"),
    (b"t1 AUTHENTICATE PLAIN !!", "Invalid base64 data"),
    (b"t1 SELECT a (QRESYNC)", "Unknown SELECT parameter"),
    (b"t1 SELECT &Jjo", "Invalid mailbox name: unterminated or invalid shift sequence"),
    (
        b't1 SELECT "caf\xc3\xa9"',
        "Invalid mailbox name: mailbox names are printable 7-bit ASCII or modified UTF-7",
    ),
    (b't1 LIST (BOGUS) "" *', "Unknown LIST selection option"),
    (b't1 LIST "" * RETURN (BOGUS)', "Unknown LIST return option"),
    (b"t1 STATUS a (BOGUS)", "Invalid STATUS items"),
    (b"t1 STATUS a ()", "Invalid STATUS items"),
    (b"t1 APPEND a (\\Seen)", "Expected a space"),
    (b't1 APPEND a "31-Feb-2024 00:00:00 +0000" {1}', "Invalid date"),
    (b"t1 APPEND a x", "Expected the message as a literal"),
    (b"t1 ENABLE", "Expected a capability"),
    (b't1 ID ("a")', "Expected a space"),
    (b"t1 SEARCH", "Expected a space"),
    (b"t1 SEARCH BOGUS", "Unknown search key BOGUS"),
    (b"t1 SEARCH BEFORE 1-Foo-2024", "Invalid date"),
    (b't1 SEARCH BEFORE "1-Feb-2024', "Expected a date like 1-Feb-2024"),
    (b"t1 SEARCH RETURN (BOGUS) ALL", "Unknown SEARCH return option"),
    (b't1 SEARCH MODSEQ "/flags/x" bogus 1', "Invalid MODSEQ entry type"),
    (b"t1 SEARCH LARGER 99999999999", "Number out of range"),
    (b"t1 FETCH 1 BOGUS", "Unknown FETCH item BOGUS"),
    (b"t1 FETCH 1 (FLAGS", "Expected a space"),
    (b"t1 FETCH 1 BODY[BOGUS]", "Invalid section"),
    (b"t1 FETCH 1 BODY[MIME]", "Invalid section"),
    (b"t1 FETCH 1 BODY[]<1.0>", "Invalid partial range"),
    (b"t1 FETCH 1 BODY[]<1>", "Invalid partial range"),
    (b"t1 FETCH 1 FLAGS (CHANGEDSINCE 0)", "Number out of range"),
    (b"t1 FETCH 0 FLAGS", "Invalid sequence set"),
    (b"t1 FETCH 1:4294967296 FLAGS", "Invalid sequence set"),
    (b"t1 STORE 1 FLAGZ (\\Seen)", "Expected FLAGS, +FLAGS or -FLAGS"),
    (b"t1 STORE 1 FLAGS (\\Bogus)", "Invalid system flag \\Bogus"),
    (b"t1 UID", "Expected a space"),
    (b"t1 UID NOOP", "Unknown UID command"),
    (b"t1 UID EXPUNGE $x", "Unexpected extra arguments"),
    (b"t1 COPY 1", "Expected a space"),
]


@pytest.mark.parametrize(("line", "text"), BAD, ids=[b[0].decode("latin-1") for b in BAD])
def test_bad_command(line: bytes, text: str) -> None:
    response = bad(line)
    assert response == Tagged("t1", Status.BAD, text)


def test_unknown_special_use_is_no_useattr() -> None:
    response = bad(b"t1 CREATE a (USE (\\Bogus))")
    assert response.to_bytes() == b"t1 NO [USEATTR] Unknown special-use attribute\r\n"


def test_missing_tag_gives_untagged_bad() -> None:
    for line in (b"", b"NOOP", b"+ NOOP", b"a{ NOOP", b"*"):
        assert bad(line) == UntaggedStatus(Status.BAD, "Missing or invalid tag")


def test_unknown_charset_is_no_badcharset() -> None:
    response = bad(b"t1 SEARCH CHARSET ISO-2022-JP ALL")
    assert isinstance(response, Tagged)
    assert response.to_bytes() == b"t1 NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset\r\n"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_lines_never_raise(line: bytes) -> None:
    assert isinstance(parse_command([line]), Parsed | Bad)


COMMAND_WORDS = [
    b"t SEARCH", b"t FETCH 1", b"t UID", b" ", b"(", b")", b"[", b"]", b"<1.2>", b"\"x\"",
    b"OR", b"NOT", b"BODY", b"BODY.PEEK[", b"HEADER.FIELDS", b"1:*", b"\\Seen", b"{3}",
    b"APPEND", b"LIST", b"RETURN", b"STATUS", b"MODSEQ", b"CHARSET", b"UTF-8", b"~{1}",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(COMMAND_WORDS), max_size=30))
def test_random_token_soup_never_raises(words: list[bytes]) -> None:
    assert isinstance(parse_command([b"".join(words)]), Parsed | Bad)


def test_every_command_type_has_a_parse_example() -> None:
    covered = {type(command) for _, command in GOOD} | {c.Append}
    assert covered == set(typing.get_args(c.Command))


def test_state_tables_cover_every_command() -> None:
    assert set(typing.get_args(c.Command)) == c.SELECTED | c.NOT_AUTHENTICATED
    assert c.ANY_STATE <= c.NOT_AUTHENTICATED and c.AUTHENTICATED <= c.SELECTED


def test_a_repeated_line_parses_to_the_same_command_under_each_tag() -> None:
    line = b" UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
    first, second = parse_command([b"a1" + line]), parse_command([b"b2" + line])
    assert isinstance(first, Parsed) and isinstance(second, Parsed)
    assert (first.tag, second.tag) == ("a1", "b2")
    assert first.command == second.command
    # The same text after an invalid tag is still refused for its tag.
    assert parse_command([b'"x"' + line]) == Bad(
        None, UntaggedStatus(Status.BAD, "Missing or invalid tag")
    )


def test_logins_are_not_kept_after_their_command() -> None:
    from pillarbox.imap import parser

    parse_command([b'a1 LOGIN "jane" "secret-password"'])
    assert not any(b"secret-password" in line for line in parser._parsed)
