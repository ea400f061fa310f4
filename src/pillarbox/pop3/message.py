"""Message bytes for POP3 multi-line responses: byte-stuffing and TOP extraction.

Both run on whole messages with `bytes` methods and compiled regexes, never a Python loop
per line of the message (TOP loops once per requested body line, stopping at the end).
"""

from __future__ import annotations

import re
from typing import Final

_CRLF: Final = b"\r\n"
# RFC 1939 §3: a multi-line response ends with a line holding a single ".".
_TERMINATOR: Final = b".\r\n"
_BARE_LF: Final = re.compile(rb"(?<!\r)\n")
# The first empty line ends the header section (RFC 5322 §2.1); LF-only tolerated.
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_STUFFED_LINE: Final = re.compile(rb"(?m)^\.")
# RFC 1939 §3: a line that begins with the termination octet gets one more in front.
# A regex split: its literal-prefix scan is faster than `bytes.split` on two octets.
_STUFF_AFTER: Final = re.compile(rb"\n\.")
_STUFFED: Final = b"\n.."
_LF: Final = ord("\n")
# `dot_stuff` looks at up to this many "." one by one (each found with memchr: fast when
# dots are few, as in base64 attachments, most of the octets of large mail); a body with
# more dots is split with `_STUFF_AFTER`, which costs the same however many there are.
MAX_DOTS_VISITED: Final = 64


def to_crlf(data: bytes) -> bytes:
    """Bare LF line ends become CRLF (RFC 1939 §3: lines end in CRLF); others unchanged."""
    if data.count(b"\n") == data.count(_CRLF):
        return data
    return _BARE_LF.sub(_CRLF, data)


def dot_stuff(body: bytes, prefix: bytes = b"") -> bytes:
    """A message as the lines of a multi-line response: every line that begins with "."
    gets another "." in front (RFC 1939 §3), a final CRLF if missing, and the terminating
    ".CRLF". Bare LF line ends become CRLF. `prefix` (the status line) is put in front
    in the same copy.

    Hot path (RETR of large messages). CPython's byte loops (`bytes.count`, regexes) run
    at about a byte a nanosecond, `memchr` (`bytes.find` and `bytes.replace` of one octet)
    many times faster, so the line ends are counted with `_octets` and the lines to stuff
    found by visiting each "." with `find`; a body with many dots (prose) is split with
    a regex instead. The body is copied once, in the final join.
    Stuffing follows every LF, so even a client that splits lines on bare LF cannot see
    the terminator early. A body with as many bare CRs as bare LFs (which the store never
    holds: bodies are CRLF) keeps its bare LFs, still safely stuffed.
    """
    if _octets(body, b"\r") != _octets(body, b"\n"):
        body = _BARE_LF.sub(_CRLF, body)
    tail = _TERMINATOR if not body or body.endswith(_CRLF) else _CRLF + _TERMINATOR
    stuffed = _stuff_by_dots(body, prefix, tail)
    return _stuff_by_split(body, prefix, tail) if stuffed is None else stuffed


def _octets(data: bytes, octet: bytes) -> int:
    """How often the single `octet` occurs (deleting it runs on memchr; counting does not)."""
    return len(data) - len(data.replace(octet, b""))


def _stuff_by_dots(body: bytes, prefix: bytes, tail: bytes) -> bytes | None:
    """`dot_stuff` visiting every "." of the body; None if there are too many to visit."""
    view = memoryview(body)
    parts: list[bytes | memoryview] = [prefix]
    start = 0
    at = body.find(b".")
    for _ in range(MAX_DOTS_VISITED):
        if at < 0:
            parts += (view[start:], tail)
            return b"".join(parts)
        if at == 0 or body[at - 1] == _LF:
            parts += (view[start:at], b".")  # the line's own "." starts the next part
            start = at
        at = body.find(b".", at + 1)
    return None


def _stuff_by_split(body: bytes, prefix: bytes, tail: bytes) -> bytes:
    """`dot_stuff` for a body with many dots: one regex split at the lines to stuff."""
    head = prefix + b"." if body.startswith(b".") else prefix
    pieces = _STUFF_AFTER.split(body)
    pieces[0] = head + pieces[0]
    pieces[-1] += tail  # the last piece is short unless one stuffed line ends the body
    return _STUFFED.join(pieces)


def dot_unstuff(response_lines: bytes) -> bytes:
    """The inverse of `dot_stuff` for a client: the lines of a multi-line response
    (after the status line, up to and including ".CRLF") without stuffing and terminator."""
    if not response_lines.endswith(_TERMINATOR):
        raise ValueError("multi-line response is not terminated")
    content = response_lines[: -len(_TERMINATOR)]
    if content and not content.endswith(_CRLF):
        raise ValueError("terminator is not on a line of its own")
    return _STUFFED_LINE.sub(b"", content)


def header_length(message: bytes) -> int:
    """Octets of the header section including the empty line that ends it; the whole
    message when there is no empty line (a message without body)."""
    if message.startswith(_CRLF):
        return 2
    if message.startswith(b"\n"):
        return 1
    end = _HEADER_END.search(message)
    return len(message) if end is None else end.end()


def top_of(message: bytes, lines: int) -> bytes:
    """RFC 1939 §7 TOP: the header section, the empty line, and the first `lines` lines
    of the body (the whole body when it has fewer)."""
    if lines < 0:
        raise ValueError("TOP line count must not be negative")
    end = header_length(message)
    for _ in range(lines):
        newline = message.find(b"\n", end)
        if newline < 0:
            return message
        end = newline + 1
    return message[:end]
