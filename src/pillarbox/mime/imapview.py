"""IMAP ENVELOPE, BODY and BODYSTRUCTURE as wire bytes (RFC 3501 §7.4.2, RFC 9051 §7.5.2).

The output is built from the part tree alone (no body bytes needed), so it can be computed at
delivery time and cached. String formatting follows the IMAP grammar (RFC 3501 §9 ``string``):
a quoted string when the value is short 7-bit text, a literal otherwise. Display names and
subjects are written "for humans" as Dovecot does: line breaks and runs of white space become one
space, which keeps ENVELOPE on one line without changing what a reader sees.
"""

from __future__ import annotations

import re
from typing import Final

from pillarbox.mime.address import (
    MAX_ADDRESSES,
    MISSING_DOMAIN,
    MISSING_MAILBOX,
    Address,
    Group,
    parse_address_list,
    simple_mailboxes,
)
from pillarbox.mime.headers import ContentType, Params, register_cache
from pillarbox.mime.parts import EnvelopeFields, Part

NIL: Final = b"NIL"
# Dovecot writes a quoted string with at most this many backslash escapes, else a literal.
MAX_QUOTED_ESCAPES: Final = 4
# RFC 2045 §5.2 default charset, written when a text part names none.
DEFAULT_CHARSET: Final = b'"charset" "us-ascii"'
# RFC 3501 §7.4.2: a multipart needs at least one body; an empty one is shown as this part.
EMPTY_BODY: Final = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
EMPTY_BODYSTRUCTURE: Final = (
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
)

# Subtypes of "message" whose BODYSTRUCTURE carries envelope and body (RFC 3501 / RFC 9051).
MESSAGE_TYPES_REV1: Final = frozenset({"rfc822"})
MESSAGE_TYPES_REV2: Final = frozenset({"rfc822", "global"})

_NEEDS_LITERAL_RE: Final = re.compile(rb"[\r\n\x80-\xff\x00]")
_ESCAPE_RE: Final = re.compile(rb'(["\\])')


def literal(value: bytes) -> bytes:
    """RFC 3501 §4.3: ``{n}CRLF`` followed by the octets."""
    return b"{%d}\r\n%s" % (len(value), value)


# Bytes that keep a value from being written as a plain quoted string (_NEEDS_LITERAL_RE and
# the two that need a backslash).
_NOT_PLAIN: Final = bytes(range(0x80, 0x100)) + b'\x00\r\n"\\'


def astring(value: bytes) -> bytes:
    """A string (RFC 3501 §4.3): quoted when possible, otherwise a literal."""
    if len(value.translate(None, _NOT_PLAIN)) == len(value):
        return b'"' + value + b'"'
    if _NEEDS_LITERAL_RE.search(value):
        return literal(value)
    escapes = value.count(b'"') + value.count(b"\\")
    if escapes > MAX_QUOTED_ESCAPES:
        return literal(value)
    if escapes:
        value = _ESCAPE_RE.sub(rb"\\\1", value)
    return b'"' + value + b'"'


def nstring(value: bytes | None) -> bytes:
    """``nstring`` (RFC 3501 §9): NIL or a string."""
    return NIL if value is None else astring(value)


_CRLF_RE: Final = re.compile(rb"[\r\n]")


def nstring_nolf(value: bytes | None) -> bytes:
    """An nstring with CR and LF removed: RFC 5322 §2.2.3 unfolding of a raw field value."""
    if value is None:
        return NIL
    if len(value.translate(None, _NOT_PLAIN)) == len(value):  # no CR/LF, nothing to quote
        return b'"' + value + b'"'
    return astring(_CRLF_RE.sub(b"", value))


# Tab, CR and LF are shown as a space (then runs of spaces as one); NUL as 0x80, which makes
# the value a literal.
_HUMAN_SPACES: Final = bytes.maketrans(b"\t\r\n\x00", b"   \x80")
# Printable US-ASCII words without a quote or backslash, one space apart: text that
# string_for_humans writes unchanged as a quoted string.
_PLAIN_CHAR: Final = rb"[!#-\[\]-~]"
_HUMAN_PLAIN: Final = _PLAIN_CHAR + rb"++(?: " + _PLAIN_CHAR + rb"++)*+"
_HUMAN_PLAIN_RE: Final = re.compile(_HUMAN_PLAIN)


