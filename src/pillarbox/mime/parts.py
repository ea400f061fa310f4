"""One-pass MIME part tree with byte offsets (RFC 2045, RFC 2046, RFC 5322, RFC 6532).

:func:`parse` turns a stored message (CRLF or LF line ends) into a tree of :class:`Part`
records. Each part keeps the offsets of its header and body, so any IMAP section is a slice of
the stored bytes. The parser never raises: broken boundaries, missing headers and garbage still
give a tree. Work is bounded by :data:`MAX_DEPTH` and :data:`MAX_PARTS`; past them the rest of
the bytes stays inside the enclosing part as opaque body text.
"""

from __future__ import annotations

import re
from typing import Final

from pillarbox.mime.headers import (
    MAX_HEADER_BYTES,
    MESSAGE_RFC822,
    TEXT_PLAIN,
    ContentType,
    Disposition,
    Params,
    _new_content_type,
    parse_content_type,
    parse_disposition,
    parse_language,
    parse_token_value,
    register_cache,
    unfold,
)
from pillarbox.mime.model import (
    MESSAGE_SUBTYPES,
    EnvelopeFields,
    Part,
    _new_part,
    envelope_fields,
)
from pillarbox.mime.scan import content_fields

__all__ = [
    "IDENTITY_ENCODINGS",
    "MAX_DEPTH",
    "MAX_PARTS",
    "MESSAGE_SUBTYPES",
    "EnvelopeFields",
    "Part",
    "envelope_fields",
    "normalize_line_ends",
    "parse",
    "walk",
]

# Our own bounds (RFC 2046 sets none): nesting of multipart/message parts and parts per message.
MAX_DEPTH: Final = 50
MAX_PARTS: Final = 5000
# RFC 2045 §6.4: only these encodings may wrap a message/* or multipart/* body; with any other
# the encapsulated message is opaque and not parsed.
IDENTITY_ENCODINGS: Final = frozenset({"7bit", "8bit", "binary"})
# An inner part's line count is reused, rather than its body counted again, from this size
# up: below it one more count call costs more than counting the bytes. Only bodies from
# REUSE_COUNTS_BYTES up look at their inner parts at all (smaller ones are counted in one go).
RECOUNT_BYTES: Final = 512
REUSE_COUNTS_BYTES: Final = 1024


# RFC 5322 §2.1: the header ends at the first empty line (CRLF, or a bare LF as stored).
_BLANK_LINE_RE: Final = re.compile(rb"\n\r?\n")


def _header_end(buf: bytes, start: int, end: int) -> int:
    """Offset just past the blank line that ends the header at ``start`` (or ``end``)."""
    if start < end:  # an empty header: the blank line comes first
        first = buf[start]
        if first == 0x0A:
            return start + 1
        if first == 0x0D and start + 2 <= end and buf[start + 1] == 0x0A:
            return start + 2
    # The first "\n\r\n" or "\n\n": one regex search costs less than two bytes.find calls
    # over the header (each short-needle find steps only two or three bytes at a time).
    blank = _BLANK_LINE_RE.search(buf, start, end)
    return end if blank is None else blank.end()


# A delimiter line found while scanning. Plain tuples (a NamedTuple costs several times more
# to build, and the parser builds one or two per part):
#   part_end: where the part before it ends (the CRLF before the delimiter belongs to the
#     delimiter, RFC 2046 §5.1.1)
#   bound: position of the boundary in the active list (0 = outermost)
#   close: whether it is a close-delimiter ("--" after the boundary)
#   line_end: offset just past the delimiter line
_Stop = tuple[int, int, bool, int]  # (part_end, bound, close, line_end)

# The active boundaries, outermost first, as a delimiter line is matched against them: longest
# first, the innermost first among equals (as Dovecot does), so a line "--abc123" closes
# "abc123" even when an inner "abc" is active.
#   bounds: the boundaries, outermost first
#   positions: boundary -> innermost position in ``bounds``
#   lengths: the distinct boundary lengths, longest first
#   delimiter: when only one boundary value is active, "\n--" + boundary (one bytes.find)
#   innermost: its position in ``bounds`` then
_Bounds = tuple[tuple[bytes, ...], dict[bytes, int], tuple[int, ...], bytes | None, int]

_NO_BOUNDS: Final[_Bounds] = ((), {}, (), None, 0)
# TreeBuilder.header_end's answer when it did not look for the delimiter after the header.
_UNSEARCHED: Final[_Stop] = (-1, -1, False, -1)


