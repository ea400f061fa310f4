"""A compact, versioned serial form of a part tree, so the store can keep parse results.

:func:`dump_tree` is called once at delivery; :func:`load_tree` gives back an equal
:class:`~pillarbox.mime.parts.Part`, from which ENVELOPE, BODYSTRUCTURE and every section can be
served without parsing the message again. The form is JSON (UTF-8) of nested arrays; byte
strings are stored as Latin-1 text so that every octet survives.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pillarbox.mime.headers import ContentType, Disposition, Params
from pillarbox.mime.parts import EnvelopeFields, Part

# Bump when the layout changes; a cached tree of another version must be re-parsed.
FORMAT_VERSION: Final = 1


class CacheFormatError(ValueError):
    """The cached data is not a tree of this format version (re-parse the message)."""


def _b(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _ub(value: Any) -> bytes | None:
    return None if value is None else str(value).encode("latin-1")


def _params(params: Params) -> list[list[str]]:
    return [[name, value] for name, value in params]


def _uparams(data: Any) -> Params:
    return tuple((str(name), str(value)) for name, value in data)


def _encode(part: Part) -> list[Any]:
    ctype = part.content_type
    dsp = part.disposition
    env = part.envelope
    return [
        part.header_start,
        part.body_start,
        part.body_end,
        [ctype.maintype, ctype.subtype, _params(ctype.params), list(ctype.written)],
        part.encoding,
        _b(part.content_id),
        _b(part.description),
        _b(part.md5),
        None if dsp is None else [dsp.kind, _params(dsp.params)],
        None if part.language is None else list(part.language),
        _b(part.location),
        part.lines,
        [_encode(child) for child in part.children],
        None if part.message is None else _encode(part.message),
        None if env is None else [_b(value) for value in env.values()],
    ]


_ENV_ORDER: Final = (
    "date",
    "subject",
    "from_",
    "sender",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "in_reply_to",
    "message_id",
)


def getattr_env(env: EnvelopeFields, index: int) -> bytes | None:
    """The envelope field at ``index`` in :data:`_ENV_ORDER` (explicit table, no name magic)."""
    values = env.values()
    return values[index]


def _decode(data: Any) -> Part:
    (hs, bs, be, ct, enc, cid, desc, md5, dsp, lang, loc, lines, kids, msg, env) = data
    written = (str(ct[3][0]), str(ct[3][1]))
    return Part(
        header_start=int(hs),
        body_start=int(bs),
        body_end=int(be),
        content_type=ContentType(str(ct[0]), str(ct[1]), _uparams(ct[2]), written),
        encoding=None if enc is None else str(enc),
        content_id=_ub(cid),
        description=_ub(desc),
        md5=_ub(md5),
        disposition=None if dsp is None else Disposition(str(dsp[0]), _uparams(dsp[1])),
        language=None if lang is None else tuple(str(tag) for tag in lang),
        location=_ub(loc),
        lines=int(lines),
        children=tuple(_decode(kid) for kid in kids),
        message=None if msg is None else _decode(msg),
        envelope=None if env is None else EnvelopeFields(*(_ub(v) for v in env)),
    )


def dump_tree(tree: Part) -> bytes:
    """Serialise a part tree (compact JSON, UTF-8)."""
    return json.dumps([FORMAT_VERSION, _encode(tree)], separators=(",", ":")).encode("utf-8")


def load_tree(data: bytes) -> Part:
    """Rebuild a part tree from :func:`dump_tree` output; raises :class:`CacheFormatError`."""
    try:
        version, tree = json.loads(data)
        if version != FORMAT_VERSION:
            raise CacheFormatError(f"cache format {version!r}, expected {FORMAT_VERSION}")
        return _decode(tree)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        if isinstance(exc, CacheFormatError):
            raise
        raise CacheFormatError("not a cached part tree") from exc
