"""Response serialisation (RFC 3501 §7, §9): status lines, codes, data values, FETCH."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.imap import responses as r
from pillarbox.imap.lexer import Lexer
from pillarbox.imap.sequence import format_ordered, format_set


def test_status_lines() -> None:
    assert r.Tagged("a1", r.Status.OK, "SELECT completed", r.READ_WRITE).to_bytes() == (
        b"a1 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert r.UntaggedStatus(r.Status.BYE, "bye").to_bytes() == b"* BYE bye\r\n"
    assert r.Tagged("a", r.Status.NO, "x\r\ny").to_bytes() == b"a NO x  y\r\n"
    assert r.Continuation().to_bytes() == b"+ Ready\r\n"
    assert r.Continuation("").to_bytes() == b"+ \r\n"


def test_codes() -> None:
    assert r.uidnext(5).to_bytes() == b"[UIDNEXT 5]"
    assert r.uidvalidity(7).to_bytes() == b"[UIDVALIDITY 7]"
    assert r.unseen(2).to_bytes() == b"[UNSEEN 2]"
    assert r.highestmodseq(99).to_bytes() == b"[HIGHESTMODSEQ 99]"
    assert r.permanentflags(["\\Seen", "\\*"]).to_bytes() == b"[PERMANENTFLAGS (\\Seen \\*)]"
    assert r.capability_code(["IMAP4rev1", "IDLE"]).to_bytes() == b"[CAPABILITY IMAP4rev1 IDLE]"
    assert r.badcharset(["UTF-8"]).to_bytes() == b"[BADCHARSET (UTF-8)]"
    assert r.appenduid(38505, format_set([3955])).to_bytes() == b"[APPENDUID 38505 3955]"
    assert r.copyuid(38505, format_ordered([304, 319, 320]), "3956:3958").to_bytes() == (
        b"[COPYUID 38505 304,319:320 3956:3958]"  # RFC 4315 §3 example
    )
    assert r.modified("7,9").to_bytes() == b"[MODIFIED 7,9]"
    for code in (r.ALERT, r.TOOBIG, r.OVERQUOTA, r.NONEXISTENT, r.ALREADYEXISTS, r.TRYCREATE):
        assert code.to_bytes() == b"[" + code.name.encode() + b"]"


def test_strings_quote_or_literal() -> None:
    assert r.string(b"hello") == b'"hello"'
    assert r.string(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert r.string("grüß") == b"{6}\r\ngr\xc3\xbc\xc3\x9f"
    assert r.string(b"a\r\nb") == b"{4}\r\na\r\nb"
    assert r.string(b"x" * (r.MAX_QUOTED + 1)).startswith(b"{1025}\r\n")
    assert r.nstring(None) == b"NIL"
    assert r.astring(b"INBOX") == b"INBOX"
    assert r.astring(b"nil") == b'"nil"'
    assert r.astring(b"a b") == b'"a b"'
    assert r.astring(b"a%") == b'"a%"'
    assert r.astring(b"") == b'""'


def test_mailbox_names_are_modified_utf7() -> None:
    assert r.mailbox("Entwürfe") == b"Entw&APw-rfe"
    assert r.mailbox("Sent Items") == b'"Sent Items"'
    assert r.list_entry(["\\HasNoChildren"], "/", "INBOX").to_bytes() == (
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    )
    assert r.list_entry([], None, "a", b"LSUB").to_bytes() == b"* LSUB () NIL a\r\n"


def test_untagged_data() -> None:
    assert r.exists(3).to_bytes() == b"* 3 EXISTS\r\n"
    assert r.recent(0).to_bytes() == b"* 0 RECENT\r\n"
    assert r.expunge(2).to_bytes() == b"* 2 EXPUNGE\r\n"
    assert r.flags(["\\Seen", "$x"]).to_bytes() == b"* FLAGS (\\Seen $x)\r\n"
    assert r.capability(["IMAP4rev1"]).to_bytes() == b"* CAPABILITY IMAP4rev1\r\n"
    assert r.enabled(["CONDSTORE"]).to_bytes() == b"* ENABLED CONDSTORE\r\n"
    assert r.status("INBOX", [("MESSAGES", 2), ("UIDNEXT", 9)]).to_bytes() == (
        b"* STATUS INBOX (MESSAGES 2 UIDNEXT 9)\r\n"
    )
    assert r.search([2, 3]).to_bytes() == b"* SEARCH 2 3\r\n"
    assert r.search([], modseq=None).to_bytes() == b"* SEARCH\r\n"
    assert r.search([4], modseq=12).to_bytes() == b"* SEARCH 4 (MODSEQ 12)\r\n"
    assert r.esearch("a1", True, [("MIN", b"2"), ("ALL", b"2:4")]).to_bytes() == (
        b'* ESEARCH (TAG "a1") UID MIN 2 ALL 2:4\r\n'
    )
    assert r.id_response([("name", "Pillarbox")]).to_bytes() == b'* ID ("name" "Pillarbox")\r\n'
    assert r.id_response(None).to_bytes() == b"* ID NIL\r\n"
    assert r.namespace([("", "/")]).to_bytes() == b'* NAMESPACE (("" "/")) NIL NIL\r\n'


def test_fetch_response() -> None:
    data = r.FetchData(12, ((b"UID", b"5"), (b"FLAGS", r.flag_list(["\\Seen"]))))
    assert data.to_bytes() == b"* 12 FETCH (UID 5 FLAGS (\\Seen))\r\n"
    body = r.FetchData(1, ((b"BODY[TEXT]", r.literal(b"hi\r\n")),))
    assert body.to_bytes() == b"* 1 FETCH (BODY[TEXT] {4}\r\nhi\r\n)\r\n"


def test_date_time() -> None:
    zone = datetime.timezone(-datetime.timedelta(hours=7))
    value = datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone)
    assert r.date_time(value) == b'"17-Jul-1996 02:44:25 -0700"'
    assert r.date_time(datetime.datetime(2024, 2, 1, 0, 0, 0)) == b'" 1-Feb-2024 00:00:00 +0000"'


@given(st.binary(max_size=300))
def test_strings_read_back_by_the_lexer(value: bytes) -> None:
    """Whatever `string` writes, the lexer (quoted or literal framing) reads back."""
    wire = r.string(value)
    if wire.startswith(b"{"):
        marker, _, data = wire.partition(b"\r\n")
        parts = [marker, data, b""]
    else:
        parts = [wire]
    assert Lexer(parts).string() == value


@given(st.binary(min_size=1, max_size=50))
def test_astring_reads_back(value: bytes) -> None:
    wire = r.astring(value)
    if wire.startswith(b"{"):
        marker, _, data = wire.partition(b"\r\n")
        parts = [marker, data, b""]
    else:
        parts = [wire]
    lexer = Lexer(parts)
    assert lexer.astring() == value
    assert lexer.at_end()
