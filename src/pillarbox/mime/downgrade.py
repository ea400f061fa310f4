"""8BITMIME downgrade (RFC 6152 §3): make a message 7-bit for a relay without 8BITMIME.

Each leaf part whose body has 8-bit octets (or is declared 8bit/binary) is re-encoded, text as
quoted-printable and everything else as base64, with its Content-Transfer-Encoding changed to
match. multipart and message parts that declared 8bit/binary become 7bit (RFC 2045 §6.4: only
identity encodings are allowed on them, and their content is now 7-bit). Header fields with
8-bit octets get RFC 2047 encoded-words (display names, unstructured text). The result has the
same decoded content. Only the edited byte ranges change; everything else is copied.
"""

from __future__ import annotations

import re
from typing import Final

from pillarbox.mime.address import Group, parse_address_list
from pillarbox.mime.encode import encode_base64, encode_header, encode_qp, fold
from pillarbox.mime.headers import split_fields, to_text, unfold
from pillarbox.mime.parts import Part, parse
from pillarbox.mime.sections import decode_body

_EIGHT_BIT_RE: Final = re.compile(rb"[\x80-\xff]")
# Header fields that hold address lists (RFC 5322 §3.6.2, §3.6.3, §3.6.6).
ADDRESS_FIELDS: Final = frozenset(
    {
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"resent-from",
        b"resent-sender",
        b"resent-to",
        b"resent-cc",
        b"resent-bcc",
    }
)
_CTE: Final = b"content-transfer-encoding"
Edit = tuple[int, int, bytes]


def needs_downgrade(body: bytes) -> bool:
    """True when the message has any 8-bit octet (BODY=8BITMIME would be needed)."""
    return _EIGHT_BIT_RE.search(body) is not None


def _address_field(name: bytes, value: bytes) -> bytes:
    items: list[str] = []
    for item in parse_address_list(unfold(value)):
        members = item.members if isinstance(item, Group) else (item,)
        rendered = []
        for addr in members:
            spec = addr.addr_spec
            if addr.name:
                encoded = _encode_phrase(to_text(addr.name))
                rendered.append(f"{encoded} <{spec}>")
            else:
                rendered.append(spec)
        if isinstance(item, Group):
            items.append(f"{_encode_phrase(to_text(item.name))}: {', '.join(rendered)};")
        else:
            items.extend(rendered)
    text = ", ".join(items)
    # Local parts with 8-bit octets cannot be made 7-bit (that needs SMTPUTF8, RFC 6531).
    return fold(name, text.encode("utf-8"))


def _encode_phrase(text: str) -> str:
    if text.isascii():
        if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*", text):
            return text
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    field = encode_header("X", text)
    return unfold(field[3:]).decode("ascii").strip()


def rewrite_header(header: bytes, new_cte: bytes | None) -> bytes:
    """A header section with 8-bit fields encoded and Content-Transfer-Encoding replaced."""
    out: list[bytes] = []
    seen_cte = False
    for field in split_fields(header, 0, len(header)):
        raw = header[field.start : field.end]
        name = raw[: raw.find(b":")] if field.name else b""
        if field.name == _CTE and new_cte is not None:
            seen_cte = True
            out.append(name + b": " + new_cte + b"\r\n")
        elif not _EIGHT_BIT_RE.search(raw):
            out.append(raw if raw.endswith(b"\n") else raw + b"\r\n")
        elif field.name in ADDRESS_FIELDS:
            out.append(_address_field(name, field.value))
        elif field.name:
            out.append(encode_header(to_text(name), to_text(unfold(field.value)).strip()))
        # a line without a name and with 8-bit octets is garbage and is dropped
    if new_cte is not None and not seen_cte:
        out.append(b"Content-Transfer-Encoding: " + new_cte + b"\r\n")
    return b"".join(out) + b"\r\n"


def _leaf_edits(body: bytes, part: Part) -> list[Edit]:
    data = body[part.body_start : part.body_end]
    declared = (part.encoding or "7bit").lower()
    if declared not in ("8bit", "binary") and not _EIGHT_BIT_RE.search(data):
        return _header_only(body, part, None)
    decoded = decode_body(data, part.encoding)
    if decoded is None:  # unknown encoding with 8-bit octets: ship it as opaque base64
        decoded = data
    if part.content_type.maintype == "text":
        # Quoted-printable keeps the line breaks of the text, a final one included (the CRLF
        # before the next delimiter is not part of the body, RFC 2046 §5.1.1).
        encoded, cte = encode_qp(decoded), b"quoted-printable"
    else:
        encoded, cte = encode_base64(decoded), b"base64"
        if encoded.endswith(b"\r\n"):
            encoded = encoded[:-2]  # base64 lines end CRLF; the last one need not
    header = rewrite_header(body[part.header_start : part.body_start], cte)
    return [(part.header_start, part.body_start, header), (part.body_start, part.body_end, encoded)]


def _header_only(body: bytes, part: Part, cte: bytes | None) -> list[Edit]:
    header = body[part.header_start : part.body_start]
    if cte is None and not _EIGHT_BIT_RE.search(header):
        return []
    return [(part.header_start, part.body_start, rewrite_header(header, cte))]


def _edits(body: bytes, part: Part) -> list[Edit]:
    if part.is_multipart or part.message is not None:
        declared = (part.encoding or "7bit").lower()
        cte = b"7bit" if declared in ("8bit", "binary") else None
        edits = _header_only(body, part, cte)
        for child in part.children:
            edits.extend(_edits(body, child))
        if part.message is not None:
            edits.extend(_edits(body, part.message))
        return edits
    return _leaf_edits(body, part)


def downgrade(body: bytes, tree: Part | None = None) -> bytes:
    """Return a 7-bit version of ``body`` with the same decoded content (RFC 6152 §3)."""
    if not needs_downgrade(body):
        return body
    edits = sorted(_edits(body, tree if tree is not None else parse(body)))
    out: list[bytes] = []
    pos = 0
    for start, end, data in edits:
        out.append(body[pos:start])
        out.append(data)
        pos = end
    out.append(body[pos:])
    return b"".join(out)
