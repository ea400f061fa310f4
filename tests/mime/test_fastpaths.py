"""The fast paths give what the general parsers give: header scan, parameters, addresses, parts."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pillarbox.mime import address, headers, imapview, model, params, parts, scan
from pillarbox.mime.headers import TEXT_PLAIN, ContentType, parse_content_type, parse_disposition
from pillarbox.mime.imapview import address_list
from pillarbox.mime.parts import Part, parse

HEADER_PIECES = st.sampled_from(
    [
        b"Content-Type",
        b"content-type",
        b"CONTENT-TRANSFER-ENCODING",
        b"Content-ID",
        b"Content-Disposition",
        b"Content-Language",
        b"Content-Location",
        b"Content-MD5",
        b"Content-Description",
        b"Content-Type-X",
        b"From",
        b"To",
        b"Cc",
        b"Subject",
        b"Message-ID",
        b"In-Reply-To",
        b"X-Other",
        b": ",
        b":",
        b" :",
        b"\r\n",
        b"\n",
        b"\r\n ",
        b"\r\n\t",
        b" ",
        b"\r",
        b"text/plain; charset=utf-8",
        b"a@b.example",
        b"\xc3\xa9",
    ]
)
HEADERS = st.lists(HEADER_PIECES, max_size=30).map(b"".join)


@settings(max_examples=300, deadline=1000)
@given(HEADERS, st.sampled_from([b"", b"--b\r\n", b"x\n"]), st.booleans())
def test_header_scan_matches_split_fields(header: bytes, before: bytes, message: bool) -> None:
    buf = before + header + b"\r\n\r\nbody"
    start = len(before)
    end = parts._header_end(buf, start, len(buf))  # as the parser cuts the header
    general = scan._from_split_fields(buf, start, end)
    pattern = scan._MESSAGE_FIELD_RE if message else scan._PART_FIELD_RE
    expected = {
        name: value
        for name, value in general.items()
        if pattern.fullmatch(b"\n" + name + b":") is not None
    }
    assert scan.wanted_fields(buf, start, end, message) == expected


PARAM_PIECES = st.sampled_from(
    [
        *(b";", b"=", b'"', b" ", b"\t", b"name", b"charset", b"*", b"*0", b"*1*"),
        *(b"utf-8''a%20b", b"x/y", b"a b", b"\xc3\xa9", b"\xff", b"(", b")", b"\\", b"\r\n "),
        *(b"'", b"/"),
    ]
)
PARAMS = st.lists(PARAM_PIECES, max_size=16).map(b"".join)


@settings(max_examples=300, deadline=1000)
@given(PARAMS)
@example(b'; name="a;b" ; x=y ;; z = "unclosed')
def test_parameter_fast_path_matches_the_general_loop(value: bytes) -> None:
    assert headers.parse_params(value, 0) == params._parse_params_general(value, 0)


@settings(max_examples=200, deadline=1000)
@given(st.sampled_from([b"text/plain", b"Multipart/Mixed ", b"a/b", b"x /y", b"text/"]), PARAMS)
def test_content_type_fast_path_matches_the_general_parse(head: bytes, rest: bytes) -> None:
    value = head + rest
    fast = parse_content_type(value)
    # A comment in front forces the general path; it must change nothing else.
    slow = parse_content_type(b"() " + value)
    assert fast == slow
    assert parse_disposition(value) == parse_disposition(b"()" + value)


MULTIPART_HEADS = st.sampled_from(
    [b"multipart/mixed", b" Multipart / Alternative ", b"MULTIPART/x", b"multipart/", b"multip"]
)
BOUNDARY_PIECES = st.sampled_from(
    [
        *(b";", b" ", b"\t", b"=", b'"', b"boundary", b"BOUNDARY", b"Boundary*", b"*", b"*0"),
        *(b"abc", b"----=_Part_1.2", b"a b", b"\xc3\xa9", b"\xff", b"(", b"\\", b"\r\n ", b"'"),
    ]
)


@settings(max_examples=300, deadline=1000)
@given(MULTIPART_HEADS, st.lists(BOUNDARY_PIECES, max_size=10).map(b"".join))
@example(b"multipart/mixed", b'; boundary="----=_Part_1.2" ')
@example(b"Multipart/Mixed", b"; Boundary = abc")
@example(b"multipart/mixed", b'; boundary=""')
def test_multipart_fast_path_matches_the_general_parse(head: bytes, rest: bytes) -> None:
    value = head + rest
    assert headers._parse_content_type(value) == headers._parse_content_type(b"() " + value)


def test_usual_multipart_values_take_their_fast_path() -> None:
    parsed = headers._text_content_type(b'Multipart/Related; BOUNDARY="b 1"')
    assert parsed == ContentType(
        "multipart", "related", (("BOUNDARY", "b 1"),), ("Multipart", "Related")
    )
    assert headers._MULTIPART_TEXT_RE.fullmatch("multipart/mixed; boundary=x") is not None
    assert headers._MULTIPART_TEXT_RE.fullmatch("multipart/mixed; boundary*=x") is None
    assert headers._MULTIPART_TEXT_RE.fullmatch("multıpart/mixed; boundary=x") is None


ADDRESS_PIECES = st.sampled_from(
    [
        *(b"John", b"Q.", b"Smith", b"=?utf-8?q?J=C3=BCrgen?=", b"\xc3\xa9", b'"Doe, J"', b'""'),
        *(b"<", b">", b"@", b",", b" ", b"\r\n ", b"a@b.example", b"<x.y@z.example>", b":"),
        *(b";", b"(c)", b"\\", b"[1.2.3.4]", b'"a . b"'),
    ]
)
ADDRESSES = st.lists(ADDRESS_PIECES, max_size=12).map(b"".join)


@settings(max_examples=300, deadline=1000)
@given(ADDRESSES)
@example(b'"a . b" <x@y.example>, Jo Q <q@r>')
def test_simple_address_lists_match_the_general_parser(raw: bytes) -> None:
    simple = address.simple_mailboxes(raw)
    general = tuple(address._Parser(address.tokenize(raw)).address_list())
    if simple is not None:
        assert general == tuple(address.Address(n, None, local, host) for n, local, host in simple)
    assert address.parse_address_list(raw) == general


def test_common_address_lists_take_the_fast_path() -> None:
    raw = b'Alice Example <alice@example.org>, "Bob B." <bob@example.net>,\r\n carol@example.com'
    assert address.simple_mailboxes(raw) == [
        (b"Alice Example", b"alice", b"example.org"),
        (b"Bob B.", b"bob", b"example.net"),
        (None, b"carol", b"example.com"),
    ]
    assert address_list(raw) == (
        b'(("Alice Example" NIL "alice" "example.org")("Bob B." NIL "bob" "example.net")'
        b'(NIL NIL "carol" "example.com"))'
    )


def test_fast_part_construction_equals_the_dataclass() -> None:
    values = (0, 10, 20, TEXT_PLAIN, "7bit", b"<id>", None, None, None, ("en",), None, 2, (), None)
    built = model._new_part(*values, None)
    assert type(built) is Part
    assert built == Part(*values, None)
    assert hash(built) == hash(Part(*values, None))
    assert sorted(field.name for field in fields(Part)) == sorted(model._PartSlots.__slots__)


def test_prefix_boundaries_of_different_lengths_nest() -> None:
    msg = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n"
        b"Content-Type: multipart/mixed; boundary=abcd\r\n\r\n--abcd\r\n\r\ninner\r\n"
        b"--abcd--\r\n--ab\r\n\r\nsecond\r\n--ab--\r\n"
    )
    tree = parse(msg)
    assert len(tree.children) == 2
    assert len(tree.children[0].children) == 1
    inner = tree.children[0].children[0]
    assert msg[inner.body_start : inner.body_end] == b"inner"
    second = tree.children[1]
    assert msg[second.body_start : second.body_end] == b"second"


def _general_string_for_humans(value: bytes) -> bytes:
    """string_for_humans without its fast path (white-space runs made one space, trimmed)."""
    clean = re.sub(rb"[ \t\r\n]+", b" ", value.replace(b"\x00", b"\x80")).strip(b" ")
    plain = re.search(rb"[\r\n\x80-\xff\x00]", value) is None
    if clean == value and plain and b'"' not in value and b"\\" not in value:
        return b'"' + value + b'"'
    return b'""' if not clean else imapview.literal(clean)


@settings(max_examples=300, deadline=1000)
@given(ADDRESSES)
@example(b'"" <a@b.example>, <c@d.example> ,"x . y" <e@f>,')
def test_plain_address_lists_match_the_simple_parser(raw: bytes) -> None:
    plain = imapview._plain_address_list(raw)
    if plain is not None:
        simple = address.simple_mailboxes(raw)
        assert simple is not None
        assert plain == b"(" + b"".join(imapview._simple_address(*item) for item in simple) + b")"
    assert imapview.string_for_humans(raw) == _general_string_for_humans(raw)


def test_common_address_lists_take_the_plain_path() -> None:
    raw = b'Alice Example <alice@example.org>, "Bob B." <bob@example.net>,\r\n carol@example.com'
    assert imapview._plain_address_list(raw) == address_list(raw)
    assert imapview._plain_address_list(b"Jo  Doe <j@x>") is None  # two spaces: general path


def test_content_type_cache_keeps_leaf_values_only() -> None:
    headers.clear_caches()
    leaf = parse_content_type(b"text/plain; charset=utf-8")
    assert leaf == ContentType("text", "plain", (("charset", "utf-8"),), ("text", "plain"))
    assert parse_content_type(b"text/plain; charset=utf-8") is leaf
    # A boundary is unique to its message: caching it would only push common values out.
    multipart = parse_content_type(b"multipart/mixed; boundary=x")
    assert parse_content_type(b"multipart/mixed; boundary=x") is not multipart
    for i in range(headers.CONTENT_TYPE_CACHE_ENTRIES + 10):
        assert parse_content_type(b"text/x-%d" % i).subtype == f"x-{i}"
    assert len(headers._content_types) <= headers.CONTENT_TYPE_CACHE_ENTRIES


def test_split_fields_bounds() -> None:
    many = b"".join(b"X-%d: v\r\n" % i for i in range(headers.MAX_HEADER_FIELDS + 5)) + b"\r\n"
    fields = headers.split_fields(many, 0, len(many))
    assert len(fields) == headers.MAX_HEADER_FIELDS
    assert [f.name for f in fields[:2]] == [b"x-0", b"x-1"]
    # A field that starts inside the byte window is kept whole, folded lines included.
    long = b"A: " + b"x" * (headers.MAX_HEADER_BYTES - 8) + b"\r\n more\r\nB: y\r\n\r\n"
    first, *rest = headers.split_fields(long, 0, len(long))
    assert first.value.endswith(b"\r\n more")
    assert first.end == long.index(b"B: y")
    assert rest == []  # B starts past the window


def test_fast_builders_have_the_dataclass_layouts() -> None:
    # Each builder class must have exactly the slots of the frozen dataclass it turns into.
    pairs = [
        (model._PartSlots, Part),
        (headers._ContentTypeSlots, ContentType),
        (headers._HeaderFieldSlots, headers.HeaderField),
        (headers._DispositionSlots, headers.Disposition),
    ]
    for builder, cls in pairs:
        assert sorted(builder.__slots__) == sorted(field.name for field in fields(cls))
    built = parse_content_type(b"Text/Plain; charset=utf-8")
    assert type(built) is ContentType
    assert hash(built) == hash(
        ContentType("text", "plain", (("charset", "utf-8"),), ("Text", "Plain"))
    )
    disposition = parse_disposition(b'attachment; filename="a b.pdf"')
    assert type(disposition) is headers.Disposition
    assert disposition == headers.Disposition("attachment", (("filename", "a b.pdf"),))
    assert hash(disposition) == hash(headers.Disposition("attachment", (("filename", "a b.pdf"),)))
    field = headers.split_fields(b"Subject: hi\r\n\r\n", 0, 15)[0]
    assert field == headers.HeaderField(b"subject", b" hi", 0, 13)


@settings(max_examples=300, deadline=None)
@given(header=HEADERS, before=st.sampled_from([b"", b"X: y\r\n\r\n"]))
def test_lazy_envelope_equals_the_one_from_split_fields(header: bytes, before: bytes) -> None:
    buf = before + header + b"\r\n\r\nbody"
    start = len(before)
    end = parts._header_end(buf, start, len(buf))
    lazy = model.EnvelopeFields.from_header(buf, start, end)
    first: dict[bytes, headers.HeaderField] = {}
    for field in headers.split_fields(buf, start, end):
        first.setdefault(field.name, field)
    eager = model.envelope_fields(first)
    assert lazy == eager
    assert hash(lazy) == hash(eager)
    assert repr(lazy) == repr(eager)
    assert lazy._source is None  # found once, then the message bytes are let go
    assert imapview.envelope(lazy) == imapview.envelope(eager)


def test_envelope_fields_read_like_a_record() -> None:
    env = model.EnvelopeFields(subject=b"hi", message_id=b"<a@b>")
    assert (env.subject, env.message_id, env.date, env.from_) == (b"hi", b"<a@b>", None, None)
    assert env.values()[1] == b"hi"
    assert env == model.EnvelopeFields(subject=b"hi", message_id=b"<a@b>")
    assert env != model.EnvelopeFields(subject=b"ho", message_id=b"<a@b>")
    assert "subject=b'hi'" in repr(env)
    tree = parse(b"Subject: lazy\r\nFrom: a@b.example\r\n\r\nbody\r\n")
    assert tree.envelope is not None
    assert tree.envelope.subject == b"lazy"
    assert tree.envelope.from_ == b"a@b.example"


PARAM_WORDS = st.sampled_from(["charset", "Charset", "utf-8", "a b", 'a"b', "a\\b", "é", "\t", ""])


@given(st.lists(st.tuples(PARAM_WORDS, PARAM_WORDS), min_size=1, max_size=4), st.booleans())
def test_plain_parameter_lists_are_quoted_as_one_by_one(
    pairs: list[tuple[str, str]], default_charset: bool
) -> None:
    expected = [imapview._quote(name) + b" " + imapview._quote(value) for name, value in pairs]
    if default_charset and not any(name.lower() == "charset" for name, _ in pairs):
        expected.append(imapview.DEFAULT_CHARSET)
    assert imapview._params(tuple(pairs), default_charset) == b"(" + b" ".join(expected) + b")"


@settings(max_examples=300, deadline=1000)
@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b"A: b", b" "]), max_size=20).map(b"".join))
def test_header_ends_at_the_first_blank_line(data: bytes) -> None:
    buf = b"X" + data
    crlf = buf.find(b"\n\r\n")
    lf = buf.find(b"\n\n", 0, len(buf) if crlf < 0 else crlf + 1)
    expected = lf + 2 if lf >= 0 else (len(buf) if crlf < 0 else crlf + 3)
    assert parts._header_end(buf, 0, len(buf)) == expected
    # A body part's header (after a delimiter line), as the parser cuts it.
    body_part = b"--b\r\n" + data
    builder = parts._TreeBuilder(body_part)
    cut = builder.header_end(5, len(body_part), parts._NO_BOUNDS)[0]
    assert cut == parts._header_end(body_part, 5, len(body_part))


SIMPLE_VALUE_PIECES = st.sampled_from(
    [
        *(b"multipart/mixed", b"Multipart / Alternative", b"text/plain", b"multipart/", b"x"),
        *(b";", b"=", b'"', b" ", b"\t", b"\r\n ", b"\r\n\t", b"\n ", b"\r", b"boundary"),
        *(b"BOUNDARY", b"b*", b"abc", b"----=_Part_1.2", b"\xc3\xa9", b"\xff", b"(", b"\\"),
        *(b"multipart/mixed; boundary=", b"Multipart/X;\r\n\tBOUNDARY = ", b'"=_a b"'),
    ]
)
SIMPLE_HEADERS = st.tuples(
    st.sampled_from([b"Content-Type", b"content-TYPE", b"Content-Typo", b"Content-ID"]),
    st.sampled_from([b":", b": ", b" :\t"]),
    st.one_of(
        st.lists(SIMPLE_VALUE_PIECES, max_size=12).map(b"".join),
        st.tuples(  # the usual multipart values, sometimes with more after them
            st.sampled_from([b"multipart/mixed; boundary=", b"Multipart/X;\r\n\tBOUNDARY = "]),
            st.sampled_from([b"abc", b'"=_a b"', b'""', b"a*", b'"\xc3\xa9"', b'"(x)"', b"d "]),
            st.lists(SIMPLE_VALUE_PIECES, max_size=2).map(b"".join),
        ).map(b"".join),
    ),
    st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b" \r\n"]),
    st.sampled_from(
        [
            *(b"", b"Content-Transfer-Encoding: base64\r\n", b"content-transfer-encoding:7BIT\n"),
            *(b"Content-Transfer-Encoding: x y \r\n", b"Content-ID: <a>\r\n", b"--b\r\n"),
        ]
    ),
    st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b" \r\n"]),
).map(b"".join)


@settings(max_examples=400, deadline=1000)
@given(SIMPLE_HEADERS)
@example(b'Content-Type: multipart/mixed;\r\n\tboundary="----=_Part_1.2"\r\n\r\n')
@example(b"content-type:Multipart/X; Boundary=abc\n\n")
@example(b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n")
@example(b"Content-Type:\r\n text/plain;\r\n\tboundary=abc\r\n\r\n")
def test_simple_part_header_path_matches_the_general_one(header: bytes) -> None:
    buf = b"--b\r\n" + header + b"body\r\n--b--\r\n"
    simple = parts._SIMPLE_HEADER_RE.match(buf, 5)
    if simple is None:
        return
    headers.clear_caches()
    fast = parts._simple_content(*simple.groups())
    builder = parts._TreeBuilder(buf)
    body_start, stop, _ = builder.header_end(
        5, len(buf), parts._with_boundary(parts._NO_BOUNDS, b"b")
    )
    assert (simple.end(), None) == (body_start, stop)
    headers.clear_caches()
    general = parts._content(scan.content_fields(buf, 5, body_start), TEXT_PLAIN)
    assert fast == general


def test_usual_part_headers_take_the_simple_path() -> None:
    header = b'Content-Type: multipart/alternative;\r\n boundary="=_x"\r\n\r\n'
    simple = parts._SIMPLE_HEADER_RE.match(header)
    assert simple is not None and simple.group(1) == b"multipart"
    ctype = parts._simple_content(*simple.groups())[0]
    assert ctype == ContentType(
        "multipart", "alternative", (("boundary", "=_x"),), ("multipart", "alternative")
    )
    leaf = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    simple = parts._SIMPLE_HEADER_RE.match(leaf)
    assert simple is not None and simple.end() == len(leaf)
    assert parts._simple_content(*simple.groups())[1] == "base64"


def test_corpus_trees_are_the_same_without_the_simple_header_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
    messages = [parts.normalize_line_ends(path.read_bytes()) for path in corpus]
    headers.clear_caches()
    fast = [parse(data) for data in messages]
    monkeypatch.setattr(parts, "_SIMPLE_HEADER_RE", re.compile(rb"(?!)"))  # never matches
    headers.clear_caches()
    assert [parse(data) for data in messages] == fast
