"""Outbound DATA encoding: CRLF only and dot-stuffing, never a bare CR or LF (smuggling)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.smtp import framing
from pillarbox.smtp.client_wire import (
    Capabilities,
    OutboundMessage,
    RecipientSpec,
    ReplyReader,
    ServerReply,
    encode_data,
    normalize_line_ends,
    parse_ehlo,
    prepare,
)

PIECES = st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b"\r\n.\r\n", b" ", b"\x80"]),
    max_size=40,
).map(b"".join)


@given(PIECES)
def test_encoded_data_is_crlf_only_and_ends_only_at_the_terminator(body: bytes) -> None:
    wire = encode_data(body)
    assert wire.count(b"\r") == wire.count(b"\n") == wire.count(b"\r\n")
    framed = b"\r\n" + wire  # as the server sees it after the DATA line
    assert framed.find(b"\r\n.\r\n") == len(framed) - 5


@given(PIECES)
def test_our_own_server_reads_back_exactly_the_normalized_body(body: bytes) -> None:
    reader = framing.DataReader(max_size=0, normalize=False)
    buffer = bytearray(framing.LINE_START + encode_data(body))
    received = reader.read(buffer)
    expected = normalize_line_ends(body)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert received == expected
    assert buffer == b""


def test_examples() -> None:
    assert encode_data(b"") == b".\r\n"
    assert encode_data(b".hidden\nline") == b"..hidden\r\nline\r\n.\r\n"
    assert encode_data(b"a\r\n.\r\nMAIL FROM:<x>\r\n") == b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"
    assert encode_data(b"bare\rCR\n\r") == b"bare\r\nCR\r\n\r\n.\r\n"


def test_reply_reader_joins_multiline_replies_in_any_chunking() -> None:
    data = b"250-mx.b.test hi\r\n250-SIZE 1000\r\n250 8BITMIME\r\n550 5.1.1 no\r\n"
    for size in (1, 3, len(data)):
        reader = ReplyReader()
        got: list[ServerReply] = []
        for start in range(0, len(data), size):
            reader.feed(data[start : start + size])
            while (reply := reader.next_reply()) is not None:
                got.append(reply)
        assert got == [
            ServerReply(250, ("mx.b.test hi", "SIZE 1000", "8BITMIME")),
            ServerReply(550, ("5.1.1 no",)),
        ]
        assert got[1].status == "5.1.1" and got[0].status is None


def test_status_must_match_the_reply_class() -> None:
    assert ServerReply(550, ("4.1.1 odd",)).status is None  # RFC 3463 §2


def test_ehlo_keywords() -> None:
    reply = ServerReply(250, ("mx", "pipelining", "SIZE", "AUTH PLAIN login", "DSN", "STARTTLS"))
    caps = parse_ehlo(reply)
    assert caps.pipelining and caps.size == 0 and caps.dsn and caps.starttls
    assert caps.auth == frozenset({"PLAIN", "LOGIN"}) and not caps.eightbitmime


def test_prepare_normalizes_before_measuring_the_size() -> None:
    message = OutboundMessage("a@a.test", (RecipientSpec("b@b.test"),), b"x\ny\n")
    prepared = prepare(message, Capabilities(esmtp=True, size=6))
    assert isinstance(prepared, OutboundMessage) and prepared.body == b"x\r\ny\r\n"
    assert isinstance(prepare(message, Capabilities(esmtp=True, size=5)), ServerReply)
    assert re.fullmatch(rb"[\x00-\x7f]*", prepared.body)
