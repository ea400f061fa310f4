"""Property tests: parsing never raises or loops; encoders round-trip; downgrade keeps content."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pillarbox.mime import parts
from pillarbox.mime.cache import dump_tree, load_tree
from pillarbox.mime.downgrade import downgrade, needs_downgrade
from pillarbox.mime.encode import encode_base64, encode_header, encode_qp, encode_words
from pillarbox.mime.headers import decode_words, unfold
from pillarbox.mime.imapview import body_structure, message_envelope
from pillarbox.mime.parts import parse, walk
from pillarbox.mime.sections import binary
from pillarbox.mime.text import search_text

# Pieces that make MIME-shaped input likelier than uniform random bytes.
FRAGMENTS = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"--b",
        b"--b--",
        b"--bb",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: multipart/alternative; boundary=bb\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Subject: =?utf-8?B?w6k=?=\r\n",
        b'From: "a" <b@c>, (x) d@e, g: h@i;\r\n',
        b"=?",
        b'"',
        b"(",
        b"<",
        b"\xff\xfe",
        b"text",
    ]
)
MESSAGES = st.lists(st.one_of(FRAGMENTS, st.binary(max_size=20)), max_size=60).map(b"".join)


@settings(max_examples=400, deadline=1000)
@given(MESSAGES)
def test_parse_and_views_never_raise(data: bytes) -> None:
    tree = parse(data)
    structure = body_structure(tree)
    assert structure.startswith(b"(") and structure.endswith(b")")
    message_envelope(tree)
    search_text(data, tree)
    for part in walk(tree):
        assert 0 <= part.header_start <= part.body_start <= part.body_end <= len(data)
        assert part.lines == data.count(b"\n", part.body_start, part.body_end)
    assert load_tree(dump_tree(tree)) == tree


NESTED = (
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n"
    b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n"
    b"Content-Type: multipart/alternative; boundary=bb\r\n\r\n--bb\r\n\r\none\r\ntwo\r\n"
    b"--bb\r\n\r\nthree\r\n--bb--\r\nepi\r\n--b\r\n\r\nfour\r\n--b--\r\nend\r\n"
)


@settings(max_examples=300, deadline=1000)
@given(MESSAGES)
@example(NESTED)
@example(NESTED.replace(b"\r\n", b"\n"))
def test_line_counts_reused_from_inner_parts_are_exact(data: bytes) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parts, "RECOUNT_BYTES", 0)  # reuse every inner count, however small
        patch.setattr(parts, "REUSE_COUNTS_BYTES", 0)
        tree = parse(data)
    for part in walk(tree):
        assert part.lines == data.count(b"\n", part.body_start, part.body_end)


@given(st.binary(max_size=2000))
def test_base64_round_trip(data: bytes) -> None:
    assert base64.b64decode(encode_base64(data)) == data


@given(st.binary(max_size=2000))
def test_qp_round_trip_and_line_length(data: bytes) -> None:
    # Text line ends are hard breaks (CRLF); normalise the input's line ends the same way.
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"").replace(b"\n", b"\r\n")
    out = encode_qp(text)
    assert out.isascii()
    assert all(len(line) <= 76 for line in out.split(b"\r\n"))
    assert binascii.a2b_qp(out) == text


@given(st.text(min_size=1, max_size=200))
def test_rfc2047_round_trip(text: str) -> None:
    encoded = encode_words(text)
    assert encoded.isascii()
    assert decode_words(encoded) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120))
def test_encoded_header_decodes_to_the_same_words(text: str) -> None:
    field = encode_header("Subject", text)
    assert field.isascii()
    assert decode_words(unfold(field[len("Subject:") :]).strip()).split() == text.split()


BODY_TEXT = st.text(max_size=300).map(lambda t: t.replace("\r", "").replace("\n", "\r\n"))


@given(BODY_TEXT, st.binary(max_size=300), st.text(max_size=40))
def test_downgrade_keeps_decoded_content(text: str, blob: bytes, subject: str) -> None:
    subject = " ".join(subject.split())
    msg = (
        b"Subject: " + subject.encode() + b"\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + text.encode() + b"\r\n--zz\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n" + blob + b"\r\n--zz--\r\n"
    )
    if b"--zz" in text.encode() or b"--zz" in blob:
        return
    out = downgrade(msg)
    assert not needs_downgrade(out)
    before, after = parse(msg), parse(out)
    for path in ((1,), (2,)):
        assert binary(msg, before, path) == binary(out, after, path)
    assert " ".join(decode_words(unfold(after.envelope.subject or b"")).split()) == subject  # type: ignore[union-attr]
