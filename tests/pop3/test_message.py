"""Byte-stuffing and TOP extraction (RFC 1939 §3, §7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.pop3.message import (
    MAX_DOTS_VISITED,
    dot_stuff,
    dot_unstuff,
    header_length,
    to_crlf,
    top_of,
)

CRLF = b"\r\n"


@pytest.mark.parametrize(
    ("body", "wire"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b".a\r\n.b\r\nc.\r\n", b"..a\r\n..b\r\nc.\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.b\nc", b"a\r\n..b\r\nc\r\n.\r\n"),
        (b"x\r\n..y\r\n", b"x\r\n...y\r\n.\r\n"),
    ],
)
def test_dot_stuff(body: bytes, wire: bytes) -> None:
    assert dot_stuff(body) == wire


def test_dot_stuff_puts_the_status_line_in_front() -> None:
    status = b"+OK 9 octets\r\n"
    assert dot_stuff(b".a\r\n.b\r\n", status) == status + b"..a\r\n..b\r\n.\r\n"
    assert dot_stuff(b"a\r\nb", status) == status + b"a\r\nb\r\n.\r\n"
    assert dot_stuff(b"", status) == status + b".\r\n"


@pytest.mark.parametrize("lines", [3, MAX_DOTS_VISITED // 2, MAX_DOTS_VISITED + 1, 500])
@pytest.mark.parametrize("line_end", [CRLF, b"\n"])
def test_dot_stuff_is_the_same_with_few_dots_and_with_many(lines: int, line_end: bytes) -> None:
    # Two dots a line, one of them leading: below and above the dots visited one by one.
    body = b"".join(b".%d ends.%s" % (n, line_end) for n in range(lines))
    wire = b"".join(b"..%d ends.\r\n" % n for n in range(lines)) + b".\r\n"
    assert dot_stuff(body, b"+OK\r\n") == b"+OK\r\n" + wire
    unended = b"x" + body[: -len(line_end)]  # no leading dot, no final line end
    assert dot_stuff(unended, b"+OK\r\n") == b"+OK\r\nx" + wire[1:]


def test_to_crlf_leaves_crlf_text_alone_and_fixes_bare_lf() -> None:
    data = b"a\r\nb\r\n"
    assert to_crlf(data) is data
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"


@given(
    st.binary(max_size=300)
    | st.lists(st.sampled_from([b".", b"\r\n", b"\n", b"a", b"\r"])).map(b"".join)
)
def test_stuffing_round_trips_and_terminates_only_at_the_end(body: bytes) -> None:
    wire = dot_stuff(body)
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    # Clients split lines on CRLF or, leniently, on LF (dropping one CR): either way the
    # first line that is exactly "." must be the terminator.
    for separator in (CRLF, b"\n"):
        lines = [line.removesuffix(b"\r") for line in wire.split(separator)]
        assert lines.index(b".") == len(lines) - 2
    expected = to_crlf(body)
    if expected and not expected.endswith(CRLF):
        expected += CRLF
    degenerate = body.count(b"\r") == body.count(b"\n") != body.count(CRLF)
    if not degenerate:  # see dot_stuff: equal numbers of bare CRs and LFs are left alone
        assert dot_unstuff(wire) == expected


def test_dot_unstuff_refuses_unterminated_input() -> None:
    with pytest.raises(ValueError, match="not terminated"):
        dot_unstuff(b"a\r\n")
    with pytest.raises(ValueError, match="own"):
        dot_unstuff(b"a.\r\n")


MESSAGE = b"From: a@example.test\r\nSubject: hi\r\n\r\nbody 1\r\nbody 2\r\nbody 3\r\n"
HEADERS = b"From: a@example.test\r\nSubject: hi\r\n\r\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (0, HEADERS),
        (1, HEADERS + b"body 1\r\n"),
        (2, HEADERS + b"body 1\r\nbody 2\r\n"),
        (3, MESSAGE),
        (4, MESSAGE),
        (10**30, MESSAGE),
    ],
)
def test_top_counts_body_lines(lines: int, expected: bytes) -> None:
    assert top_of(MESSAGE, lines) == expected


def test_top_of_a_message_without_body_is_the_whole_message() -> None:
    assert top_of(b"Subject: x\r\n", 0) == b"Subject: x\r\n"
    assert top_of(b"Subject: x\r\n", 5) == b"Subject: x\r\n"
    assert top_of(b"Subject: x\r\n\r\n", 3) == b"Subject: x\r\n\r\n"


def test_top_of_a_message_without_headers() -> None:
    assert top_of(b"\r\nbody\r\nmore\r\n", 0) == b"\r\n"
    assert top_of(b"\r\nbody\r\nmore\r\n", 1) == b"\r\nbody\r\n"


def test_top_with_lf_only_line_ends() -> None:
    message = b"Subject: lf\n\nline 1\nline 2\n"
    assert top_of(message, 0) == b"Subject: lf\n\n"
    assert top_of(message, 1) == b"Subject: lf\n\nline 1\n"
    assert top_of(b"\nbody\n", 0) == b"\n"
    assert dot_stuff(top_of(message, 1)) == b"Subject: lf\r\n\r\nline 1\r\n.\r\n"


def test_top_keeps_a_last_line_without_line_end() -> None:
    assert top_of(b"S: x\r\n\r\nonly", 1) == b"S: x\r\n\r\nonly"
    assert top_of(b"S: x\r\n\r\nonly", 0) == b"S: x\r\n\r\n"


def test_header_length_finds_the_first_empty_line() -> None:
    assert header_length(b"A: 1\r\nB: 2\r\n\r\nC: not a header\r\n\r\n") == 14
    assert header_length(b"A: 1\r\n\nbody") == 7


def test_top_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="negative"):
        top_of(MESSAGE, -1)


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=50))
def test_top_is_a_prefix_that_includes_the_headers(message: bytes, lines: int) -> None:
    top = top_of(message, lines)
    assert message.startswith(top)
    assert len(top) >= min(header_length(message), len(message))
    body_lines = message[header_length(message) : len(top)].count(b"\n")
    assert body_lines <= lines
