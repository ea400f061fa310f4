"""Modified UTF-7 (RFC 3501 §5.1.3): examples, canonical-form checks, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.imap.utf7 import Utf7Error, decode, encode, is_valid

EXAMPLES = [
    ("INBOX", b"INBOX"),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("a&b", b"a&-b"),
    ("&&", b"&-&-"),
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 §5.1.3
    ("😀", b"&2D3eAA-"),  # a surrogate pair
    ("x&日y", b"x&-&ZeU-y"),
    ("", b""),
]


@pytest.mark.parametrize(("name", "wire"), EXAMPLES)
def test_examples(name: str, wire: bytes) -> None:
    assert encode(name) == wire
    assert decode(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        b"&AGE-",  # "a" must be written directly
        b"&AOk-&AOk-",  # two adjacent shifts: must be one
        b"&",  # unterminated
        b"&Jjo",  # unterminated
        b"&Jjo!-",  # bad base64 char, and no terminator for the run
        b"&2D3-",  # odd number of octets
        b"&2D0-",  # lone high surrogate... encoded in 16 bits
        b"&2D3eAA",  # missing "-"
        b"&AOl-",  # non-zero padding bits
        b"caf\xc3\xa9",  # raw 8-bit
        b"tab\there",  # control character
        b"a/b&",
    ],
)
def test_invalid_forms_are_rejected(wire: bytes) -> None:
    with pytest.raises(Utf7Error):
        decode(wire)
    assert not is_valid(wire)


def test_lone_surrogate_rejected() -> None:
    # U+D83D alone, base64 of 0xD8 0x3D
    with pytest.raises(Utf7Error):
        decode(b"&2D0-")


@given(st.text())
def test_round_trip(name: str) -> None:
    try:
        wire = encode(name)
    except UnicodeEncodeError:
        return  # lone surrogates in a Python str cannot be encoded (nor be mailbox names)
    assert decode(wire) == name
    assert all(0x20 <= b <= 0x7E for b in wire)


@given(st.binary(max_size=40))
def test_decode_is_canonical_or_refuses(data: bytes) -> None:
    try:
        name = decode(data)
    except Utf7Error:
        return
    assert encode(name) == data