def string_for_humans(value: bytes) -> bytes:
    """A string with white-space runs made one space and the ends trimmed."""
    if _HUMAN_PLAIN_RE.fullmatch(value) is not None:
        return b'"' + value + b'"'
    # Byte translations, not regexes: a hostile field can be long (RFC 5322 sets no limit).
    clean = value.translate(_HUMAN_SPACES)
    while clean.find(b"  ") >= 0:
        clean = clean.replace(b"  ", b" ")
    clean = clean.strip(b" ")
    plain = len(value.translate(None, _NOT_PLAIN)) == len(value)
    if clean == value and plain:
        return b'"' + value + b'"'
    if not clean:
        return b'""'
    return literal(clean)


# --- ENVELOPE -------------------------------------------------------------------------------


def _address(addr: Address) -> bytes:
    name = NIL if addr.name is None else string_for_humans(addr.name)
    # RFC 3501 §7.4.2: a NIL host marks a group, so a missing part gets a placeholder.
    mailbox = addr.mailbox or MISSING_MAILBOX
    host = addr.host or MISSING_DOMAIN
    return b"(%s %s %s %s)" % (name, nstring(addr.route), astring(mailbox), astring(host))


def _simple_address(name: bytes | None, mailbox: bytes, host: bytes) -> bytes:
    display = NIL if name is None else string_for_humans(name)
    return b"(%s NIL %s %s)" % (display, astring(mailbox), astring(host))


# The plainest address lists, a subset of what address.simple_mailboxes takes: every local
# part, domain and display name is printable US-ASCII that needs no quoting, names are words
# one space apart (or a quoted string of such words without " . "). For these the ENVELOPE
# addresses are the pieces themselves in quotes, so one findall gives them all.
_ADDR_CHAR: Final = rb"[!#-'*+\--9=?A-Z^-~]"  # RFC 5322 atext and ".", printable US-ASCII
_NAME_CHAR: Final = rb"[!#-'*+\-/-9=?A-Z^-~]"  # the same without "."
_FWS: Final = rb"[ \t\r\n]*+"
_ADDR_SPEC: Final = rb"(" + _ADDR_CHAR + rb"++)@(" + _ADDR_CHAR + rb"++)"
_PLAIN_ITEM: Final = (
    _FWS
    + rb"(?:"
    + _ADDR_SPEC
    + rb"|(?:("
    + _NAME_CHAR
    + rb"++(?: "
    + _NAME_CHAR
    + rb'++)*+)|("(?:'
    + _PLAIN_CHAR
    + rb"++(?: (?!\. )"
    + _PLAIN_CHAR
    + rb'++)*+)?+"))?'
    + _FWS
    + rb"<"
    + _ADDR_SPEC
    + rb">)"
)
_PLAIN_ITEM_RE: Final = re.compile(_PLAIN_ITEM)
_PLAIN_ONE_RE: Final = re.compile(_PLAIN_ITEM + _FWS + rb",?")
_PLAIN_LIST_RE: Final = re.compile(_PLAIN_ITEM + _FWS + rb"(?:," + _PLAIN_ITEM + _FWS + rb")*+,?")


_FEW_ADDRESSES_BYTES: Final = 4 * MAX_ADDRESSES


def _plain_address(
    local: bytes | None,
    host: bytes | None,
    words: bytes | None,
    quoted: bytes | None,
    angle_local: bytes | None,
    angle_host: bytes | None,
) -> bytes:
    """One ENVELOPE address from the groups of _PLAIN_ITEM (unmatched ones None or empty)."""
    if local:
        return b'(NIL NIL "%s" "%s")' % (local, host)
    name = quoted or (b'"' + words + b'"' if words else NIL)
    return b'(%s NIL "%s" "%s")' % (name, angle_local, angle_host)


def _plain_address_list(raw: bytes) -> bytes | None:
    """address_list of ``raw`` when it is a plain list (see _PLAIN_ITEM), else None."""
    one = _PLAIN_ONE_RE.fullmatch(raw)  # most lists hold one address
    if one is not None:
        return b"(" + _plain_address(*one.groups()) + b")"
    if _PLAIN_LIST_RE.fullmatch(raw) is None:
        return None
    return b"(" + b"".join([_plain_address(*item) for item in _PLAIN_ITEM_RE.findall(raw)]) + b")"