def _with_boundary(outer: _Bounds, boundary: bytes) -> _Bounds:
    bounds, positions, lengths, _, _ = outer
    own = len(bounds)
    if not own:  # the outermost multipart
        return (boundary,), {boundary: 0}, (len(boundary),), b"\n--" + boundary, 0
    positions = positions.copy()
    positions[boundary] = own  # the inner entry wins
    size = len(boundary)
    if size not in lengths:
        lengths = tuple(sorted((*lengths, size), reverse=True))
    delimiter = b"\n--" + boundary if len(positions) == 1 else None
    return (*bounds, boundary), positions, lengths, delimiter, own


# Common Content-Transfer-Encoding values as parse_token_value gives them (RFC 2045 §6.1).
_COMMON_ENCODINGS: Final = {
    word.encode("ascii"): word
    for word in (
        *("7bit", "8bit", "binary", "base64", "quoted-printable"),
        *("7BIT", "8BIT", "BINARY", "BASE64", "QUOTED-PRINTABLE"),
        *("Base64", "Binary", "Quoted-Printable", "Quoted-printable"),
    )
}


class _TreeBuilder:
    """Holds the buffer and the part budget while building one tree.

    Parts end at the next line that starts with ``--`` and an active boundary. RFC 2046 §5.1.1
    asks for a prefix comparison ("it is sufficient that the boundary appear in its entirety
    following the CRLF"); the innermost boundary is tried first, so nested boundaries that are
    prefixes of each other still nest correctly.
    """

    __slots__ = ("buf", "parts")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.parts = 0

    def find_stop(self, pos: int, end: int, active: _Bounds) -> _Stop | None:
        """The first delimiter line of any active boundary after ``pos`` (a line start or the
        LF before one). Candidates are found with ``bytes.find``: no regex is compiled per
        boundary, which would cost more than parsing a small message."""
        buf = self.buf
        _, positions, lengths, delimiter, innermost = active
        # "--" after the boundary closes (RFC 2046 §5.1.1); compared byte by byte, which costs
        # less than a startswith call.
        if delimiter is not None:  # one boundary: the first line that starts with it
            at = buf.find(delimiter, pos if pos > 0 else 0, end)
            if at < 0:
                return None
            return self.delimiter_stop(at, at + len(delimiter), pos, end, innermost)
        if not lengths:
            return None
        at = buf.find(b"\n--", pos if pos > 0 else 0, end)
        while at >= 0:
            for length in lengths:  # RFC 2046 §5.1.1: the boundary is a prefix of the line
                after = at + 3 + length
                found = positions.get(buf[at + 3 : after]) if after <= end else None
                if found is not None:
                    return self.delimiter_stop(at, after, pos, end, found)
            at = buf.find(b"\n--", at + 1, end)
        return None

    def delimiter_stop(self, at: int, after: int, pos: int, end: int, found: int) -> _Stop:
        """The delimiter line whose LF is at ``at`` and whose boundary (number ``found``) ends
        at ``after``, found by a search from ``pos``."""
        buf = self.buf
        close = False
        if after + 2 <= end:  # "\r\n" or "--" usually follows: no search for the line end
            next_two = buf[after : after + 2]
            if next_two == b"\r\n":
                line_end = after + 2
            else:
                close = next_two == b"--"
                eol = buf.find(b"\n", after, end)
                line_end = end if eol < 0 else eol + 1
        else:
            eol = buf.find(b"\n", after, end)
            line_end = end if eol < 0 else eol + 1
        part_end = at - 1 if at > pos and buf[at - 1] == 0x0D else at
        return part_end if part_end > pos else pos + 1, found, close, line_end

    def header_end(
        self, start: int, end: int, active: _Bounds
    ) -> tuple[int, _Stop | None, _Stop | None]:
        """Where the header at ``start`` ends, the delimiter that cut it short if any, and the
        first delimiter after the header when the search found it on the way (None: there is
        none; :data:`_UNSEARCHED`: not looked for).

        The blank line is looked for within :data:`MAX_HEADER_BYTES`; a header without one runs
        up to the next delimiter (a part with only a header and an empty body).
        """
        # (no min(): a builtin call costs more than the comparison)
        window = end if start + MAX_HEADER_BYTES > end else start + MAX_HEADER_BYTES
        buf = self.buf
        if start:  # from the LF before it, so that an empty header ends right there too
            blank = _BLANK_LINE_RE.search(buf, start - 1, window)
            body_start = window if blank is None else blank.end()
        else:
            body_start = _header_end(buf, start, window)
        if body_start == window and window < end:
            stop = self.find_stop(start - 1, end, active)
            return (stop[0] if stop else end), stop, _UNSEARCHED  # (stop[0]: its part_end)
        _, _, lengths, delimiter, innermost = active
        if delimiter is not None:  # one boundary: its next delimiter cuts the header or the body
            at = buf.find(delimiter, start - 1 if start else 0, end)
            if at < 0:
                return body_start, None, None
            after = at + len(delimiter)
            if after <= body_start:  # (a boundary holds no LF: it cannot straddle the blank line)
                stop = self.delimiter_stop(at, after, start - 1, body_start, innermost)
                return stop[0], stop, _UNSEARCHED
            return (
                body_start,
                None,
                self.delimiter_stop(at, after, body_start - 1, end, innermost),
            )
        # Most headers hold no line that starts with "--": skip the search for them.
        if lengths and buf.find(b"\n--", start - 1 if start else 0, body_start) >= 0:
            stop = self.find_stop(start - 1, body_start, active)
            if stop is not None:
                return stop[0], stop, _UNSEARCHED
        return body_start, None, _UNSEARCHED

    def entity(
        self,
        start: int,
        end: int,
        depth: int,
        default: ContentType,
        active: _Bounds,
        root: bool,
    ) -> tuple[Part, _Stop | None]:
        """Parse the entity at ``start``; return it and the delimiter that ended it."""
        buf = self.buf
        self.parts += 1
        # The usual body part header matched whole (within header_end's bound): end and values.
        limit = start + _SIMPLE_HEADER_BYTES
        simple = (
            None if root else _SIMPLE_HEADER_RE.match(buf, start, end if end < limit else limit)
        )
        stop: _Stop | None
        ahead: _Stop | None
        if simple is not None:
            body_start, stop, ahead = simple.end(), None, _UNSEARCHED
            ctype, encoding, extras = _simple_content(*simple.groups())
            envelope = None
        else:
            body_start, stop, ahead = self.header_end(start, end, active)
            if root:  # a message: its ENVELOPE fields are found when first asked for
                ctype, encoding, extras = _content(content_fields(buf, start, body_start), default)
                envelope = EnvelopeFields.from_header(buf, start, body_start)
            else:
                ctype, encoding, extras = _part_content(buf, start, body_start, default)
                envelope = None
        children: tuple[Part, ...] = ()
        message: Part | None = None
        nested = depth < MAX_DEPTH and self.parts < MAX_PARTS and stop is None
        maintype = ctype.maintype
        if nested and maintype == "multipart":
            children, body_end, stop = self.multipart(ctype, body_start, end, depth + 1, active)
            if body_end - body_start < REUSE_COUNTS_BYTES:  # (lines(), without the call)
                lines = buf.count(b"\n", body_start, body_end)
            else:
                lines = self.lines(body_start, body_end, children)
        elif nested and maintype == "message" and _is_encapsulated(ctype, encoding):
            message, stop = self.entity(body_start, end, depth + 1, TEXT_PLAIN, active, True)
            body_end = stop[0] if stop else end  # (the delimiter's part_end)
            lines = self.lines(body_start, body_end, (message,))
        else:
            if stop is None:
                stop = (
                    ahead
                    if ahead is not _UNSEARCHED
                    else self.find_stop(body_start - 1, end, active)
                )
            body_end = stop[0] if stop else end
            lines = buf.count(b"\n", body_start, body_end)
        content_id, description, md5, disposition, language, location = extras
        part = _new_part(  # (positional: a call with *extras would cost more)
            start,
            body_start,
            body_end,
            ctype,
            encoding,
            content_id,
            description,
            md5,
            disposition,
            language,
            location,
            lines,
            children,
            message,
            envelope,
        )
        return part, stop

    def lines(self, start: int, end: int, inner: tuple[Part, ...]) -> int:
        """Line feeds in ``buf[start:end]``, which holds the ``inner`` parts: those with big
        bodies were counted already, so only the rest is counted (nested bodies are not
        counted again at every level)."""
        count = self.buf.count
        if end - start < REUSE_COUNTS_BYTES:
            return count(b"\n", start, end)
        lines = 0
        for part in inner:
            if part.body_end - part.body_start >= RECOUNT_BYTES:
                lines += count(b"\n", start, part.body_start) + part.lines
                start = part.body_end
        return lines + count(b"\n", start, end)

    def multipart(
        self, ctype: ContentType, start: int, end: int, depth: int, outer: _Bounds
    ) -> tuple[tuple[Part, ...], int, _Stop | None]:
        """Parse the body parts of a multipart (RFC 2046 §5.1.1).

        Returns the children, where this multipart's body ends, and the outer delimiter that
        ended it (None at the end of the data).
        """
        boundary = _boundary(ctype)
        if boundary is None:
            stop = self.find_stop(start - 1, end, outer)
            return (), stop[0] if stop else end, stop
        active = _with_boundary(outer, boundary)
        own = active[4]  # its innermost position
        default = MESSAGE_RFC822 if ctype.subtype == "digest" else TEXT_PLAIN
        children: list[Part] = []
        stop = self.find_stop(start - 1, end, active)  # the preamble ends here
        while stop is not None:
            _, bound, close, line_end = stop
            if bound != own:
                break
            if close or self.parts >= MAX_PARTS:  # the epilogue (or the unparsed rest) follows
                stop = self.find_stop(line_end - 1, end, outer)
                break
            child, stop = self.entity(line_end, end, depth, default, active, False)
            children.append(child)
        return tuple(children), stop[0] if stop else end, stop


