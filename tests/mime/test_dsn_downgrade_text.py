"""DSN composition, 8BITMIME downgrade and search text."""

from __future__ import annotations

import datetime as dt

from pillarbox.mime.downgrade import downgrade, needs_downgrade
from pillarbox.mime.dsn import (
    DsnAction,
    DsnRecipientStatus,
    DsnReport,
    ReturnContent,
    compose_dsn,
)
from pillarbox.mime.headers import split_fields
from pillarbox.mime.parts import parse, walk
from pillarbox.mime.sections import Section, binary, section_bytes
from pillarbox.mime.text import body_text, header_values, search_text

NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
ORIGINAL = (
    "From: Jörg <j@example.de>\r\nTo: bob@example.com\r\nSubject: Grüße\r\n"
    "Message-ID: <o1@example.de>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Schöne Grüße\r\n--b\r\nContent-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: binary\r\n\r\n"
).encode() + b"\x00\xff\xfe\r\n--b--\r\n"


def report(ret: ReturnContent, rcpt: str = "bob@example.com") -> DsnReport:
    status = DsnRecipientStatus(
        final_recipient=rcpt,
        action=DsnAction.FAILED,
        status="5.1.1",
        original_recipient="rfc822; bob@example.com",
        remote_mta="mx.example.com",
        diagnostic_code="550 5.1.1 <bob@example.com>: no such user\r\nX-Evil: 1",
        last_attempt_date=NOW,
    )
    return DsnReport(
        "mx.example.net",
        "j@example.de",
        (status,),
        NOW,
        "d1@mx.example.net",
        envid="ENV1",
        arrival_date=NOW,
        ret=ret,
    )


def test_dsn_is_a_multipart_report_with_recipient_fields() -> None:
    msg = compose_dsn(report(ReturnContent.FULL), ORIGINAL)
    tree = parse(msg)
    assert (tree.content_type.maintype, tree.content_type.subtype) == ("multipart", "report")
    kinds = [(p.content_type.maintype, p.content_type.subtype) for p in tree.children]
    assert kinds == [("text", "plain"), ("message", "delivery-status"), ("message", "global")]
    status = section_bytes(msg, tree, Section((2,)))
    assert status is not None
    assert b"Reporting-MTA: dns; mx.example.net\r\n" in status
    assert b"Original-Envelope-Id: ENV1\r\n" in status
    assert b"Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.1.1" in status
    assert b"Remote-MTA: dns; mx.example.com" in status
    assert section_bytes(msg, tree, Section((3,))) == ORIGINAL


def test_dsn_headers_only_and_injection_safe() -> None:
    msg = compose_dsn(report(ReturnContent.HEADERS, "x@y\r\nBcc: victim@z"), ORIGINAL)
    tree = parse(msg)
    names = [f.name for f in split_fields(msg, 0, tree.body_start)]
    assert b"bcc" not in names
    assert b"\r\nX-Evil" not in msg and b"\r\nBcc" not in msg
    assert tree.children[2].content_type.subtype == "global-headers"
    assert "Schöne".encode() not in msg  # RET=HDRS: no body


def test_downgrade_keeps_decoded_content_and_is_7bit() -> None:
    assert needs_downgrade(ORIGINAL)
    out = downgrade(ORIGINAL)
    assert not needs_downgrade(out)
    before, after = parse(ORIGINAL), parse(out)
    assert [binary(ORIGINAL, before, (i,)) for i in (1, 2)] == [
        binary(out, after, (i,)) for i in (1, 2)
    ]
    assert header_values(out, after, b"subject") == ["Grüße"]
    assert header_values(out, after, b"from") == ["Jörg <j@example.de>"]
    assert [p.encoding for p in walk(after)[1:]] == ["quoted-printable", "base64"]


def test_downgrade_keeps_a_final_line_break_of_text() -> None:
    msg = (
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"caf\xc3\xa9\r\n\r\n--zz--\r\n"
    )
    out = downgrade(msg)
    assert binary(out, parse(out), (1,)) == binary(msg, parse(msg), (1,)) == b"caf\xc3\xa9\r\n"


def test_search_text_decodes_headers_and_text_parts_only() -> None:
    tree = parse(ORIGINAL)
    assert body_text(ORIGINAL, tree) == "Schöne Grüße"
    text = search_text(ORIGINAL, tree)
    assert "Subject: Grüße" in text and "Schöne Grüße" in text
