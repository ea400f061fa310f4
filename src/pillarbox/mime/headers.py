"""Header fields: splitting, unfolding, RFC 2047 encoded-words and RFC 2045/2183/2231 values.

Everything takes bytes as stored and never raises on malformed input: a value that cannot be
parsed degrades to a default (RFC 2045 §5.2) or to its raw text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final, TypeVar

# Token and parameter parsing lives in params.py; its public names stay importable from here.
from pillarbox.mime.params import (
    _PARAM_TEXT_RE,
    _SIMPLE_REST,
    _TOKEN,
    _TOKEN_RE,
    MAX_PARAM_SECTIONS,
    Params,
    _parse_params_simple,
    _parse_params_text,
    charset_decode,
    decode_rfc2231,
    merge_continuations,
    param_value,
    parse_params,
    read_quoted,
    read_token,
    skip_cfws,
    to_text,
)

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_HEADER_FIELDS",
    "MAX_PARAM_SECTIONS",
    "MESSAGE_RFC822",
    "TEXT_PLAIN",
    "ContentType",
    "Disposition",
    "HeaderField",
    "Params",
    "clear_caches",
    "decode_rfc2231",
    "decode_words",
    "first_raw",
    "first_value",
    "merge_continuations",
    "param_value",
    "parse_content_type",
    "parse_disposition",
    "parse_language",
    "parse_params",
    "parse_token_value",
    "read_quoted",
    "read_token",
    "register_cache",
    "skip_cfws",
    "split_fields",
    "to_text",
    "unfold",
]

# Bounds on what one header section may cost us; past them the rest is not parsed into fields
# (the bytes stay in place and are still served by BODY[HEADER]).
# RFC 5322 §2.1.1 puts no limit on the number of fields; these are our own safety limits.
MAX_HEADER_FIELDS: Final = 1000
MAX_HEADER_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field as stored: ``start``..``end`` covers its lines including the last EOL."""

    name: bytes  # lower-cased field name, without the colon
    value: bytes  # raw (folded) value after the colon, without the final line end
    start: int
    end: int


# A field's first line and its continuation lines (RFC 5322 §2.2.3: folding is CRLF + WSP).
_FIELD_RE: Final = re.compile(rb"[^\n]*(?:\n[ \t][^\n]*)*(?:\n|\Z)")


class _HeaderFieldSlots:
    """HeaderField's memory layout with plain attribute assignment (see parts._PartSlots)."""

    __slots__ = ("end", "name", "start", "value")

    def __init__(self, name: bytes, value: bytes, start: int, end: int) -> None:
        self.name = name
        self.value = value
        self.start = start
        self.end = end


def _new_field(name: bytes, value: bytes, start: int, end: int) -> HeaderField:
    """``HeaderField(...)`` without a frozen dataclass's ``object.__setattr__`` per field."""
    built = _HeaderFieldSlots(name, value, start, end)
    built.__class__ = HeaderField  # type: ignore[assignment]
    return built  # type: ignore[return-value]  # (typing.cast would cost a call)


def split_fields(buf: bytes, start: int, end: int) -> list[HeaderField]:
    """Split the header section ``buf[start:end]`` into fields (RFC 5322 §2.2).

    A line without a colon is kept as a field with an empty name so that nothing is lost;
    the blank line that ends the section is not a field.
    """
    fields: list[HeaderField] = []
    limit = min(end, start + MAX_HEADER_BYTES)
    pos = start
    # One findall gives the fields one after another (the pattern matches at every line start).
    for found in _FIELD_RE.findall(buf, start, limit):
        if pos >= limit or len(fields) >= MAX_HEADER_FIELDS:
            break
        line = found
        if pos + len(line) == limit < end:  # cut by the window: the field may go on past it
            match = _FIELD_RE.match(buf, pos, end)
            line = b"" if match is None else match.group()
        if not line or line in {b"\r\n", b"\n"}:
            break
        after = pos + len(line)
        colon = line.find(b":")
        stripped = line.rstrip(b"\r\n")
        if colon < 0:
            fields.append(_new_field(b"", stripped, pos, after))
        else:
            name = line[:colon].rstrip(b" \t").lower()
            fields.append(_new_field(name, stripped[colon + 1 :], pos, after))
        pos = after
    return fields