_Extras = tuple[
    bytes | None,
    bytes | None,
    bytes | None,
    Disposition | None,
    tuple[str, ...] | None,
    bytes | None,
]
_NO_EXTRAS: Final[_Extras] = (None, None, None, None, None, None)


def _extras(fields: dict[bytes, bytes]) -> _Extras:
    """Content-ID, -Description, -MD5, -Disposition, -Language, -Location of a part."""
    get = fields.get
    dsp = get(b"content-disposition")
    language = get(b"content-language")
    return (
        get(b"content-id"),
        get(b"content-description"),
        get(b"content-md5"),
        None if dsp is None else parse_disposition(dsp),
        None if language is None else parse_language(language),
        get(b"content-location"),
    )


_Content = tuple[ContentType, str | None, _Extras]

# A body part's Content-* results by its header bytes: mail programs write the same few part
# headers ("Content-Type: text/plain; charset=utf-8" and "Content-Transfer-Encoding: 7bit")
# again and again. A multipart's header carries a boundary unique to its message and is not
# kept. Our own bounds on the cache: entries (emptied when full) and header bytes.
PART_HEADER_CACHE_ENTRIES: Final = 512
PART_HEADER_CACHE_BYTES: Final = 256
_part_headers: dict[bytes, _Content] = register_cache({})


