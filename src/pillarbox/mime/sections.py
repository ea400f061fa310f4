"""IMAP body sections (RFC 3501 §6.4.5, RFC 9051 §6.4.5) and BINARY (RFC 3516) as slices.

Every function takes the stored message bytes and its parsed tree and returns bytes, so IMAP
FETCH can answer ``BODY[...]``, ``BODY.PEEK[...]``, ``BINARY[...]`` and ``BINARY.SIZE[...]``
without parsing again.
"""

from __future__ import annotations

import binascii
import enum
import re
from dataclasses import dataclass
from typing import Final

from pillarbox.mime.headers import split_fields
from pillarbox.mime.parts import Part

# RFC 3501 §6.4.5 section-text keywords.
HEADER: Final = "HEADER"
HEADER_FIELDS: Final = "HEADER.FIELDS"
HEADER_FIELDS_NOT: Final = "HEADER.FIELDS.NOT"
TEXT: Final = "TEXT"
MIME: Final = "MIME"
SECTION_TEXTS: Final = frozenset({HEADER, HEADER_FIELDS, HEADER_FIELDS_NOT, TEXT, MIME})
# Our own bound on the number of part numbers in one section (the tree depth bounds it anyway).
MAX_SECTION_PATH: Final = 100


@dataclass(frozen=True, slots=True)
class Section:
    """A section-spec: part numbers, then optionally a section-text (RFC 3501 §6.4.5)."""

    path: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[bytes, ...] = ()  # upper-cased names for HEADER.FIELDS[.NOT]


_SECTION_RE: Final = re.compile(
    rb"(?:(?P<path>[1-9][0-9]{0,9}(?:\.[1-9][0-9]{0,9})*)(?:\.(?P<sub>[A-Z.]+))?"
    rb"|(?P<top>[A-Z.]+))?"
    rb"(?:\s*\((?P<names>[^()]*)\))?",
    re.I,
)


def parse_section(spec: bytes) -> Section | None:
    """Parse the text between ``[`` and ``]``; None when it is not a valid section-spec."""
    match = _SECTION_RE.fullmatch(spec.strip())
    if match is None:
        return None
    numbers, keyword, names = match["path"], match["sub"] or match["top"], match["names"]
    path = tuple(int(n) for n in numbers.split(b".")) if numbers else ()
    text = keyword.decode("ascii").upper() if keyword else None
    if text is not None and text not in SECTION_TEXTS:
        return None
    if len(path) > MAX_SECTION_PATH or (text in (HEADER_FIELDS, HEADER_FIELDS_NOT)) != (
        names is not None
    ):
        return None
    if text == MIME and not path:  # RFC 3501 §6.4.5: MIME needs a part number
        return None
    fields = tuple(n.upper() for n in (names or b"").split())
    return Section(path, text, fields)


def resolve(tree: Part, path: tuple[int, ...]) -> Part | None:
    """The part a list of part numbers names (RFC 3501 §6.4.5), or None if there is none.

    Inside a message (the top level or a message/rfc822 part) part 1 of a non-multipart body
    is that body itself; numbers continue into an encapsulated message's parts.
    """
    current = tree
    for index, number in enumerate(path):
        if index and current.is_message and current.message is not None:
            container = current.message
        else:
            container = current
        if container.is_multipart:
            if not 1 <= number <= len(container.children):
                return None
            current = container.children[number - 1]
        elif number == 1 and (index == 0 or container is not current):
            current = container
        else:
            return None
    return current


def _header_fields(body: bytes, part: Part, names: tuple[bytes, ...], keep: bool) -> bytes:
    wanted = {name.lower() for name in names}
    chosen = [
        body[f.start : f.end]
        for f in split_fields(body, part.header_start, part.body_start)
        if f.name and (f.name in wanted) == keep
    ]
    # RFC 3501 §6.4.5: the subset of the header, followed by the blank line.
    return b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in chosen) + b"\r\n"


def section_bytes(body: bytes, tree: Part, section: Section) -> bytes | None:
    """The octets of ``BODY[section]``; None when the section names no part."""
    part = resolve(tree, section.path)
    if part is None:
        return None
    if section.text is None:
        if not section.path:
            return body[tree.header_start : tree.body_end]
        return body[part.body_start : part.body_end]
    if section.text == MIME:
        return body[part.header_start : part.body_start]
    # HEADER, HEADER.FIELDS, TEXT apply to a message: the top level or a message/rfc822 part.
    message = part if not section.path else part.message
    if message is None:
        return None
    if section.text == TEXT:
        return body[message.body_start : message.body_end]
    if section.text == HEADER:
        return body[message.header_start : message.body_start]
    return _header_fields(body, message, section.fields, section.text == HEADER_FIELDS)


def partial(data: bytes, origin: int, count: int | None = None) -> bytes:
    """``<origin.octets>`` (RFC 3501 §6.4.5): a substring, empty when origin is past the end."""
    if count is None:
        return data[origin:]
    return data[origin : origin + count]


class BinaryError(enum.Enum):
    """Why BINARY[...] has no answer (RFC 3516 §4.1, §4.2)."""

    NO_SUCH_PART = "no such part"
    UNKNOWN_CTE = "UNKNOWN-CTE"


# RFC 3516 §4.2: encodings whose content the server can decode.
_IDENTITY: Final = frozenset({"", "7bit", "8bit", "binary"})
_BASE64_JUNK_RE: Final = re.compile(rb"[^A-Za-z0-9+/]")


def decode_base64(data: bytes) -> bytes:
    """Lenient base64 (RFC 2045 §6.8): characters outside the alphabet are ignored."""
    clean = _BASE64_JUNK_RE.sub(b"", data)
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:  # pragma: no cover - the cleaning above leaves valid input
        return b""


def decode_qp(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 §6.7), including soft line breaks."""
    return binascii.a2b_qp(data)


DECODERS: Final = {"base64": decode_base64, "quoted-printable": decode_qp}


def decode_body(data: bytes, encoding: str | None) -> bytes | None:
    """Undo a Content-Transfer-Encoding; None for an encoding we do not know."""
    name = (encoding or "").lower()
    if name in _IDENTITY:
        return data
    decoder = DECODERS.get(name)
    return None if decoder is None else decoder(data)


def binary(body: bytes, tree: Part, path: tuple[int, ...]) -> bytes | BinaryError:
    """``BINARY[path]`` (RFC 3516 §4.2): the part's content with its transfer encoding undone."""
    if not path:
        return body[tree.header_start : tree.body_end]
    part = resolve(tree, path)
    if part is None:
        return BinaryError.NO_SUCH_PART
    data = body[part.body_start : part.body_end]
    if part.is_multipart or part.is_message:
        return data
    decoded = decode_body(data, part.encoding)
    return BinaryError.UNKNOWN_CTE if decoded is None else decoded


def binary_size(body: bytes, tree: Part, path: tuple[int, ...]) -> int | BinaryError:
    """``BINARY.SIZE[path]`` (RFC 3516 §4.3): the size of what BINARY[path] would return."""
    result = binary(body, tree, path)
    return result if isinstance(result, BinaryError) else len(result)
