"""RFC 5322 §3.4 address lists: mailboxes, groups, quoted local parts, comments, routes.

Used by IMAP ENVELOPE, by ``sendmail -t`` (recipients from To/Cc/Bcc) and by delivery. The
parser is tolerant (RFC 5322 §4.4 obsolete forms, missing brackets, stray specials) and never
raises; UTF-8 in any part is kept (RFC 6532 §3.2) and :meth:`Address.host_ascii` gives the IDNA
form of a domain for SMTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pillarbox.mime.headers import decode_words, to_text

# Our own bound: addresses parsed out of one header value.
MAX_ADDRESSES: Final = 10000

# What Dovecot and other IMAP servers put where a domain is missing (RFC 3501 §7.4.2 asks for a
# host name; an address without one would otherwise look like a group marker).
MISSING_DOMAIN: Final = b"MISSING_DOMAIN"
MISSING_MAILBOX: Final = b"MISSING_MAILBOX"


# RFC 5322 §3.2.3 dot-atom (atext plus UTF-8, RFC 6532 §3.2).
_DOT_ATOM_RE: Final = re.compile(
    r"[^\s\x00-\x1f\x7f()<>\[\]:;@\\,.\"]+(?:\.[^\s\x00-\x1f\x7f()<>\[\]:;@\\,.\"]+)*"
)


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox. Fields are raw header bytes (encoded-words are not decoded)."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None

    @property
    def addr_spec(self) -> str:
        """``local@domain`` as text (UTF-8 allowed, RFC 6532 §3.2), quoting the local part
        when it is not a dot-atom (RFC 5322 §3.4.1)."""
        local = to_text(self.mailbox or b"")
        if local and not _DOT_ATOM_RE.fullmatch(local):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'

        return f"{local}@{to_text(self.host)}" if self.host else local

    @property
    def display_name(self) -> str:
        """The display name with RFC 2047 encoded-words decoded."""
        return decode_words(self.name) if self.name else ""

    def host_ascii(self) -> str:
        """The domain in ASCII (IDNA 2003 via the standard codec) for SMTP; unchanged if ASCII."""
        host = to_text(self.host or b"")
        if host.isascii():
            return host
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            return host


@dataclass(frozen=True, slots=True)
class Group:
    """An RFC 5322 §3.4 group: ``name: member, member;``."""

    name: bytes
    members: tuple[Address, ...]


# Tokens of RFC 5322 §3.2: white space, quoted strings, domain literals, specials, atoms.
# Comments are handled apart because they nest.
_TOKEN_RE: Final = re.compile(
    rb"""(?P<ws>[ \t\r\n]+)
    |(?P<quoted>"(?:[^"\\]|\\.)*"?)
    |(?P<literal>\[(?:[^\]\\]|\\.)*\]?)
    |(?P<special>[<>@,;:.])
    |(?P<atom>[^ \t\r\n"()<>@,;:.\[\]]+)
    |(?P<other>.)""",
    re.X | re.S,
)

Token = tuple[str, bytes]


def _skip_comment(raw: bytes, pos: int) -> tuple[bytes, int]:
    depth = 0
    start = pos
    size = len(raw)
    while pos < size:
        char = raw[pos]
        pos += 1
        if char == 0x5C:
            pos += 1
        elif char == 0x28:
            depth += 1
        elif char == 0x29:
            depth -= 1
            if depth == 0:
                return raw[start + 1 : pos - 1], pos
    return raw[start + 1 : size], size  # unclosed comment: it runs to the end


def tokenize(raw: bytes) -> list[Token]:
    """Split a structured header value into tokens; comments become ``("comment", text)``."""
    tokens: list[Token] = []
    pos = 0
    size = len(raw)
    while pos < size:
        if raw[pos] == 0x28:
            text, pos = _skip_comment(raw, pos)
            tokens.append(("comment", text))
            continue
        match = _TOKEN_RE.match(raw, pos)
        if match is None:  # pragma: no cover - the "other" branch matches any byte
            break
        kind = match.lastgroup or "other"
        if kind != "ws":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def _unquote(value: bytes) -> bytes:
    inner = value[1:-1] if len(value) > 1 and value.endswith(b'"') else value[1:]
    return re.sub(rb"\\(.)", rb"\1", inner, flags=re.S)


def _phrase(tokens: list[Token]) -> bytes | None:
    """RFC 5322 §3.2.5: a phrase is words joined by single spaces; quotes are removed."""
    words: list[bytes] = []
    for kind, value in tokens:
        if kind == "quoted":
            words.append(_unquote(value))
        elif kind in ("atom", "other", "literal") or (kind == "special" and value == b"."):
            words.append(value)
    if not words:
        return None
    return b" ".join(words).replace(b" . ", b". ")


def _is_bare_phrase(tokens: list[Token]) -> bool:
    """Two or more words with no "@" and no "." between them cannot be an addr-spec."""
    if any(t == ("special", b"@") for t in tokens):
        return False
    words = [t for t in tokens if t[0] != "comment"]
    return len(words) >= 2 and all(kind in ("atom", "quoted") for kind, _ in words)


class _Parser:
    """Recursive descent over the token list of one header value."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def is_special(self, chars: bytes) -> bool:
        token = self.peek()
        return token is not None and token[0] == "special" and token[1] in chars

    def take_until(self, stops: bytes) -> list[Token]:
        start = self.pos
        while self.pos < len(self.tokens) and not self.is_special(stops):
            self.pos += 1
        return self.tokens[start : self.pos]

    def addr_spec(self, tokens: list[Token]) -> tuple[bytes | None, bytes | None]:
        """Split ``local@domain`` tokens; the local part keeps its quotes (RFC 5322 §3.4.1)."""
        at = max((i for i, t in enumerate(tokens) if t == ("special", b"@")), default=-1)
        local_tokens = tokens if at < 0 else tokens[:at]
        # Dovecot and RFC 3501 clients expect the local part without its quotes.
        local = (
            b"".join(_unquote(v) if k == "quoted" else v for k, v in local_tokens if k != "comment")
            or None
        )
        if at < 0:
            return local, None
        host = b"".join(v for k, v in tokens[at + 1 :] if k != "comment") or None
        return local, host

    def angle(self, name: bytes | None) -> Address:
        self.pos += 1  # "<"
        inner = [t for t in self.take_until(b">") if t != ("special", b"<")]
        if self.is_special(b">"):
            self.pos += 1
        route: bytes | None = None
        colon = next((i for i, t in enumerate(inner) if t == ("special", b":")), -1)
        if colon >= 0:  # RFC 5322 §4.4 obs-route: "@a,@b:" before the addr-spec
            route = b"".join(v for k, v in inner[:colon] if k != "comment") or None
            inner = inner[colon + 1 :]
        local, host = self.addr_spec(inner)
        self.take_until(b",;")
        return Address(name, route, local, host)

    def mailbox(self) -> Address | None:
        before = self.take_until(b"<,;:")
        if self.is_special(b"<"):
            return self.angle(_phrase(before))
        if not before:
            return None
        if _is_bare_phrase(before):  # "Name With No Address": a name, mailbox missing
            return Address(_phrase(before), None, None, None)
        local, host = self.addr_spec(before)
        comments = [v for k, v in before if k == "comment"]
        name = comments[-1] if comments and comments[-1] else None
        return Address(name, None, local, host)

    def group(self, name: bytes) -> Group:
        self.pos += 1  # ":"
        members: list[Address] = []
        while self.pos < len(self.tokens) and not self.is_special(b";"):
            if self.is_special(b",:"):
                self.pos += 1
                continue
            member = self.mailbox()
            if member is not None:
                members.append(member)
        if self.is_special(b";"):
            self.pos += 1
        return Group(name, tuple(members))

    def address_list(self) -> list[Address | Group]:
        out: list[Address | Group] = []
        while self.pos < len(self.tokens) and len(out) < MAX_ADDRESSES:
            if self.is_special(b",;>"):
                self.pos += 1
                continue
            start = self.pos
            before = self.take_until(b"<,;:")
            group_name = _phrase(before)
            if self.is_special(b":") and group_name and ("special", b"@") not in before:
                out.append(self.group(group_name))
                continue
            self.pos = start
            item = self.mailbox()
            if item is not None:
                out.append(item)
            elif self.is_special(b":"):
                self.pos += 1
        return out


# The common shapes of an address list item (RFC 5322 §3.4): ``local@domain``,
# ``Display Name <local@domain>`` and ``"Display Name" <local@domain>``, comma-separated, with
# no comments, groups, routes, domain literals, backslashes, or dots in an unquoted name. For
# such a list the general parser above gives exactly these pieces (the name's words joined by
# one space, RFC 5322 §3.2.5), so one regex per item replaces its token loop. Possessive
# quantifiers keep failed matches linear.
_SPEC_CHARS: Final = rb'[^ \t\r\n"()<>@,;:\[\]\\]++'
_WORD: Final = rb'[^ \t\r\n\x0b\x0c"()<>@,;:.\[\]\\]++'
_WSP: Final = rb"[ \t\r\n]"
_SIMPLE_ITEM_RE: Final = re.compile(
    _WSP
    + rb"*+(?:("
    + _SPEC_CHARS
    + rb")@("
    + _SPEC_CHARS
    + rb")|(?:("
    + _WORD
    + rb"(?:"
    + _WSP
    + rb"++"
    + _WORD
    + rb')*+)|"([^"\\\r\n]*+)")?'
    + _WSP
    + rb"*+<("
    + _SPEC_CHARS
    + rb")@("
    + _SPEC_CHARS
    + rb")>)"
    + _WSP
    + rb"*+(?:,|\Z)"
)

SimpleMailbox = tuple[bytes | None, bytes, bytes]  # display name, local part, domain


def _simple_name(words: bytes | None, quoted: bytes | None) -> bytes | None:
    if words is not None:
        return b" ".join(words.split())
    if quoted is not None:
        return quoted.replace(b" . ", b". ")  # as _phrase does
    return None


def simple_mailboxes(raw: bytes) -> list[SimpleMailbox] | None:
    """(name, local part, domain) of each item when ``raw`` is a list of the common shapes
    above; None when it needs the general parser."""
    out: list[SimpleMailbox] = []
    pos = 0
    size = len(raw)
    while pos < size:
        match = _SIMPLE_ITEM_RE.match(raw, pos)
        if match is None or len(out) >= MAX_ADDRESSES:
            return None
        local, host, words, quoted, angle_local, angle_host = match.groups()
        if local is not None:
            out.append((None, local, host))
        else:
            out.append((_simple_name(words, quoted), angle_local, angle_host))
        pos = match.end()
    return out or None


def parse_address_list(raw: bytes) -> tuple[Address | Group, ...]:
    """Parse an address-list header value (RFC 5322 §3.4); never raises."""
    simple = simple_mailboxes(raw)
    if simple is not None:
        return tuple(Address(name, None, local, host) for name, local, host in simple)
    return tuple(_Parser(tokenize(raw)).address_list())


def mailboxes(raw: bytes) -> tuple[Address, ...]:
    """All mailboxes in an address list, group members included (for ``sendmail -t``)."""
    out: list[Address] = []
    for item in parse_address_list(raw):
        if isinstance(item, Group):
            out.extend(item.members)
        else:
            out.append(item)
    return tuple(out)
