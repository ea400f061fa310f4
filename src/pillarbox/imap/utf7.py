"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3).

Python's "utf-7" codec is not this encoding: IMAP uses "&" as the shift character, ","
instead of "/" in base64, no padding, and requires one canonical form. `decode` accepts
only the canonical form (what `encode` produces), so every name has one spelling:

    encode("Entwürfe")    -> b"Entw&APw-rfe"
    decode(b"Entw&APw-rfe") -> "Entwürfe"
    decode(b"&AGE-")       -> Utf7Error (printable ASCII must stand for itself)
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

# RFC 3501 §5.1.3: characters 0x20-0x7e represent themselves ("&" is written "&-").
_DIRECT: Final = re.compile(r"[\x20-\x25\x27-\x7e]+")
_SHIFTED: Final = re.compile(rb"&([A-Za-z0-9+,]*)-")
_PRINTABLE_BYTES: Final = re.compile(rb"[\x20-\x25\x27-\x7e]*")


class Utf7Error(ValueError):
    """Not a valid (canonical) modified UTF-7 name."""


def _encode_run(run: str) -> bytes:
    if run == "&":
        return b"&-"
    if run.startswith("&"):
        # "&" is printable but needs its own "&-", never a place in a base64 run.
        return b"".join(b"&-" for _ in run)
    data = base64.b64encode(run.encode("utf-16-be")).rstrip(b"=")
    return b"&" + data.replace(b"/", b",") + b"-"


def encode(name: str) -> bytes:
    """The canonical modified UTF-7 form of `name` (RFC 3501 §5.1.3)."""
    if _DIRECT.fullmatch(name):
        return name.encode("ascii")
    out: list[bytes] = []
    position = 0
    for match in _DIRECT.finditer(name):
        if match.start() > position:
            out.append(_encode_shifted(name[position : match.start()]))
        out.append(match.group().encode("ascii"))
        position = match.end()
    if position < len(name):
        out.append(_encode_shifted(name[position:]))
    return b"".join(out)


def _encode_shifted(text: str) -> bytes:
    # "&" runs get "&-" each; everything else outside 0x20-0x7e goes into one base64 run.
    pieces: list[bytes] = []
    for run in re.split(r"(&+)", text):
        if run:
            pieces.append(_encode_run(run))
    return b"".join(pieces)


def _decode_base64(data: bytes) -> str:
    if not data:
        raise Utf7Error("empty shift sequence")
    padded = data.replace(b",", b"/") + b"=" * (-len(data) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
        return raw.decode("utf-16-be")  # strict: odd length or lone surrogate fails
    except (binascii.Error, UnicodeDecodeError) as error:
        raise Utf7Error("invalid modified base64") from error


def decode(data: bytes) -> str:
    """Decode a modified UTF-7 name; raises Utf7Error unless it is canonical."""
    if b"&" not in data:
        if not _PRINTABLE_BYTES.fullmatch(data):
            raise Utf7Error("mailbox names are printable 7-bit ASCII or modified UTF-7")
        return data.decode("ascii")
    out: list[str] = []
    position = 0
    for match in _SHIFTED.finditer(data):
        direct = data[position : match.start()]
        if not _PRINTABLE_BYTES.fullmatch(direct):
            raise Utf7Error("mailbox names are printable 7-bit ASCII or modified UTF-7")
        out.append(direct.decode("ascii"))
        shifted = match.group(1)
        out.append("&" if not shifted else _decode_base64(shifted))
        position = match.end()
    rest = data[position:]
    if not _PRINTABLE_BYTES.fullmatch(rest):
        raise Utf7Error("unterminated or invalid shift sequence")
    out.append(rest.decode("ascii"))
    name = "".join(out)
    if encode(name) != data:
        raise Utf7Error("not the canonical modified UTF-7 form")
    return name


def is_valid(data: bytes) -> bool:
    try:
        decode(data)
    except Utf7Error:
        return False
    return True
