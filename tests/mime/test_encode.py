"""Encoders: base64, quoted-printable, RFC 2047 words, folding."""

from __future__ import annotations

import base64
import binascii

from pillarbox.mime.encode import encode_base64, encode_header, encode_qp, encode_words, fold
from pillarbox.mime.headers import decode_words, unfold


def test_base64_lines_are_76_columns_crlf() -> None:
    out = encode_base64(bytes(range(256)) * 3)
    lines = out.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 76 for line in lines)
    assert len(lines[0]) == 76
    assert base64.b64decode(out) == bytes(range(256)) * 3


def test_qp_escapes_soft_breaks_and_trailing_space() -> None:
    text = b"x=y trailing \r\n" + "é".encode() * 60 + b"\r\nend\t"
    out = encode_qp(text)
    lines = out.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines)
    assert not any(line.endswith((b" ", b"\t")) for line in lines)
    assert b"x=3Dy trailing=20" in out
    assert binascii.a2b_qp(out) == text


def test_encoded_words_are_short_and_decode_back() -> None:
    text = "Ünïcödé " * 20
    out = encode_words(text)
    assert all(len(word) <= 75 for word in out.split(b" "))
    assert decode_words(out) == text


def test_fold_at_78_and_encode_header() -> None:
    field = fold(b"Subject", b"word " * 40)
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))
    subject = "Grüße aus München — " + "long " * 20
    field = encode_header("Subject", subject)
    assert field.isascii()
    assert decode_words(unfold(field[len("Subject:") :]).strip()) == subject.strip()
