"""The two nested grammars of IMAP commands: SEARCH keys (RFC 3501 §6.4.4, RFC 7162
§3.1.5) and FETCH items (RFC 3501 §6.4.5, RFC 3516 §4.2, RFC 7162 §3.1.4).

Both read from a `Lexer` and raise `SyntaxFailure`; nesting (parentheses, OR, NOT) is
limited by MAX_SEARCH_DEPTH so that no input can exhaust the stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from pillarbox.imap import commands as c
from pillarbox.imap.lexer import MAX_NUMBER64, Lexer, SyntaxFailure

# Nesting of "(", OR and NOT in one SEARCH: real clients use a handful; each level is a
# recursion in parser and evaluator (DESIGN: nesting limits in SEARCH and lists).
MAX_SEARCH_DEPTH: Final = 32
# Keys in one SEARCH (and items in one FETCH list): bounds work per command.
MAX_SEARCH_KEYS: Final = 1000
MAX_FETCH_ITEMS: Final = 200
# RFC 3501 §6.4.4: US-ASCII must be supported; RFC 3501 §6.4.4 also names UTF-8... we
# support both (search strings are decoded as UTF-8, a superset of US-ASCII).
SUPPORTED_CHARSETS: Final = frozenset({"US-ASCII", "UTF-8"})

_FLAG_KEYS: Final[dict[bytes, c.SearchKey]] = {
    b"ANSWERED": c.SearchFlag("\\Answered"),
    b"UNANSWERED": c.SearchFlag("\\Answered", present=False),
    b"DELETED": c.SearchFlag("\\Deleted"),
    b"UNDELETED": c.SearchFlag("\\Deleted", present=False),
    b"DRAFT": c.SearchFlag("\\Draft"),
    b"UNDRAFT": c.SearchFlag("\\Draft", present=False),
    b"FLAGGED": c.SearchFlag("\\Flagged"),
    b"UNFLAGGED": c.SearchFlag("\\Flagged", present=False),
    b"SEEN": c.SearchFlag("\\Seen"),
    b"UNSEEN": c.SearchFlag("\\Seen", present=False),
    b"RECENT": c.SearchFlag("\\Recent"),
    b"OLD": c.SearchFlag("\\Recent", present=False),
    b"NEW": c.SearchAnd((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", present=False))),
    b"ALL": c.SearchAll(),
}
_HEADER_KEYS: Final = {b"BCC", b"CC", b"FROM", b"SUBJECT", b"TO"}
_DATE_KEYS: Final = {
    b"BEFORE": (c.DateOp.BEFORE, False),
    b"ON": (c.DateOp.ON, False),
    b"SINCE": (c.DateOp.SINCE, False),
    b"SENTBEFORE": (c.DateOp.BEFORE, True),
    b"SENTON": (c.DateOp.ON, True),
    b"SENTSINCE": (c.DateOp.SINCE, True),
}
_KEY_NAME: Final = re.compile(rb"[A-Za-z]+")
_ENTRY_TYPES: Final = frozenset({"priv", "shared", "all"})


class _SearchParser:
    __slots__ = ("_count", "_lexer")

    def __init__(self, lexer: Lexer) -> None:
        self._lexer = lexer
        self._count = 0

    def keys(self) -> c.SearchKey:
        """search-key *(SP search-key) at the top level."""
        keys = [self.key(0)]
        while self._lexer.skip(b" "):
            keys.append(self.key(0))
        return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))

    def key(self, depth: int) -> c.SearchKey:
        self._count += 1
        if depth > MAX_SEARCH_DEPTH or self._count > MAX_SEARCH_KEYS:
            raise SyntaxFailure("Search too complex")
        lexer = self._lexer
        first = lexer.peek()
        if first == ord("("):
            lexer.expect(b"(")
            keys = [self.key(depth + 1)]
            while not lexer.skip(b")"):
                lexer.sp()
                keys.append(self.key(depth + 1))
            return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))
        if first is not None and (chr(first).isdigit() or first in b"*$"):
            return c.SearchSeq(lexer.sequence_set())
        found = lexer.match(_KEY_NAME)
        if found is None:
            raise SyntaxFailure("Expected a search key")
        return self.named(found.group().upper(), depth)

    def named(self, name: bytes, depth: int) -> c.SearchKey:
        fixed = _FLAG_KEYS.get(name)
        if fixed is not None:
            return fixed
        if name in _DATE_KEYS:
            op, sent = _DATE_KEYS[name]
            self._lexer.sp()
            return c.SearchDate(op, self._lexer.search_date(), sent)
        if name in _HEADER_KEYS:
            return c.SearchHeader(name.decode().lower(), self.text())
        parser = self._ARGUMENT_KEYS.get(name)
        if parser is None:
            raise SyntaxFailure(f"Unknown search key {name.decode()[:20]}")
        return parser(self, depth)

    def text(self) -> str:
        self._lexer.sp()
        raw = self._lexer.astring()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SyntaxFailure("Search string is not valid UTF-8") from None

    def _header(self, _depth: int) -> c.SearchKey:
        self._lexer.sp()
        field = self._lexer.astring("a header field name").decode("ascii", "replace")
        return c.SearchHeader(field.lower(), self.text())

    def _body(self, _depth: int) -> c.SearchKey:
        return c.SearchBody(self.text())

    def _text_key(self, _depth: int) -> c.SearchKey:
        return c.SearchText(self.text())

    def _keyword(self, present: bool) -> c.SearchKey:
        self._lexer.sp()
        return c.SearchFlag(self._lexer.atom("a keyword").decode("ascii"), present)

    def _size(self, larger: bool) -> c.SearchKey:
        self._lexer.sp()
        return c.SearchSize(larger, self._lexer.number())

    def _not(self, depth: int) -> c.SearchKey:
        self._lexer.sp()
        return c.SearchNot(self.key(depth + 1))

    def _or(self, depth: int) -> c.SearchKey:
        self._lexer.sp()
        left = self.key(depth + 1)
        self._lexer.sp()
        return c.SearchOr(left, self.key(depth + 1))

    def _uid(self, _depth: int) -> c.SearchKey:
        self._lexer.sp()
        return c.SearchUid(self._lexer.sequence_set())

    def _modseq(self, _depth: int) -> c.SearchKey:
        """RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer."""
        lexer = self._lexer
        lexer.sp()
        entry = None
        if lexer.peek() == ord('"'):
            name = lexer.string().decode("ascii", "replace")
            lexer.sp()
            kind = lexer.atom("an entry type").decode("ascii").lower()
            if kind not in _ENTRY_TYPES:
                raise SyntaxFailure("Invalid MODSEQ entry type")
            entry = (name, kind)
            lexer.sp()
        return c.SearchModSeq(lexer.number(MAX_NUMBER64), entry)

    _ARGUMENT_KEYS: Final[dict[bytes, Callable[[_SearchParser, int], c.SearchKey]]] = {
        b"HEADER": _header,
        b"BODY": _body,
        b"TEXT": _text_key,
        b"KEYWORD": lambda self, _depth: self._keyword(present=True),
        b"UNKEYWORD": lambda self, _depth: self._keyword(present=False),
        b"LARGER": lambda self, _depth: self._size(larger=True),
        b"SMALLER": lambda self, _depth: self._size(larger=False),
        b"NOT": _not,
        b"OR": _or,
        b"UID": _uid,
        b"MODSEQ": _modseq,
    }


def parse_search(lexer: Lexer) -> c.SearchKey:
    """The search keys of a SEARCH command, up to the end of the command."""
    return _SearchParser(lexer).keys()


# --- FETCH items ------------------------------------------------------------------

_SIMPLE_ITEMS: Final[dict[bytes, c.FetchItem]] = {
    b"ENVELOPE": c.Envelope(),
    b"FLAGS": c.Flags(),
    b"INTERNALDATE": c.InternalDate(),
    b"RFC822": c.Rfc822(),
    b"RFC822.HEADER": c.Rfc822Header(),
    b"RFC822.SIZE": c.Rfc822Size(),
    b"RFC822.TEXT": c.Rfc822Text(),
    b"BODY": c.Body(),
    b"BODYSTRUCTURE": c.BodyStructure(),
    b"UID": c.Uid(),
    b"MODSEQ": c.ModSeq(),
}
# RFC 3501 §6.4.5 macros.
_FAST: Final = (c.Flags(), c.InternalDate(), c.Rfc822Size())
MACROS: Final[dict[bytes, tuple[c.FetchItem, ...]]] = {
    b"FAST": _FAST,
    b"ALL": (*_FAST, c.Envelope()),
    b"FULL": (*_FAST, c.Envelope(), c.Body()),
}
_ITEM_NAME: Final = re.compile(rb"[A-Za-z0-9.]+")
_PART: Final = re.compile(rb"[1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,8})*")
_SPEC_NAME: Final = re.compile(rb"[A-Za-z.]+")
_PARTIAL: Final = re.compile(rb"<([0-9]{1,10})\.([0-9]{1,10})>")
_SPECS: Final = {spec.value.encode(): spec for spec in c.SectionSpec if spec.value}
# RFC 3501 §9: section-part nests at most this deep in practice; MIME trees deeper than
# this are refused by the MIME layer anyway.
MAX_PART_DEPTH: Final = 100


def parse_fetch_items(lexer: Lexer) -> tuple[c.FetchItem, ...]:
    """A macro, one fetch-att, or a parenthesised list of them."""
    if lexer.skip(b"("):
        items = [_fetch_att(lexer)]
        while not lexer.skip(b")"):
            lexer.sp()
            items.append(_fetch_att(lexer))
            if len(items) > MAX_FETCH_ITEMS:
                raise SyntaxFailure("Too many FETCH items")
        return tuple(items)
    found = lexer.match(_ITEM_NAME)
    if found is not None and found.group().upper() in MACROS and lexer.peek() != ord("["):
        return MACROS[found.group().upper()]
    if found is not None:
        return (_fetch_att_named(lexer, found.group().upper()),)
    raise SyntaxFailure("Expected FETCH items")


def _fetch_att(lexer: Lexer) -> c.FetchItem:
    found = lexer.match(_ITEM_NAME)
    if found is None:
        raise SyntaxFailure("Expected a FETCH item")
    return _fetch_att_named(lexer, found.group().upper())


def _fetch_att_named(lexer: Lexer, name: bytes) -> c.FetchItem:
    if lexer.peek() != ord("["):
        item = _SIMPLE_ITEMS.get(name)
        if item is None:
            raise SyntaxFailure(f"Unknown FETCH item {name.decode()[:20]}")
        return item
    lexer.expect(b"[")
    if name in (b"BODY", b"BODY.PEEK"):
        section = _section(lexer)
        return c.BodySection(section, name == b"BODY.PEEK", _partial(lexer))
    if name in (b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE"):
        part = _part_path(lexer)
        lexer.expect(b"]")
        if name == b"BINARY.SIZE":
            return c.BinarySize(part)
        return c.Binary(part, name == b"BINARY.PEEK", _partial(lexer))
    raise SyntaxFailure(f"Unknown FETCH item {name.decode()[:20]}")


def _part_path(lexer: Lexer) -> tuple[int, ...]:
    found = lexer.match(_PART)
    if found is None:
        return ()
    part = tuple(int(n) for n in found.group().split(b"."))
    if len(part) > MAX_PART_DEPTH:
        raise SyntaxFailure("Section part too deep")
    return part


def _section(lexer: Lexer) -> c.Section:
    """RFC 3501 §9 section-spec, after "[" up to and including "]"."""
    part = _part_path(lexer)
    if lexer.skip(b"]"):
        return c.Section(part)
    if part:
        lexer.expect(b".", "a section")
    spec_name = lexer.match(_SPEC_NAME)
    spec = _SPECS.get(spec_name.group().upper()) if spec_name else None
    if spec is None or (spec is c.SectionSpec.MIME and not part):
        raise SyntaxFailure("Invalid section")
    fields: list[str] = []
    if spec in (c.SectionSpec.HEADER_FIELDS, c.SectionSpec.HEADER_FIELDS_NOT):
        lexer.expect(b" (", "a header field list")
        while True:
            fields.append(lexer.astring("a header field name").decode("ascii", "replace"))
            if lexer.skip(b")"):
                break
            lexer.sp()
    lexer.expect(b"]")
    return c.Section(part, spec, tuple(fields))


def _partial(lexer: Lexer) -> tuple[int, int] | None:
    """RFC 3501 §9 "<" number "." nz-number ">"."""
    found = lexer.match(_PARTIAL)
    if found is None:
        if lexer.peek() == ord("<"):
            raise SyntaxFailure("Invalid partial range")
        return None
    origin, length = int(found.group(1)), int(found.group(2))
    if length == 0 or max(origin, length) > 4294967295:
        raise SyntaxFailure("Invalid partial range")
    return (origin, length)
