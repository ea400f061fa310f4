"""Encoders: base64 and quoted-printable bodies (RFC 2045 §6.7, §6.8), RFC 2047 encoded-words
and header folding (RFC 5322 §2.1.1, §2.2.3). All output uses CRLF line ends."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

# RFC 2045 §6.8 and §6.7: encoded lines are at most 76 characters.
MAX_ENCODED_LINE: Final = 76
# RFC 2047 §2: an encoded-word is at most 75 characters.
MAX_ENCODED_WORD: Final = 75
# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998.
FOLD_WIDTH: Final = 78
MAX_LINE: Final = 998

CRLF: Final = b"\r\n"


def encode_base64(data: bytes, width: int = MAX_ENCODED_LINE) -> bytes:
    """Base64 in lines of ``width`` characters, each ended by CRLF (RFC 2045 §6.8)."""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    return b"".join(line + CRLF for line in lines)


_LINE_END_RE: Final = re.compile(rb"\r\n|\n")


def encode_qp(data: bytes) -> bytes:
    """Quoted-printable for text (RFC 2045 §6.7): line breaks stay hard breaks (CRLF), long
    lines get soft breaks, ``=`` and non-printables are escaped, and so is white space at the
    end of a line. Binary data should use base64 instead."""
    lines = _LINE_END_RE.split(data)
    out = [binascii.b2a_qp(line, quotetabs=False, istext=False) for line in lines]
    # b2a_qp ends soft-broken lines with "=\n"; make every line end CRLF.
    return CRLF.join(chunk.replace(b"=\n", b"=\r\n") for chunk in out)


_ESPECIALS_Q: Final = re.compile(rb"[^A-Za-z0-9!*+\-/ ]")


def _q_encode(raw: bytes) -> bytes:
    """RFC 2047 §4.2 Q encoding (the restricted set of §5 (3) for use anywhere)."""
    return _ESPECIALS_Q.sub(lambda m: b"=%02X" % m.group()[0], raw).replace(b" ", b"_")


def _chunks(text: str, charset: str, budget: int) -> list[bytes]:
    """Split ``text`` into character-aligned pieces whose encoded size fits ``budget``."""
    pieces: list[bytes] = []
    current = ""
    for char in text:
        trial = (current + char).encode(charset)
        if current and len(base64.b64encode(trial)) > budget:
            pieces.append(current.encode(charset))
            current = char
        else:
            current += char
    if current:
        pieces.append(current.encode(charset))
    return pieces


def encode_words(text: str, charset: str = "utf-8") -> bytes:
    """Encode ``text`` as RFC 2047 encoded-words (each <= 75 characters), separated by spaces.

    B or Q is chosen per word, whichever is shorter.
    """
    prefix = b"=?" + charset.encode("ascii") + b"?"
    budget = MAX_ENCODED_WORD - len(prefix) - 4
    words: list[bytes] = []
    for raw in _chunks(text, charset, budget):
        q = _q_encode(raw)
        b = base64.b64encode(raw)
        if len(q) <= len(b) and len(q) <= budget:
            words.append(prefix + b"Q?" + q + b"?=")
        else:
            words.append(prefix + b"B?" + b + b"?=")
    return b" ".join(words)


def fold(name: bytes, value: bytes, width: int = FOLD_WIDTH) -> bytes:
    """``name: value`` CRLF, folded before white space so lines stay within ``width`` when
    possible (RFC 5322 §2.2.3). A word longer than the line is left whole."""
    words = value.split(b" ")
    lines: list[bytes] = []
    line = name + b":"
    for word in words:
        if not word:
            continue
        if len(line) + 1 + len(word) > width and line != name + b":":
            lines.append(line)
            line = b" " + word
        else:
            line += b" " + word
    lines.append(line)
    return CRLF.join(lines) + CRLF


_NEEDS_ENCODING_RE: Final = re.compile(r"[^\x20-\x7e]")


def encode_header(name: str, text: str, charset: str = "utf-8") -> bytes:
    """A complete unstructured header field (e.g. Subject) as 7-bit folded bytes.

    Runs of words that are not printable ASCII become encoded-words (RFC 2047 §5 (1)).
    """
    words = text.split()
    out: list[bytes] = []
    run: list[str] = []
    for word in [*words, ""]:
        if word and (_NEEDS_ENCODING_RE.search(word) or word.startswith("=?")):
            run.append(word)
            continue
        if run:
            out.append(encode_words(" ".join(run), charset))
            run = []
        if word:
            out.append(word.encode("ascii"))
    return fold(name.encode("ascii"), b" ".join(out))
