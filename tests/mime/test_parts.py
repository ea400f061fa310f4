"""The part tree: offsets, boundaries, limits and broken input."""

from __future__ import annotations

from pillarbox.mime import parts
from pillarbox.mime.imapview import body_structure
from pillarbox.mime.parts import normalize_line_ends, parse, walk

NESTED = (
    b"Content-Type: multipart/mixed; boundary=out\r\n\r\n"
    b"preamble\r\n--out\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--out\r\nContent-Type: multipart/alternative; boundary=outer-in\r\n\r\n"
    b"--outer-in\r\n\r\nA\r\n--outer-in\r\n\r\nB\r\n--outer-in--\r\n"
    b"--out--\r\nepilogue\r\n"
)


def test_offsets_slice_headers_and_bodies() -> None:
    tree = parse(NESTED)
    first, alt = tree.children
    assert NESTED[first.body_start : first.body_end] == b"hello"
    assert NESTED[first.header_start : first.body_start] == b"Content-Type: text/plain\r\n\r\n"
    assert [NESTED[p.body_start : p.body_end] for p in alt.children] == [b"A", b"B"]


def test_inner_boundary_that_extends_the_outer_one_nests() -> None:
    tree = parse(NESTED)
    assert len(tree.children) == 2
    assert len(tree.children[1].children) == 2


def test_lf_only_message_parses_like_crlf() -> None:
    lf = NESTED.replace(b"\r\n", b"\n")
    tree = parse(lf)
    assert [len(p.children) for p in walk(tree)] == [len(p.children) for p in walk(parse(NESTED))]
    assert lf[tree.children[0].body_start : tree.children[0].body_end] == b"hello"


def test_normalize_line_ends_turns_bare_lf_into_crlf_only() -> None:
    assert normalize_line_ends(b"a\nb\r\nc\rd\n") == b"a\r\nb\r\nc\rd\r\n"


def test_missing_final_boundary_runs_to_the_end() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n"
    tree = parse(msg)
    assert [msg[p.body_start : p.body_end] for p in tree.children] == [b"one", b"two\r\n"]


def test_message_rfc822_is_parsed_with_its_envelope() -> None:
    msg = (
        b"Content-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\n\r\nbody\r\n--x--\r\n"
    )
    tree = parse(msg)
    assert tree.message is not None
    assert tree.message.envelope is not None
    assert tree.message.envelope.subject == b"inner"
    assert len(tree.message.children) == 1


def test_depth_limit_stops_nesting_without_error() -> None:
    depth = parts.MAX_DEPTH + 20
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    msg = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + head + b"--b%d--\r\n" % depth
    tree = parse(msg)
    levels = 0
    part = tree
    while part.children:
        part = part.children[0]
        levels += 1
    assert levels == parts.MAX_DEPTH
    assert body_structure(tree).count(b"(") > parts.MAX_DEPTH


def test_part_limit_bounds_the_tree() -> None:
    count = parts.MAX_PARTS + 100
    body = b"".join(b"--b\r\n\r\nx\r\n" for _ in range(count))
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body + b"--b--\r\n"
    tree = parse(msg)
    assert len(walk(tree)) <= parts.MAX_PARTS + 1


def test_garbage_gives_a_text_plain_tree() -> None:
    tree = parse(bytes(range(256)) * 4)
    assert tree.content_type.maintype == "text"
    assert tree.body_end == 1024


def test_header_only_message_has_an_empty_body() -> None:
    msg = b"Subject: x\r\nFrom: a@b"
    tree = parse(msg)
    assert tree.body_start == tree.body_end == len(msg)


def test_digest_parts_default_to_message_rfc822() -> None:
    msg = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d--\r\n"
    )
    child = parse(msg).children[0]
    assert child.is_message
    assert child.message is not None
    assert child.message.envelope is not None
    assert child.message.envelope.subject == b"one"
