"""Header values as text, tokens and parameter lists (RFC 2045 §5.1, RFC 2231, RFC 5322 §3.2).

Shared by the Content-* parsers in :mod:`pillarbox.mime.headers` (which re-exports these names)
and by the address and text helpers. Nothing here raises on malformed input.
"""

from __future__ import annotations

import codecs
import re
import urllib.parse
from typing import Final

# RFC 2231 §3: parameter continuations are numbered; refuse absurd section numbers.
MAX_PARAM_SECTIONS: Final = 100

Params = tuple[tuple[str, str], ...]


def to_text(raw: bytes) -> str:
    """Header bytes as text: UTF-8 (RFC 6532 §3.2), else Latin-1 so that no byte is lost."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def charset_decode(data: bytes, charset: str) -> str:
    """``data`` in ``charset``; an unknown charset or a bad byte never raises."""
    try:
        codecs.lookup(charset)
    except LookupError:
        # RFC 2047 §6.2: an unknown charset may be shown as-is; we keep the bytes readable.
        return data.decode("utf-8", "replace")
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, ValueError):
        return data.decode(charset, "replace")


# --- structured values: tokens, quoted strings and comments (RFC 2045 §5.1, RFC 5322 §3.2) ---

_TSPECIALS: Final = frozenset(b'()<>@,;:\\"/[]?=')
# RFC 2045 §5.1 token: any CHAR except SPACE, CTLs and tspecials (8-bit bytes tolerated).
_TOKEN: Final = rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]'
_TOKEN_RE: Final = re.compile(_TOKEN + rb"+")
_WSP_RE: Final = re.compile(rb"[ \t\r\n]+")


def skip_cfws(value: bytes, pos: int) -> int:
    """Skip folding white space and (nested) comments (RFC 5322 §3.2.2)."""
    size = len(value)
    while pos < size:
        ws = _WSP_RE.match(value, pos)
        if ws:
            pos = ws.end()
            continue
        if value[pos] != 0x28:  # "("
            return pos
        depth = 0
        while pos < size:
            char = value[pos]
            if char == 0x5C:  # backslash quotes the next character
                pos += 2
                continue
            pos += 1
            if char == 0x28:
                depth += 1
            elif char == 0x29:
                depth -= 1
                if depth == 0:
                    break
    return min(pos, size)


def read_quoted(value: bytes, pos: int) -> tuple[bytes, int]:
    """Read a quoted-string whose opening quote is at ``pos``; tolerate a missing close."""
    out = bytearray()
    pos += 1
    size = len(value)
    while pos < size:
        char = value[pos]
        if char == 0x22:
            return bytes(out), pos + 1
        if char == 0x5C and pos + 1 < size:
            pos += 1
            char = value[pos]
        if char not in (0x0D, 0x0A):
            out.append(char)
        pos += 1
    return bytes(out), pos


def read_token(value: bytes, pos: int) -> tuple[bytes, int]:
    match = _TOKEN_RE.match(value, pos)
    if match is None:
        return b"", pos
    return match.group(), match.end()


def _read_param_value(value: bytes, pos: int) -> tuple[bytes, int]:
    if pos < len(value) and value[pos] == 0x22:
        return read_quoted(value, pos)
    # Tolerate unquoted values with tspecials (e.g. name=a/b.txt) up to the next ";".
    end = value.find(b";", pos)
    end = len(value) if end < 0 else end
    return value[pos:end].strip(b" \t\r\n"), end


# The common shape of a parameter list, RFC 2045 §5.1 ``";" attribute "=" value``. When the
# list has no comment, backslash or line break (_SIMPLE_REST) one regex pass gives what the
# general loop below gives, without a Python step per byte. Possessive quantifiers keep failed
# matches linear.
_PARAM_RE: Final = re.compile(
    rb";[ \t]*+(" + _TOKEN + rb'++)[ \t]*+=[ \t]*+(?:"([^"]*+)"?|([^;]*+))'
)
_SIMPLE_REST: Final = rb"[^(\\\r\n]*+"
_SIMPLE_REST_RE: Final = re.compile(_SIMPLE_REST)


# The same shape as _PARAM_RE on decoded text, with one group for the value: a quote eaten by
# ``"?+`` selects the quoted form (the look-behind sees it), else the plain form without its
# trailing white space, so ``findall`` gives the (name, value) pairs themselves.
_PARAM_TEXT_RE: Final = re.compile(
    r";[ \t]*+(" + _TOKEN.decode("ascii") + r'++)[ \t]*+=[ \t]*+"?+'
    r'((?<=")[^"]*+|(?<!")(?:[^; \t]++|[ \t]++(?=[^; \t]))*+)'
)


def _parse_params_text(value: str) -> Params:
    """_parse_params_simple of the UTF-8 text of ``value``."""
    params = tuple(_PARAM_TEXT_RE.findall(value))
    return merge_continuations(params) if "*" in value else params


def _parse_params_simple(value: bytes) -> Params:
    """Parameters of ``value`` (the text after the type), which matches _SIMPLE_REST."""
    params = []
    # findall gives b"" for the alternative that did not match: an empty quoted value and a
    # missing one both come out as b"".
    for name, quoted, plain in _PARAM_RE.findall(value):
        params.append((name, quoted or plain.rstrip(b" \t")))
    try:
        decoded = tuple([(name.decode(), data.decode()) for name, data in params])
    except UnicodeDecodeError:
        decoded = tuple([(to_text(name), to_text(data)) for name, data in params])
    return merge_continuations(decoded) if b"*" in value else decoded


def parse_params(value: bytes, pos: int) -> Params:
    """Parse ``*(";" attribute "=" value)`` (RFC 2045 §5.1), merging RFC 2231 sections."""
    if _SIMPLE_REST_RE.fullmatch(value, pos):
        return _parse_params_simple(value[pos:])
    return _parse_params_general(value, pos)


def _parse_params_general(value: bytes, pos: int) -> Params:
    """The parameter loop for any input: comments, quoted pairs and folding included."""
    raw: list[tuple[str, str]] = []
    size = len(value)
    while pos < size:
        semi = value.find(b";", pos)
        if semi < 0:
            break
        pos = skip_cfws(value, semi + 1)
        name, pos = read_token(value, pos)
        pos = skip_cfws(value, pos)
        if not name or pos >= size or value[pos] != 0x3D:  # "="
            continue
        pos = skip_cfws(value, pos + 1)
        data, pos = _read_param_value(value, pos)
        raw.append((to_text(name), to_text(data)))
    return merge_continuations(tuple(raw))


_SECTION_RE: Final = re.compile(r"^(.+?)\*(\d+)(\*?)$")


def merge_continuations(params: Params) -> Params:
    """RFC 2231 §3: join ``name*0``, ``name*1*``, ... into one parameter.

    The joined parameter is called ``name*`` (still percent-encoded with its charset prefix,
    RFC 2231 §4) when its first section was extended, else plain ``name``.
    """
    if not any("*" in name for name, _ in params):
        return params
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    order: list[tuple[str, str | None]] = []
    for name, data in params:
        match = _SECTION_RE.match(name)
        if match is None or int(match.group(2)) > MAX_PARAM_SECTIONS:
            order.append((name, data))
            continue
        base = match.group(1)
        if base.lower() not in sections:
            sections[base.lower()] = {}
            order.append((base, None))
        sections[base.lower()].setdefault(int(match.group(2)), (data, bool(match.group(3))))
    out: list[tuple[str, str]] = []
    for name, value in order:
        if value is not None:
            out.append((name, value))
            continue
        parts = sections[name.lower()]
        extended = parts.get(0, ("", False))[1]
        joined = "".join(parts[i][0] for i in sorted(parts))
        out.append((name + "*" if extended else name, joined))
    return tuple(out)


def param_value(params: Params, name: str) -> str | None:
    """A parameter's value, decoding the RFC 2231 §4 ``charset'lang'%XX`` form if present."""
    lname = name.lower()
    for key, data in params:
        if key.lower() == lname:
            return data
    for key, data in params:
        if key.lower() == lname + "*":
            return decode_rfc2231(data)
    return None


def decode_rfc2231(data: str) -> str:
    """RFC 2231 §4: ``charset'language'percent-encoded``."""
    pieces = data.split("'", 2)
    if len(pieces) != 3:
        return urllib.parse.unquote(data)
    charset = pieces[0] or "us-ascii"
    raw = urllib.parse.unquote_to_bytes(pieces[2])
    return charset_decode(raw, charset)
