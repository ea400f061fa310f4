"""Decoded text of a message for SEARCH (RFC 3501 §6.4.4) and a later full-text index.

Only header sections and text/* leaf parts are sliced and decoded; attachments are never
copied. Charsets are converted with Python's codecs; unknown ones degrade to UTF-8 with
replacement characters, so a search never fails on a strange message.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Final

from pillarbox.mime.headers import decode_words, param_value, split_fields, unfold
from pillarbox.mime.parts import Part
from pillarbox.mime.sections import decode_body

# RFC 2045 §5.2 / RFC 6657: text without a charset is US-ASCII; we read it as UTF-8, a superset.
DEFAULT_CHARSET: Final = "utf-8"
# Our bound on how much decoded text one part contributes to search (large logs, base64 junk).
MAX_TEXT_PER_PART: Final = 8 * 1024 * 1024


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes in ``charset`` as text, never raising."""
    name = (charset or DEFAULT_CHARSET).strip().lower() or DEFAULT_CHARSET
    try:
        codecs.lookup(name)
    except LookupError:
        name = DEFAULT_CHARSET
    if name in ("us-ascii", "ascii"):
        name = DEFAULT_CHARSET  # 8-bit bytes in "us-ascii" text are usually UTF-8 in practice
    return data.decode(name, "replace")


def header_values(body: bytes, part: Part, name: bytes) -> list[str]:
    """Decoded values (RFC 2047) of every field called ``name`` in a part's header."""
    wanted = name.lower()
    return [
        decode_words(unfold(f.value).strip(b" \t"))
        for f in split_fields(body, part.header_start, part.body_start)
        if f.name == wanted
    ]


def header_text(body: bytes, part: Part) -> str:
    """The whole header section, decoded, one ``Name: value`` per line."""
    lines = []
    for field in split_fields(body, part.header_start, part.body_start):
        raw = body[field.start : field.end]
        name = raw[: raw.find(b":")].decode("latin-1") if field.name else ""
        value = decode_words(unfold(field.value).strip(b" \t"))
        lines.append(f"{name}: {value}" if name else value)
    return "\n".join(lines)


def text_parts(tree: Part) -> Iterator[Part]:
    """text/* leaf parts in order, including those inside attached messages."""
    if tree.is_multipart:
        for child in tree.children:
            yield from text_parts(child)
    elif tree.message is not None:
        yield from text_parts(tree.message)
    elif tree.content_type.maintype == "text":
        yield tree


def part_text(body: bytes, part: Part) -> str:
    """The decoded text of one text part (transfer encoding and charset undone)."""
    data = body[part.body_start : min(part.body_end, part.body_start + MAX_TEXT_PER_PART)]
    decoded = decode_body(data, part.encoding)
    if decoded is None:
        decoded = data
    return decode_text(decoded, param_value(part.content_type.params, "charset"))


def body_text(body: bytes, tree: Part) -> str:
    """Decoded text of every text part (SEARCH BODY, RFC 3501 §6.4.4)."""
    return "\n".join(part_text(body, part) for part in text_parts(tree))


def search_text(body: bytes, tree: Part) -> str:
    """Header text and body text together (SEARCH TEXT, RFC 3501 §6.4.4)."""
    return header_text(body, tree) + "\n\n" + body_text(body, tree)