def unfold(value: bytes) -> bytes:
    """RFC 5322 §2.2.3: unfolding removes each CRLF that is followed by WSP.

    Every CRLF and bare LF goes (a CR alone stays); two replaces cost less than a regex sub.
    """
    return value.replace(b"\r\n", b"").replace(b"\n", b"") if b"\n" in value else value


def first_value(fields: list[HeaderField], name: bytes) -> bytes | None:
    """The unfolded, stripped value of the first field called ``name`` (lower case)."""
    for field in fields:
        if field.name == name:
            # Leading white space is not part of the value; trailing is kept (as Dovecot does).
            return unfold(field.value).lstrip(b" \t")
    return None


def first_raw(fields: list[HeaderField], name: bytes) -> bytes | None:
    """The still-folded value of the first field called ``name``, leading white space removed."""
    for field in fields:
        if field.name == name:
            return field.value.lstrip(b" \t")
    return None


# RFC 2047 §2: encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
_WORD_RE: Final = re.compile(rb"=\?([^?*\s]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_WS_ONLY_RE: Final = re.compile(rb"[ \t\r\n]*")


def _decode_payload(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"b", b"B"):
        try:
            return base64.b64decode(text + b"=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return text
    # RFC 2047 §4.2: "_" is space in the Q encoding.
    return _qp_bytes(text.replace(b"_", b" "))


_QP_ESC_RE: Final = re.compile(rb"=([0-9A-Fa-f]{2})")


def _qp_bytes(text: bytes) -> bytes:
    return _QP_ESC_RE.sub(lambda m: bytes([int(m.group(1), 16)]), text)


def decode_words(raw: bytes) -> str:
    """Decode RFC 2047 encoded-words in an unstructured value into text.

    Whitespace between adjacent encoded-words is dropped (RFC 2047 §6.2); adjacent words in the
    same charset are joined before decoding so a character split across words survives.
    """
    if b"=?" not in raw:
        return to_text(raw)
    out: list[str] = []
    pending = b""
    pending_charset = ""
    pos = 0
    for match in _WORD_RE.finditer(raw):
        gap = raw[pos : match.start()]
        charset = match.group(1).decode("ascii", "replace").lower()
        if pos and _WS_ONLY_RE.fullmatch(gap) and pending_charset:
            gap = b""
        if gap or charset != pending_charset:
            if pending:
                out.append(charset_decode(pending, pending_charset))
            pending = b""
            out.append(to_text(gap))
        pending_charset = charset
        pending += _decode_payload(match.group(2), match.group(3))
        pos = match.end()
    if pending:
        out.append(charset_decode(pending, pending_charset))
    out.append(to_text(raw[pos:]))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type (RFC 2045 §5.1).

    ``maintype``/``subtype`` are lower case for comparisons; ``written`` keeps them as the
    header spelled them, which is what IMAP BODYSTRUCTURE reports.
    """

    maintype: str
    subtype: str
    params: Params
    written: tuple[str, str] = ("text", "plain")


class _ContentTypeSlots:
    """ContentType's memory layout with plain attribute assignment (see model._PartSlots):
    _new_content_type fills one and gives it the class ContentType."""

    __slots__ = ("maintype", "params", "subtype", "written")
    maintype: str
    subtype: str
    params: Params
    written: tuple[str, str]


def _new_content_type(main: str, sub: str, params: Params, written: tuple[str, str]) -> ContentType:
    """``ContentType(...)`` without a frozen dataclass's ``object.__setattr__`` per field."""
    built = object.__new__(_ContentTypeSlots)
    built.maintype = main
    built.subtype = sub
    built.params = params
    built.written = written
    built.__class__ = ContentType  # type: ignore[assignment]
    return built  # type: ignore[return-value]  # (typing.cast would cost a call)


# RFC 2045 §5.2: the default for a missing or unparsable Content-Type.
TEXT_PLAIN: Final = ContentType("text", "plain", ())
# RFC 2046 §5.1.5: in multipart/digest the default is message/rfc822.
MESSAGE_RFC822: Final = ContentType("message", "rfc822", (), ("message", "rfc822"))


# RFC 2045 §5.1 ``type "/" subtype`` and parameters without comments, backslashes or line
# breaks (the general path handles those).
_SIMPLE_TYPE_RE: Final = re.compile(
    rb"[ \t]*+(" + _TOKEN + rb"++)[ \t]*+/[ \t]*+(" + _TOKEN + rb"++)(" + _SIMPLE_REST + rb")"
)


_SIMPLE_TYPE_TEXT_RE: Final = re.compile(_SIMPLE_TYPE_RE.pattern.decode("ascii"))


def _decoded(value: bytes) -> str | None:
    """``value`` as UTF-8 text, or None. Split at ASCII delimiters, valid UTF-8 gives valid
    UTF-8 pieces, so parsing the text gives what decoding each token (``to_text``) gives."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


# Parsed Content-Type values by their bytes. A few values ("text/plain; charset=utf-8") make
# up most leaf parts; a multipart's value carries a boundary unique to its message, so it is
# not kept. Our own bounds on the cache: entries (emptied when full) and bytes per value.
CONTENT_TYPE_CACHE_ENTRIES: Final = 512
CONTENT_TYPE_CACHE_VALUE_BYTES: Final = 256
_content_types: dict[bytes, ContentType] = {}


_caches: list[dict[Any, Any]] = [_content_types]

_K = TypeVar("_K")
_V = TypeVar("_V")


def register_cache(cache: dict[_K, _V]) -> dict[_K, _V]:
    """Have :func:`clear_caches` empty ``cache`` too (the parse caches of other modules)."""
    _caches.append(cache)
    return cache


def clear_caches() -> None:
    """Forget cached parse results (benchmarks use it to measure parsing from scratch)."""
    for cache in _caches:
        cache.clear()


def parse_content_type(value: bytes | None, default: ContentType = TEXT_PLAIN) -> ContentType:
    """Parse a Content-Type value; RFC 2045 §5.2 defaults when it is absent or broken."""
    if value is None:
        return default
    known = _content_types.get(value)
    if known is not None:
        return known
    parsed = _text_content_type(value) or _bytes_content_type(value)
    if parsed.maintype != "multipart" and len(value) <= CONTENT_TYPE_CACHE_VALUE_BYTES:
        if len(_content_types) >= CONTENT_TYPE_CACHE_ENTRIES:
            _content_types.clear()
        _content_types[value] = parsed
    return parsed


# RFC 2046 §5.1.1: the usual multipart value, ``multipart/subtype; boundary=...`` and nothing
# more (no "*", comment, backslash or line break in the boundary): what the simple path gives
# for it, without the parameter findall.
_NO_STAR_TOKEN: Final = _TOKEN.decode("ascii").replace("\\x7f]", "\\x7f*]")


def _any_case(word: str) -> str:
    """A pattern for ``word`` in any ASCII case, as classes ("[mM][uU]..."): no IGNORECASE,
    which would make sre fold every character the token classes look at."""
    return "".join(f"[{char.lower()}{char.upper()}]" for char in word)


_MULTIPART_TEXT_RE: Final = re.compile(
    r"[ \t]*+(" + _any_case("multipart") + r")[ \t]*+/[ \t]*+(" + _TOKEN.decode("ascii") + r"++)"
    r"[ \t]*+;[ \t]*+(" + _any_case("boundary") + r")[ \t]*+=[ \t]*+"
    r'(?:"([^"*(\\\r\n]*+)"|(' + _NO_STAR_TOKEN + r"++))[ \t]*+"
)


def _text_content_type(value: bytes) -> ContentType | None:
    """The Content-Type ``value`` when it is UTF-8 and takes a fast path (no comment,
    backslash or line break in its parameters), else None."""
    try:
        # Split at ASCII delimiters, valid UTF-8 gives valid UTF-8 pieces, so parsing the text
        # gives what decoding each token (``to_text``) gives.
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    multipart = _MULTIPART_TEXT_RE.fullmatch(text)
    if multipart is not None:
        main, sub, name, quoted, plain = multipart.groups()
        params: Params = ((name, quoted or plain or ""),)
        return _new_content_type("multipart", sub.lower(), params, (main, sub))
    simple_text = _SIMPLE_TYPE_TEXT_RE.fullmatch(text)
    if simple_text is None:
        return None
    main, sub, rest = simple_text.groups()
    params = ()
    if rest:
        params = tuple(_PARAM_TEXT_RE.findall(rest))
        if "*" in rest:
            params = merge_continuations(params)
    return _new_content_type(main.lower(), sub.lower(), params, (main, sub))


def _parse_content_type(value: bytes) -> ContentType:
    """A Content-Type value (not cached): the text fast paths, else the bytes ones."""
    return _text_content_type(value) or _bytes_content_type(value)


def _bytes_content_type(value: bytes) -> ContentType:
    """A Content-Type value that is not UTF-8 or has comments, quoted pairs or folding."""
    simple = _SIMPLE_TYPE_RE.fullmatch(value)
    if simple is not None:
        maintype, subtype, rest = simple.groups()
        try:
            main, sub = maintype.decode(), subtype.decode()
        except UnicodeDecodeError:
            main, sub = to_text(maintype), to_text(subtype)
        params = _parse_params_simple(rest) if rest else ()
        return ContentType(main.lower(), sub.lower(), params, (main, sub))
    pos = skip_cfws(value, 0)
    maintype, pos = read_token(value, pos)
    pos = skip_cfws(value, pos)
    if not maintype or pos >= len(value) or value[pos] != 0x2F:  # "/"
        return TEXT_PLAIN
    pos = skip_cfws(value, pos + 1)
    subtype, pos = read_token(value, pos)
    if not subtype:
        return TEXT_PLAIN
    params = parse_params(value, pos)
    main, sub = to_text(maintype), to_text(subtype)
    return ContentType(main.lower(), sub.lower(), params, (main, sub))


@dataclass(frozen=True, slots=True)
class Disposition:
    """A parsed Content-Disposition (RFC 2183 §2)."""

    kind: str
    params: Params


class _DispositionSlots:
    """Disposition's memory layout with plain attribute assignment (see model._PartSlots)."""

    __slots__ = ("kind", "params")
    kind: str
    params: Params


def _new_disposition(kind: str, params: Params) -> Disposition:
    """``Disposition(...)`` without a frozen dataclass's ``object.__setattr__`` per field."""
    built = object.__new__(_DispositionSlots)
    built.kind = kind
    built.params = params
    built.__class__ = Disposition  # type: ignore[assignment]
    return built  # type: ignore[return-value]  # (typing.cast would cost a call)


# RFC 2183 §2 disposition type and parameters in the simple case (see _SIMPLE_TYPE_RE).
_SIMPLE_DISPOSITION_RE: Final = re.compile(rb"[ \t]*+(" + _TOKEN + rb"++)(" + _SIMPLE_REST + rb")")


_SIMPLE_DISPOSITION_TEXT_RE: Final = re.compile(_SIMPLE_DISPOSITION_RE.pattern.decode("ascii"))


def parse_disposition(value: bytes | None) -> Disposition | None:
    if value is None:
        return None
    text = _decoded(value)
    if text is not None:
        simple_text = _SIMPLE_DISPOSITION_TEXT_RE.fullmatch(text)
        if simple_text is not None:
            kind_text, rest_text = simple_text.groups()
            return _new_disposition(kind_text, _parse_params_text(rest_text) if rest_text else ())
    simple = _SIMPLE_DISPOSITION_RE.fullmatch(value)
    if simple is not None:
        kind, rest = simple.groups()
        return Disposition(to_text(kind), _parse_params_simple(rest) if rest else ())
    pos = skip_cfws(value, 0)
    kind, pos = read_token(value, pos)
    if not kind:
        return None
    return Disposition(to_text(kind), parse_params(value, pos))


def parse_token_value(value: bytes | None) -> str | None:
    """A single token such as Content-Transfer-Encoding (RFC 2045 §6.1), comments removed."""
    if value is None:
        return None
    simple = _TOKEN_RE.match(value)  # no leading white space or comment: skip_cfws is a no-op
    if simple is not None:
        return to_text(simple.group())
    token, _ = read_token(value, skip_cfws(value, 0))
    return to_text(token) if token else None


def parse_language(value: bytes | None) -> tuple[str, ...] | None:
    """Content-Language (RFC 3282 §2): a comma-separated list of language tags."""
    if value is None:
        return None
    tags: list[str] = []
    for piece in value.split(b","):
        token, _ = read_token(piece, skip_cfws(piece, 0))
        if token:
            tags.append(to_text(token))
    return tuple(tags) or None
