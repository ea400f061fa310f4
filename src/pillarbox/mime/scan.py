"""The few header fields a part tree needs, found in one regex pass (RFC 5322 §2.2).

A part's structure needs only its Content-* fields (RFC 2045 §3, RFC 2183, RFC 3282, RFC 2557,
RFC 1864) and, for a message, the fields IMAP ENVELOPE reports (RFC 3501 §7.4.2). Instead of
splitting every field, :func:`wanted_fields` looks for line starts that begin with one of those
names (case-insensitively, RFC 5322 §1.2.2) in the stored bytes themselves. For those names the
result is what :func:`~pillarbox.mime.headers.split_fields` gives; a header beyond its bounds
(``MAX_HEADER_BYTES``, ``MAX_HEADER_FIELDS``) goes through it.
"""

from __future__ import annotations

import re
from typing import Final

from pillarbox.mime.headers import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, split_fields, unfold

# RFC 2045 §3 (type, encoding, id, description), RFC 1864 (md5), RFC 2183 (disposition),
# RFC 3282 (language), RFC 2557 §4.2 (location): what BODYSTRUCTURE reports.
_CONTENT: Final = (
    rb"content-(?:type|transfer-encoding|id|description|md5|disposition|language|location)"
)
# RFC 3501 §7.4.2: what ENVELOPE reports.
_ENVELOPE: Final = rb"date|subject|from|sender|reply-to|to|cc|bcc|in-reply-to|message-id"

# A field starts right after a line feed with its name, optional WSP and the colon (RFC 5322
# §2.2; WSP before the colon is the obsolete syntax of RFC 5322 §4.5); its value runs on over
# every following line that starts with WSP (RFC 5322 §2.2.3 folding). Names are
# case-insensitive (RFC 5322 §1.2.2): the patterns ignore ASCII case, so they run on the stored
# bytes and ``findall`` hands back the fields without a match object for each. The value comes
# in two groups: its first line, and the folded lines that follow, if any.
_VALUE: Final = rb"[ \t]*+:[ \t]*+([^\n]*+)((?:\n[ \t][^\n]*+)*+)"
# Content-* names start with "content-" spelled as classes (sre compares them faster than an
# ignore-case literal), which turns most other lines away before the alternatives.
_PART_FIELD_RE: Final = re.compile(
    rb"\n([cC][oO][nN][tT][eE][nN][tT]-" + _CONTENT.removeprefix(b"content-") + rb")" + _VALUE,
    re.IGNORECASE,
)
_MESSAGE_FIELD_RE: Final = re.compile(
    rb"\n(?=[bcdfimrstBCDFIMRST])(" + _CONTENT + rb"|" + _ENVELOPE + rb")" + _VALUE,
    re.IGNORECASE,
)
_ENVELOPE_FIELD_RE: Final = re.compile(
    rb"\n(?=[bcdfimrstBCDFIMRST])(" + _ENVELOPE + rb")" + _VALUE, re.IGNORECASE
)
_CONTENT_PREFIX: Final = b"content-"
_CONTENT_INITIALS: Final = (b"c", b"C")
# RFC 3501 §7.4.2: the fields ENVELOPE reports, in its order.
ENVELOPE_NAMES: Final = (
    *(b"date", b"subject", b"from", b"sender", b"reply-to"),
    *(b"to", b"cc", b"bcc", b"in-reply-to", b"message-id"),
)
# Fewer bytes than this cannot hold MAX_HEADER_FIELDS lines (each non-blank line is >= 2 bytes).
_FEW_FIELDS_BYTES: Final = 2 * (MAX_HEADER_FIELDS - 1)


def envelope_values(buf: bytes, start: int, end: int) -> dict[bytes, bytes]:
    """Raw values (still folded, leading white space removed) of the first field of each
    ENVELOPE name in the header ``buf[start:end]``; keys are lower-case names."""
    return content_fields(buf, start, end, _ENVELOPE_FIELD_RE)


def wanted_fields(buf: bytes, start: int, end: int, message: bool) -> dict[bytes, bytes]:
    """Values of the first field of each wanted name in the header ``buf[start:end]``.

    Keys are lower-case names. Content-* values are unfolded; ENVELOPE values (``message``
    only) stay folded as ENVELOPE writes them. Leading white space is removed from both.
    """
    return content_fields(buf, start, end, _MESSAGE_FIELD_RE if message else _PART_FIELD_RE)


def content_fields(
    buf: bytes, start: int, end: int, pattern: re.Pattern[bytes] = _PART_FIELD_RE
) -> dict[bytes, bytes]:
    """wanted_fields without ``message``: the Content-* fields, or those ``pattern`` finds."""
    size = end - start
    if size > _FEW_FIELDS_BYTES and (
        size > MAX_HEADER_BYTES or buf.count(b"\n", start, end) >= MAX_HEADER_FIELDS
    ):
        return _from_split_fields(buf, start, end)
    # The names follow a line feed: search from the one before the header, or from a copy
    # that starts with one (a message's own header at offset 0), unless the first line cannot
    # be a Content-* field.
    if start and buf[start - 1] == 0x0A:
        found = pattern.findall(buf, start - 1, end)
    elif pattern is _PART_FIELD_RE and buf[start : start + 1] not in _CONTENT_INITIALS:
        found = pattern.findall(buf, start, end)  # the first line holds no Content-* field
    else:
        found = pattern.findall(b"\n" + buf[start:end])
    # Backwards, so the first field of each name is the one that stays (a loop: a dict
    # comprehension is one more call).
    values = {}
    for name, first, rest in reversed(found):
        values[name.lower()] = _folded(name, first + rest) if rest else first.rstrip(b"\r")
    return values


def _folded(name: bytes, raw: bytes) -> bytes:
    """The value of a folded field: Content-* values are unfolded, ENVELOPE ones kept."""
    value = raw.rstrip(b"\r\n")
    if name.lower().startswith(_CONTENT_PREFIX):
        return unfold(value).lstrip(b" \t")
    return value


def _from_split_fields(buf: bytes, start: int, end: int) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for field in split_fields(buf, start, end):
        if field.name not in found:
            value = field.value
            if field.name.startswith(_CONTENT_PREFIX):
                value = unfold(value)
            # Leading white space is not part of the value; trailing is kept (as Dovecot does).
            found[field.name] = value.lstrip(b" \t")
    return found