def address_list(raw: bytes | None) -> bytes:
    """An ENVELOPE address list; groups use the RFC 3501 §7.4.2 start/end markers."""
    if raw is None:
        return NIL
    # Each plain item holds one "@" and at least 4 bytes: short lists are within MAX_ADDRESSES.
    few = len(raw) < _FEW_ADDRESSES_BYTES or raw.count(b"@") <= MAX_ADDRESSES
    plain = _plain_address_list(raw) if few else None
    if plain is not None:
        return plain
    simple = simple_mailboxes(raw)
    if simple is not None:
        return b"(" + b"".join(_simple_address(*item) for item in simple) + b")"
    out: list[bytes] = []
    for item in parse_address_list(raw):
        if isinstance(item, Group):
            out.append(b"(NIL NIL %s NIL)" % astring(item.name))
            out.extend(_address(member) for member in item.members)
            out.append(b"(NIL NIL NIL NIL)")
        else:
            out.append(_address(item))
    return b"(" + b"".join(out) + b")" if out else NIL


def envelope(fields: EnvelopeFields) -> bytes:
    """RFC 3501 §7.4.2 ENVELOPE, without the surrounding parentheses' keyword.

    Sender and Reply-To default to From when absent (RFC 3501 §7.4.2).
    """
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = fields.values()
    from_list = NIL if from_ is None else address_list(from_)
    sender_list = address_list(sender) if sender else NIL
    reply_list = address_list(reply_to) if reply_to else NIL
    # Absent fields are NIL without a call (most messages have no Cc, Bcc or In-Reply-To).
    items = (
        NIL if date is None else nstring_nolf(date),
        NIL if subject is None else string_for_humans(subject),
        from_list,
        from_list if sender_list == NIL else sender_list,
        from_list if reply_list == NIL else reply_list,
        NIL if to is None else address_list(to),
        NIL if cc is None else address_list(cc),
        NIL if bcc is None else address_list(bcc),
        NIL if in_reply_to is None else nstring_nolf(in_reply_to),
        NIL if message_id is None else nstring_nolf(message_id),
    )
    return b"(" + b" ".join(items) + b")"


def message_envelope(tree: Part) -> bytes:
    """ENVELOPE of a parsed message (its root part)."""
    return envelope(tree.envelope or EnvelopeFields())


# --- BODY / BODYSTRUCTURE ---------------------------------------------------------------------


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


# Words that BODYSTRUCTURE writes in nearly every answer (types, parameter names, charsets,
# encodings, dispositions), quoted once here instead of once per part.
_COMMON_WORDS: Final = (
    *("text", "plain", "html", "calendar", "enriched", "rfc822-headers", "csv", "xml", "x-vcard"),
    *("multipart", "mixed", "alternative", "related", "signed", "encrypted", "report", "digest"),
    *("message", "rfc822", "global", "delivery-status", "disposition-notification"),
    *("application", "octet-stream", "pdf", "pkcs7-signature", "pgp-signature", "zip", "json"),
    *("image", "png", "jpeg", "gif", "audio", "video", "TEXT", "PLAIN", "HTML", "MULTIPART"),
    *("MIXED", "ALTERNATIVE", "RELATED", "Text", "Plain", "Html", "Multipart", "Mixed"),
    *("Alternative", "Related", "charset", "boundary", "name", "filename", "format", "delsp"),
    *("type", "start", "protocol", "micalg", "report-type", "method", "size", "reply-type"),
    *("creation-date", "modification-date", "utf-8", "UTF-8", "us-ascii", "US-ASCII"),
    *("iso-8859-1", "ISO-8859-1", "iso-8859-15", "ISO-8859-15", "windows-1252", "Windows-1252"),
    *("flowed", "fixed", "yes", "no", "7bit", "8bit", "binary", "base64", "quoted-printable"),
    *("7BIT", "8BIT", "BASE64", "QUOTED-PRINTABLE", "Base64", "attachment", "inline"),
)
_QUOTED_WORDS: Final = {word: astring(_text(word)) for word in _COMMON_WORDS}


def _quote(value: str) -> bytes:
    """astring (RFC 3501 §4.3) of header text."""
    quoted = _QUOTED_WORDS.get(value)
    return astring(_text(value)) if quoted is None else quoted