def _content(fields: dict[bytes, bytes], default: ContentType) -> _Content:
    """Content-Type, Content-Transfer-Encoding and the other Content-* values of a part."""
    get = fields.get
    raw = get(b"content-type")
    ctype = default if raw is None else parse_content_type(raw)
    unread = len(fields) - (raw is not None)  # fields not looked at yet
    raw = get(b"content-transfer-encoding")
    encoding = None
    if raw is not None:
        unread -= 1
        encoding = _COMMON_ENCODINGS.get(raw) or parse_token_value(raw)
    # Only Content-Type and Content-Transfer-Encoding is the common case: skip the lookups.
    return ctype, encoding, (_extras(fields) if unread else _NO_EXTRAS)


def _part_content(buf: bytes, start: int, body_start: int, default: ContentType) -> _Content:
    """_content of the body part header ``buf[start:body_start]``, cached when it is short.

    The result depends only on the header's bytes (and on ``default``, which is why parts of a
    multipart/digest, RFC 2046 §5.1.5, bypass the cache)."""
    if body_start - start > PART_HEADER_CACHE_BYTES or default is not TEXT_PLAIN:
        return _content(content_fields(buf, start, body_start), default)
    key = buf[start:body_start]
    known = _part_headers.get(key)
    if known is not None:
        return known
    content = _content(content_fields(buf, start, body_start), default)
    if content[0].maintype != "multipart":
        if len(_part_headers) >= PART_HEADER_CACHE_ENTRIES:
            _part_headers.clear()
        _part_headers[key] = content
    return content


