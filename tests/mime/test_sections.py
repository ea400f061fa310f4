"""BODY[section], partial and BINARY (RFC 3501 §6.4.5, RFC 3516)."""

from __future__ import annotations

import pytest

from pillarbox.mime.parts import parse
from pillarbox.mime.sections import (
    BinaryError,
    Section,
    binary,
    binary_size,
    parse_section,
    partial,
    section_bytes,
)

MSG = (
    b"From: a@example.com\r\nSubject: hi\r\nTo: b@example.com\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 =\r\nau lait\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nX-A: 1\r\n\r\ninner body\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAEC\r\n/w==\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nzzz\r\n"
    b"--b--\r\n"
)
TREE = parse(MSG)


def fetch(spec: bytes) -> bytes | None:
    section = parse_section(spec)
    assert section is not None, spec
    return section_bytes(MSG, TREE, section)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (b"1", b"caf=C3=A9 =\r\nau lait"),
        (
            b"1.MIME",
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        ),
        (b"2", b"Subject: inner\r\nX-A: 1\r\n\r\ninner body"),
        (b"2.HEADER", b"Subject: inner\r\nX-A: 1\r\n\r\n"),
        (b"2.TEXT", b"inner body"),
        (b"2.1", b"inner body"),
        (b"2.HEADER.FIELDS (x-a)", b"X-A: 1\r\n\r\n"),
        (b"HEADER.FIELDS (SUBJECT TO)", b"Subject: hi\r\nTo: b@example.com\r\n\r\n"),
        (b"HEADER.FIELDS.NOT (From To Content-Type)", b"Subject: hi\r\n\r\n"),
    ],
)
def test_sections(spec: bytes, expected: bytes) -> None:
    assert fetch(spec) == expected


def test_whole_header_and_text() -> None:
    header = fetch(b"HEADER")
    text = fetch(b"TEXT")
    assert header is not None and text is not None
    assert header + text == MSG
    assert fetch(b"") == MSG


def test_missing_parts_give_none() -> None:
    assert fetch(b"9") is None
    assert fetch(b"1.1") is None
    assert fetch(b"1.HEADER") is None


def test_single_part_message_part_one_is_its_body() -> None:
    msg = b"Subject: x\r\n\r\nbody\r\n"
    assert section_bytes(msg, parse(msg), Section((1,))) == b"body\r\n"


@pytest.mark.parametrize("spec", [b"MIME", b"0", b"1.", b"HEADER.FIELDS", b"TEXT (A)", b"BOGUS"])
def test_invalid_section_specs(spec: bytes) -> None:
    assert parse_section(spec) is None


def test_partial() -> None:
    assert partial(b"0123456789", 2, 3) == b"234"
    assert partial(b"0123456789", 20, 3) == b""
    assert partial(b"0123456789", 8) == b"89"


def test_binary_decodes_transfer_encodings() -> None:
    assert binary(MSG, TREE, (1,)) == "café au lait".encode()
    assert binary(MSG, TREE, (3,)) == b"\x00\x01\x02\xff"
    assert binary_size(MSG, TREE, (3,)) == 4
    assert binary(MSG, TREE, (4,)) is BinaryError.UNKNOWN_CTE
    assert binary(MSG, TREE, (7,)) is BinaryError.NO_SUCH_PART
    assert binary(MSG, TREE, ()) == MSG