_NIL_PARAMS_WITH_CHARSET: Final = b"(" + DEFAULT_CHARSET + b")"


# The bytes that keep a word from being written as a plain quoted string (astring), once it
# is known to be US-ASCII.
_NOT_PLAIN_ASCII: Final = b'"\\\r\n\x00'


# A parameter value that is written as a plain quoted string (astring) as it is: ASCII, and no
# quote, backslash, CR, LF or NUL.
_PLAIN_PARAM_RE: Final = re.compile('[^"\\\\\r\n\x00\x80-\U0010ffff]*+')

_PAIR_GLUE: Final = '" "'.join


def _params(params: Params, default_charset: bool) -> bytes:
    if not params:
        return _NIL_PARAMS_WITH_CHARSET if default_charset else NIL
    # 'name" "value" "name" "value': plain when US-ASCII and its only quotes are the 2 * (2n - 1)
    # put between the words. (Byte methods: a regex search over the words costs more.)
    text = _PAIR_GLUE(map(_PAIR_GLUE, params))
    if text.isascii():
        data = text.encode("ascii")
        if len(data) - len(data.translate(None, _NOT_PLAIN_ASCII)) == 4 * len(params) - 2:
            if default_charset and not _has_charset(params):
                return b'("' + data + b'" ' + DEFAULT_CHARSET + b")"
            return b'("' + data + b'")'
    known = _QUOTED_WORDS.get
    items = [
        (known(name) or _quote(name)) + b" " + (known(value) or _quote(value))
        for name, value in params
    ]
    if default_charset and not _has_charset(params):
        items.append(DEFAULT_CHARSET)
    return b"(" + b" ".join(items) + b")"


def _has_charset(params: Params) -> bool:
    for name, _ in params:  # noqa: SIM110 (any() over a generator costs more for a few pairs)
        if name == "charset" or name.lower() == "charset":
            return True
    return False


_NO_EXTENSIONS: Final = b"NIL NIL NIL"


def _extension_common(part: Part) -> bytes:
    """body-fld-dsp SP body-fld-lang SP body-fld-loc (RFC 3501 §9 body-ext-1part)."""
    dsp = part.disposition
    if dsp is None and not part.language and part.location is None:
        return _NO_EXTENSIONS
    if dsp is None:
        disposition = NIL
    else:
        disposition = b"(%s %s)" % (_quote(dsp.kind), _params(dsp.params, False))
    if part.language:
        language = b"(" + b" ".join(_quote(tag) for tag in part.language) + b")"
    else:
        language = NIL
    return b" ".join((disposition, language, nstring_nolf(part.location)))


def _encapsulated(part: Part, extended: bool, rev2: bool) -> bytes:
    """RFC 3501 §7.4.2: message/rfc822 adds the envelope, the body structure and the line count
    of the encapsulated message (RFC 9051 §7.5.2: message/global too). When the body could not
    be parsed (not 7bit/8bit/binary) an empty message stands in."""
    if part.message is None:
        inner = envelope(EnvelopeFields()), EMPTY_BODYSTRUCTURE if extended else EMPTY_BODY
    else:
        inner = message_envelope(part.message), body_structure(part.message, extended, rev2)
    return b" %s %s %d" % (*inner, part.lines)


# The "(type subtype (params)" start of a leaf's BODYSTRUCTURE by its ContentType object: the
# parser hands out one object per distinct cached value, so the few common ones are quoted once.
# Keyed by id(); the entry keeps its object alive, so an id is never reused while cached. Our
# own bound on entries (emptied when full).
LEAF_PREFIX_CACHE_ENTRIES: Final = 512
_leaf_prefixes: dict[int, tuple[ContentType, bytes]] = register_cache({})


def _leaf_prefix(ctype: ContentType) -> bytes:
    """``(type subtype (params)`` of a leaf (RFC 3501 §9 body-type-basic / body-type-text)."""
    cached = _leaf_prefixes.get(id(ctype))
    if cached is not None and cached[0] is ctype:
        return cached[1]
    main, sub = ctype.written
    known = _QUOTED_WORDS.get
    prefix = b"(%s %s %s" % (
        known(main) or _quote(main),
        known(sub) or _quote(sub),
        _params(ctype.params, ctype.maintype == "text"),
    )
    if len(_leaf_prefixes) >= LEAF_PREFIX_CACHE_ENTRIES:
        _leaf_prefixes.clear()
    _leaf_prefixes[id(ctype)] = (ctype, prefix)
    return prefix