# RFC 5322 §2.2 / RFC 2045 §5, §6: the body part headers that mail programs write most, a
# Content-Type field (folded or not) and maybe a Content-Transfer-Encoding one, then the blank
# line. No line of them can be a delimiter, so they end where header_end would find. Names in
# any ASCII case (RFC 5322 §1.2.2), spelled as classes (see scan._PART_FIELD_RE). The first
# alternative is the usual multipart value (headers._MULTIPART_TEXT_RE in US-ASCII, RFC 2046
# §5.1.1), taken apart here; the second hands the value to parse_content_type.
_ASCII_TOKEN: Final = rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f-\xff'  # RFC 2045 §5.1 token
_SIMPLE_HEADER_BYTES: Final = MAX_HEADER_BYTES - 1
_SIMPLE_HEADER_RE: Final = re.compile(
    rb"[cC][oO][nN][tT][eE][nN][tT]-[tT][yY][pP][eE][ \t]*+:[ \t]*+(?:"
    rb"([mM][uU][lL][tT][iI][pP][aA][rR][tT])[ \t]*+/[ \t]*+(" + _ASCII_TOKEN + rb"]++)"
    rb"[ \t]*+;[ \t]*+(?:\r?\n[ \t])?[ \t]*+([bB][oO][uU][nN][dD][aA][rR][yY])[ \t]*+=[ \t]*+"
    rb'(?:"([^"*(\\\r\n\x80-\xff]*+)"|(' + _ASCII_TOKEN + rb"*]++))[ \t]*+\r?\n\r?\n|"
    rb"(.*+(?:\n[ \t].*+)*+)\n"  # (".", not "[^\r\n]": sre steps over it several times faster)
    rb"(?:[cC][oO][nN][tT][eE][nN][tT]-[tT][rR][aA][nN][sS][fF][eE][rR]-"
    rb"[eE][nN][cC][oO][dD][iI][nN][gG][ \t]*+:[ \t]*+(.*+)\n)?\r?\n)"
)


def _simple_content(
    main: bytes | None,
    sub: bytes,
    name: bytes,
    quoted: bytes | None,
    plain: bytes | None,
    raw: bytes,
    raw_encoding: bytes | None,
) -> _Content:
    """_content of a header that _SIMPLE_HEADER_RE matched (the values as content_fields
    gives them: a folded one unfolded, RFC 5322 §2.2.3, without its leading white space)."""
    if main is not None:  # multipart/sub; boundary=... (what parse_content_type gives)
        written = main.decode(), sub.decode()
        params: Params = ((name.decode(), (quoted or plain or b"").decode()),)
        return _new_content_type("multipart", written[1].lower(), params, written), None, _NO_EXTRAS
    raw = raw.rstrip(b"\r")
    if b"\n" in raw:
        raw = unfold(raw).lstrip(b" \t")
    if raw_encoding is None:
        return parse_content_type(raw), None, _NO_EXTRAS
    raw_encoding = raw_encoding.rstrip(b"\r")
    encoding = _COMMON_ENCODINGS.get(raw_encoding) or parse_token_value(raw_encoding)
    return parse_content_type(raw), encoding, _NO_EXTRAS


def _is_encapsulated(ctype: ContentType, encoding: str | None) -> bool:
    """message/rfc822 or message/global whose body is a message we may parse (RFC 2045 §6.4)."""
    if ctype.maintype != "message" or ctype.subtype not in MESSAGE_SUBTYPES:
        return False
    return (encoding or "7bit").lower() in IDENTITY_ENCODINGS


def _boundary(ctype: ContentType) -> bytes | None:
    for name, value in ctype.params:
        if name.lower() == "boundary" and value:
            return value.encode("utf-8", "surrogateescape")
    return None


def parse(buf: bytes) -> Part:
    """Parse a whole message into its part tree. Never raises."""
    part, _ = _TreeBuilder(buf).entity(0, len(buf), 0, TEXT_PLAIN, _NO_BOUNDS, True)
    return part


_BARE_LF_RE: Final = re.compile(rb"(?<!\r)\n")


def normalize_line_ends(data: bytes) -> bytes:
    """Turn bare LF into CRLF (RFC 5322 §2.3), as messages are stored; CRLF stays as is."""
    return _BARE_LF_RE.sub(b"\r\n", data) if b"\n" in data else data


def walk(part: Part) -> list[Part]:
    """All parts in depth-first order, the given one first."""
    out = [part]
    for child in part.children:
        out.extend(walk(child))
    if part.message is not None:
        out.extend(walk(part.message))
    return out
