"""Parse caches (part headers, BODYSTRUCTURE prefixes): a warm parse gives what a cold one gives."""

from __future__ import annotations

from pathlib import Path

from pillarbox.mime import headers, imapview, parts
from pillarbox.mime.imapview import body_structure
from pillarbox.mime.parts import normalize_line_ends, parse, walk

CORPUS = Path(__file__).parent / "corpus"


def test_warm_parse_equals_cold_parse_over_the_corpus() -> None:
    messages = [normalize_line_ends(p.read_bytes()) for p in sorted(CORPUS.glob("*.eml"))]
    cold = []
    for data in messages:
        headers.clear_caches()
        tree = parse(data)
        cold.append((tree, body_structure(tree), body_structure(tree, extended=False)))
    assert parts._part_headers == {}  # clear_caches empties the caches of other modules too
    for _ in range(2):  # the second pass finds every cacheable part header cached
        for data, (tree, extended, basic) in zip(messages, cold, strict=True):
            warm = parse(data)
            assert warm == tree
            assert body_structure(warm) == extended
            assert body_structure(warm, extended=False) == basic
    assert parts._part_headers


def test_digest_default_is_not_taken_from_the_cache() -> None:
    # RFC 2046 §5.1.5: the same (empty) part header means text/plain in multipart/mixed but
    # message/rfc822 in multipart/digest.
    headers.clear_caches()
    body = b"\r\n--b\r\n\r\nSubject: inner\r\n\r\nhi\r\n--b--\r\n"
    mixed = parse(b"Content-Type: multipart/mixed; boundary=b\r\n" + body)
    digest = parse(b"Content-Type: multipart/digest; boundary=b\r\n" + body)
    assert mixed.children[0].content_type.maintype == "text"
    assert digest.children[0].content_type.subtype == "rfc822"
    assert digest.children[0].message is not None
    assert b'"message" "rfc822"' in body_structure(digest).lower()


def test_multipart_headers_are_not_cached_and_caches_stay_bounded() -> None:
    headers.clear_caches()
    many = b"".join(
        # (a Content-Disposition keeps the header off parts._SIMPLE_HEADER_RE's path)
        b"--b\r\nContent-Type: text/x-%d\r\nContent-Disposition: inline\r\n\r\nx\r\n" % i
        for i in range(parts.PART_HEADER_CACHE_ENTRIES + 10)
    )
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + many + b"--b--\r\n"
    tree = parse(data)
    assert len(tree.children) == parts.PART_HEADER_CACHE_ENTRIES + 10
    assert tree.children[-1].content_type.subtype == f"x-{parts.PART_HEADER_CACHE_ENTRIES + 9}"
    assert 0 < len(parts._part_headers) <= parts.PART_HEADER_CACHE_ENTRIES
    assert 0 < len(headers._content_types) <= headers.CONTENT_TYPE_CACHE_ENTRIES
    assert not any(value[0].maintype == "multipart" for value in parts._part_headers.values())
    structure = body_structure(tree)
    assert structure.count(b'("text" "x-') == parts.PART_HEADER_CACHE_ENTRIES + 10
    assert 0 < len(imapview._leaf_prefixes) <= imapview.LEAF_PREFIX_CACHE_ENTRIES
    # A long part header is parsed but not kept.
    long = (
        b"Content-ID: <x>\r\nContent-Type: text/plain; name=" + b"x" * parts.PART_HEADER_CACHE_BYTES
    )
    headers.clear_caches()
    big = parse(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + long + b"\r\n\r\n")
    assert [part.content_type.subtype for part in walk(big)] == ["mixed", "plain"]
    assert parts._part_headers == {}
