"""Tokens (RFC 3501 §9): atoms, strings, literals, flags, dates."""

from __future__ import annotations

import datetime

import pytest

from pillarbox.imap.lexer import Lexer, SyntaxFailure


def test_atoms_and_astrings() -> None:
    lexer = Lexer([b"abc] def"])
    assert lexer.astring() == b"abc]"
    lexer.sp()
    assert lexer.atom() == b"def"
    assert lexer.at_end()


def test_quoted_escapes_and_8bit() -> None:
    lexer = Lexer([b'"a\\"b\\\\c" "\xc3\xbc"'])
    assert lexer.string() == b'a"b\\c'
    lexer.sp()
    assert lexer.string() == b"\xc3\xbc"


@pytest.mark.parametrize("text", [b'"a\\nb"', b'"open', b'"a\rb"'])
def test_bad_quoted(text: bytes) -> None:
    with pytest.raises(SyntaxFailure):
        Lexer([text]).string()


def test_literals_take_the_next_part() -> None:
    lexer = Lexer([b"{3}", b"a\r\n", b" {0+}", b"", b""])
    assert lexer.string() == b"a\r\n"
    lexer.sp()
    assert lexer.astring() == b""
    assert lexer.at_end()


def test_literal8_only_where_allowed() -> None:
    with pytest.raises(SyntaxFailure, match="literal8"):
        Lexer([b"~{1}", b"\0", b""]).string()
    assert Lexer([b"~{1}", b"\0", b""]).literal8() == b"\0"


def test_nil_and_nstring() -> None:
    assert Lexer([b"NIL"]).nstring() is None
    assert Lexer([b'"NIL"']).nstring() == b"NIL"


def test_flags_are_normalised() -> None:
    lexer = Lexer([b"(\\SEEN \\answered $Label1 \\Draft)"])
    assert lexer.flag_list() == ("\\Seen", "\\Answered", "$Label1", "\\Draft")
    with pytest.raises(SyntaxFailure):
        Lexer([b"\\Recent"]).flag()
    assert Lexer([b"\\recent"]).flag(storable=False) == "\\Recent"


def test_mailbox_inbox_any_case() -> None:
    assert Lexer([b"iNbOx"]).mailbox() == "INBOX"
    assert Lexer([b'"inbox/Sub"']).mailbox() == "inbox/Sub"
    assert Lexer([b"&ZeVnLIqe-"]).mailbox() == "日本語"


def test_dates() -> None:
    assert Lexer([b"1-Feb-2024"]).search_date() == datetime.date(2024, 2, 1)
    assert Lexer([b'"29-feb-2024"']).search_date() == datetime.date(2024, 2, 29)
    with pytest.raises(SyntaxFailure):
        Lexer([b"29-Feb-2023"]).search_date()
    moment = Lexer([b'" 9-Mar-2024 23:59:60 +0530"'])
    with pytest.raises(SyntaxFailure):
        moment.date_time()  # no leap seconds in datetime
    value = Lexer([b'"09-Mar-2024 23:59:59 -0530"']).date_time()
    assert value.utcoffset() == -datetime.timedelta(hours=5, minutes=30)


def test_numbers() -> None:
    assert Lexer([b"4294967295"]).number() == 4294967295
    with pytest.raises(SyntaxFailure):
        Lexer([b"4294967296"]).number()
    with pytest.raises(SyntaxFailure):
        Lexer([b"0"]).number(nonzero=True)


def test_parts_must_alternate() -> None:
    with pytest.raises(ValueError, match="alternate"):
        Lexer([b"a", b"b"])