def _leaf(part: Part, extended: bool, rev2: bool) -> bytes:
    ctype = part.content_type
    cached = _leaf_prefixes.get(id(ctype))  # (_leaf_prefix's cache, without the call)
    encoding = part.encoding
    fields = (
        cached[1] if cached is not None and cached[0] is ctype else _leaf_prefix(ctype),
        NIL if part.content_id is None else nstring_nolf(part.content_id),
        NIL if part.description is None else nstring_nolf(part.description),
        (_QUOTED_WORDS.get(encoding) or _quote(encoding)) if encoding else b'"7bit"',
        part.body_end - part.body_start,
    )
    if ctype.maintype == "text":
        # RFC 3501 §7.4.2: size in text lines
        if (  # nothing for the extension fields: md5, disposition, language, location
            extended
            and part.md5 is None
            and part.disposition is None
            and not part.language
            and part.location is None
        ):
            return b"%s %s %s %s %d %d NIL NIL NIL NIL)" % (*fields, part.lines)
        tail = b" %d" % part.lines
    elif ctype.maintype == "message" and (
        ctype.subtype in (MESSAGE_TYPES_REV2 if rev2 else MESSAGE_TYPES_REV1)
    ):
        tail = _encapsulated(part, extended, rev2)
    else:
        tail = b""
    head = b"%s %s %s %s %d" % fields
    if not extended:
        return head + tail + b")"
    md5 = NIL if part.md5 is None else nstring_nolf(part.md5)
    return b"%s%s %s %s)" % (head, tail, md5, _extension_common(part))


def _children(part: Part, extended: bool, rev2: bool, out: list[bytes]) -> list[bytes]:
    """The BODYSTRUCTURE of a multipart's children appended to ``out`` in pieces: a nested
    multipart appends its own children to the same list, so however deep the nesting, each
    piece is copied once (by the outermost join) instead of once per level."""
    append = out.append
    for child in part.children:  # (the dispatch of body_structure, without a call per leaf)
        if child.content_type.maintype != "multipart":
            append(_leaf(child, extended, rev2))
        elif child.children:
            append(b"(")
            _children(child, extended, rev2, out)
            append(_multipart_tail(child, extended))
        else:
            append(_multipart(child, extended, rev2))
    return out


def _multipart_tail(part: Part, extended: bool) -> bytes:
    """What follows a multipart's bodies: its subtype, then (``extended``) its parameters and
    the extension fields (RFC 3501 §9 body-type-mpart, body-ext-mpart), and the ")"."""
    ctype = part.content_type
    subtype = _QUOTED_WORDS.get(ctype.written[1]) or _quote(ctype.written[1])
    if not extended:
        return b" %s)" % subtype
    params = ctype.params
    if len(params) == 1 and _PLAIN_PARAM_RE.fullmatch(params[0][1]):  # the usual boundary=...
        name, value = params[0]
        params_text = b'(%s "%s")' % (_QUOTED_WORDS.get(name) or _quote(name), value.encode())
    else:
        params_text = _params(params, False)
    if part.disposition is None and not part.language and part.location is None:
        return b" %s %s NIL NIL NIL)" % (subtype, params_text)
    return b" %s %s %s)" % (subtype, params_text, _extension_common(part))


def _multipart(part: Part, extended: bool, rev2: bool) -> bytes:
    if part.children:  # (the list goes as soon as it is joined: no more memory than before)
        inner = b"".join(_children(part, extended, rev2, []))
    else:
        inner = EMPTY_BODYSTRUCTURE if extended else EMPTY_BODY
    return b"(%s%s" % (inner, _multipart_tail(part, extended))


def body_structure(part: Part, extended: bool = True, rev2: bool = False) -> bytes:
    """BODYSTRUCTURE (``extended``) or BODY of a part (RFC 3501 §7.4.2).

    ``rev2`` selects IMAP4rev2 (RFC 9051 §7.5.2), where message/global is described like
    message/rfc822; IMAP4rev1 (RFC 3501) knows only message/rfc822.
    """
    if part.content_type.maintype == "multipart":
        return _multipart(part, extended, rev2)
    return _leaf(part, extended, rev2)
