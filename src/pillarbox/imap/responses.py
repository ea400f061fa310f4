"""IMAP server responses as typed values, and the writers for IMAP data (RFC 3501 §7, §9).

Every response has `to_bytes()`; `ImapEngine.send` calls it and keeps the protocol state
in step. Data values are written with the helpers here so that strings that cannot be
quoted (CR, LF, NUL, 8-bit, long) always go out as literals:

    Tagged("a1", Status.OK, "SELECT completed", code=READ_WRITE).to_bytes()
        -> b"a1 OK [READ-WRITE] SELECT completed\\r\\n"
    FetchData(12, ((b"UID", b"5"), (b"FLAGS", flag_list(["\\\\Seen"])))).to_bytes()
        -> b"* 12 FETCH (UID 5 FLAGS (\\\\Seen))\\r\\n"
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox.imap import utf7

CRLF: Final = b"\r\n"
# A string longer than this goes out as a literal even if it could be quoted: keeps
# responses lines short for clients with line buffers (RFC 3501 §4.3 lets either form be
# used for any string).
MAX_QUOTED: Final = 1024

# RFC 3501 §9 QUOTED-CHAR: any 7-bit TEXT-CHAR (no NUL, CR, LF); `\` and `"` escaped.
_QUOTABLE: Final = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_QUOTE_SPECIALS: Final = re.compile(rb'(["\\])')
# RFC 3501 §9 ASTRING-CHAR: ATOM-CHAR (no atom-specials) or "]".
_ASTRING_BYTES: Final = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c-\x7e]+")


class Status(enum.Enum):
    """RFC 3501 §7.1 status responses."""

    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


@dataclass(frozen=True, slots=True)
class Code:
    """A response code: `[NAME]` or `[NAME data]` (RFC 3501 §7.1, RFC 5530)."""

    name: str
    data: bytes = b""

    def to_bytes(self) -> bytes:
        if self.data:
            return b"[" + self.name.encode("ascii") + b" " + self.data + b"]"
        return b"[" + self.name.encode("ascii") + b"]"


# Codes without data (RFC 3501 §7.1, RFC 4469, RFC 5530, RFC 7162, RFC 3516).
ALERT: Final = Code("ALERT")
PARSE: Final = Code("PARSE")
READ_ONLY: Final = Code("READ-ONLY")
READ_WRITE: Final = Code("READ-WRITE")
TRYCREATE: Final = Code("TRYCREATE")
NOMODSEQ: Final = Code("NOMODSEQ")
TOOBIG: Final = Code("TOOBIG")
OVERQUOTA: Final = Code("OVERQUOTA")
AUTHENTICATIONFAILED: Final = Code("AUTHENTICATIONFAILED")
AUTHORIZATIONFAILED: Final = Code("AUTHORIZATIONFAILED")
UNAVAILABLE: Final = Code("UNAVAILABLE")
NONEXISTENT: Final = Code("NONEXISTENT")
ALREADYEXISTS: Final = Code("ALREADYEXISTS")
CANNOT: Final = Code("CANNOT")
LIMIT: Final = Code("LIMIT")
INUSE: Final = Code("INUSE")
SERVERBUG: Final = Code("SERVERBUG")
CLIENTBUG: Final = Code("CLIENTBUG")
PRIVACYREQUIRED: Final = Code("PRIVACYREQUIRED")
CONTACTADMIN: Final = Code("CONTACTADMIN")
NOPERM: Final = Code("NOPERM")
EXPUNGEISSUED: Final = Code("EXPUNGEISSUED")
CORRUPTION: Final = Code("CORRUPTION")
USEATTR: Final = Code("USEATTR")  # RFC 6154 §6
UNKNOWN_CTE: Final = Code("UNKNOWN-CTE")  # RFC 3516 §4.3
CLOSED: Final = Code("CLOSED")  # RFC 7162 §3.2.11


def uidnext(n: int) -> Code:
    return Code("UIDNEXT", b"%d" % n)


def uidvalidity(n: int) -> Code:
    return Code("UIDVALIDITY", b"%d" % n)


def unseen(n: int) -> Code:
    return Code("UNSEEN", b"%d" % n)


def highestmodseq(n: int) -> Code:
    return Code("HIGHESTMODSEQ", b"%d" % n)


def permanentflags(flags: Iterable[str]) -> Code:
    return Code("PERMANENTFLAGS", flag_list(flags))


def capability_code(capabilities: Iterable[str]) -> Code:
    return Code("CAPABILITY", " ".join(capabilities).encode("ascii"))


def badcharset(charsets: Iterable[str]) -> Code:
    return Code("BADCHARSET", b"(" + " ".join(charsets).encode("ascii") + b")")


def appenduid(validity: int, uids: str) -> Code:
    """RFC 4315 §3 APPENDUID; `uids` from `sequence.format_set`."""
    return Code("APPENDUID", b"%d %s" % (validity, uids.encode("ascii")))


def copyuid(validity: int, source: str, destination: str) -> Code:
    """RFC 4315 §3 COPYUID; sets from `sequence.format_ordered` so members correspond."""
    return Code("COPYUID", b"%d %s %s" % (validity, source.encode(), destination.encode()))


def modified(numbers: str) -> Code:
    """RFC 7162 §3.1.3 MODIFIED sequence-set."""
    return Code("MODIFIED", numbers.encode("ascii"))


# --- responses -------------------------------------------------------------------


def _status_line(prefix: bytes, status: Status, code: Code | None, text: str) -> bytes:
    # RFC 3501 §9 resp-text: text is 1*TEXT-CHAR; never let CR/LF through.
    clean = text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")
    middle = code.to_bytes() + b" " if code is not None else b""
    return b"".join((prefix, status.value.encode(), b" ", middle, clean or b"done", CRLF))


@dataclass(frozen=True, slots=True)
class Tagged:
    """`tag OK/NO/BAD [code] text`: the completion of the command with this tag."""

    tag: str
    status: Status
    text: str
    code: Code | None = None

    def to_bytes(self) -> bytes:
        return _status_line(self.tag.encode("ascii") + b" ", self.status, self.code, self.text)


@dataclass(frozen=True, slots=True)
class UntaggedStatus:
    """`* OK/NO/BAD/PREAUTH/BYE [code] text` (greeting, BYE, warnings)."""

    status: Status
    text: str
    code: Code | None = None

    def to_bytes(self) -> bytes:
        return _status_line(b"* ", self.status, self.code, self.text)


@dataclass(frozen=True, slots=True)
class Untagged:
    """`* data`: data already in wire form (use the helpers below to build it)."""

    data: bytes

    def to_bytes(self) -> bytes:
        return b"".join((b"* ", self.data, CRLF))


@dataclass(frozen=True, slots=True)
class FetchData:
    """`* n FETCH (name value ...)`: items are (name, wire value) pairs, e.g.
    (b"UID", b"5"), (b"BODY[TEXT]", literal(text)). One join builds the whole line."""

    seq: int
    items: tuple[tuple[bytes, bytes], ...]

    def to_bytes(self) -> bytes:
        parts = [b"* %d FETCH (" % self.seq]
        for index, (name, value) in enumerate(self.items):
            if index:
                parts.append(b" ")
            parts += (name, b" ", value)
        parts.append(b")\r\n")
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Lines:
    """Untagged responses already in wire form, CRLF included: the FETCH lines of many
    messages written as one (a FETCH of 50 headers is one join, not 50 objects)."""

    data: bytes

    def to_bytes(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class Continuation:
    """`+ text`: go on (literal data, IDLE) or a SASL challenge (base64 in `text`)."""

    text: str = "Ready"

    def to_bytes(self) -> bytes:
        return b"+ " + self.text.encode("ascii", "replace") + CRLF


Response = Tagged | UntaggedStatus | Untagged | FetchData | Lines | Continuation

# --- data values (RFC 3501 §4, §9) ------------------------------------------------


def quoted(value: bytes) -> bytes:
    """A quoted string; only for values `can_quote` accepts."""
    return b'"' + _QUOTE_SPECIALS.sub(rb"\\\1", value) + b'"'


def literal(value: bytes) -> bytes:
    """A literal: `{n}` CRLF and the octets (RFC 3501 §4.3)."""
    return b"{%d}\r\n%s" % (len(value), value)


def can_quote(value: bytes) -> bool:
    return len(value) <= MAX_QUOTED and _QUOTABLE.fullmatch(value) is not None


def string(value: bytes | str) -> bytes:
    """A string as quoted when possible, else as a literal."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return quoted(value) if can_quote(value) else literal(value)


def nstring(value: bytes | str | None) -> bytes:
    return b"NIL" if value is None else string(value)


def astring(value: bytes | str) -> bytes:
    """An atom when the value is all ASTRING-CHARs (and not NIL), else a string."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if _ASTRING_BYTES.fullmatch(value) and value.upper() != b"NIL":
        return value
    return string(value)


def number(value: int) -> bytes:
    return b"%d" % value


def plist(items: Iterable[bytes]) -> bytes:
    """A parenthesised list of already-written values."""
    return b"(" + b" ".join(items) + b")"


def flag_list(flags: Iterable[str]) -> bytes:
    """`(\\Seen $Label1)`: flags are atoms (the parser only accepts atom flags)."""
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def mailbox(name: str) -> bytes:
    """A mailbox name: modified UTF-7 (RFC 3501 §5.1.3), as an atom or quoted string."""
    return astring(utf7.encode(name))


_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def date_time(value: datetime.datetime) -> bytes:
    """RFC 3501 §9 date-time, e.g. `"17-Jul-1996 02:44:25 -0700"` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    offset = value.utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    text = (
        f'"{value.day:2d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign}{hours:02d}{mins:02d}"'
    )
    return text.encode("ascii")


# --- common untagged data (RFC 3501 §7.2-§7.4) ----------------------------------


def exists(count: int) -> Untagged:
    return Untagged(b"%d EXISTS" % count)


def recent(count: int) -> Untagged:
    return Untagged(b"%d RECENT" % count)


def expunge(seq: int) -> Untagged:
    return Untagged(b"%d EXPUNGE" % seq)


def flags(flag_names: Iterable[str]) -> Untagged:
    return Untagged(b"FLAGS " + flag_list(flag_names))


def capability(capabilities: Iterable[str]) -> Untagged:
    return Untagged(b"CAPABILITY " + " ".join(capabilities).encode("ascii"))


def enabled(capabilities: Iterable[str]) -> Untagged:
    """RFC 5161 §3.2."""
    return Untagged(" ".join(["ENABLED", *capabilities]).encode("ascii"))


def list_entry(
    attributes: Iterable[str],
    separator: str | None,
    name: str,
    kind: bytes = b"LIST",
    childinfo: Sequence[str] = (),
) -> Untagged:
    """`* LIST (\\HasNoChildren) "/" INBOX` (or LSUB with kind=b"LSUB").

    `childinfo`: the selection options of RFC 5258 §3.5, sent as the extended data
    item `("CHILDINFO" ("SUBSCRIBED"))` (§6 mbox-list-extended, options always quoted).
    """
    delimiter = b"NIL" if separator is None else quoted(separator.encode("ascii"))
    data = b" ".join((kind, flag_list(attributes), delimiter, mailbox(name)))
    if childinfo:
        options = b" ".join(quoted(option.encode("ascii")) for option in childinfo)
        data += b' ("CHILDINFO" (' + options + b"))"
    return Untagged(data)


def status(name: str, items: Sequence[tuple[str, int]]) -> Untagged:
    """RFC 3501 §7.2.4 `* STATUS name (MESSAGES 3 UIDNEXT 9)`."""
    values = b" ".join(b"%s %d" % (item.encode("ascii"), value) for item, value in items)
    return Untagged(b"STATUS " + mailbox(name) + b" (" + values + b")")


def search(numbers: Iterable[int], modseq: int | None = None) -> Untagged:
    """RFC 3501 §7.2.5 `* SEARCH 2 3 6`, RFC 7162 §3.1.5 `(MODSEQ n)` when asked."""
    # One C-level map and join: a SEARCH UNSEEN of a big mailbox names thousands.
    data = " ".join(["SEARCH", *map(str, numbers)]).encode("ascii")
    if modseq is not None:
        data += b" (MODSEQ %d)" % modseq
    return Untagged(data)


def esearch(tag: str, uid: bool, results: Sequence[tuple[str, bytes]]) -> Untagged:
    """RFC 4731 §3.1 `* ESEARCH (TAG "a1") UID MIN 2 COUNT 3`."""
    parts = [b"ESEARCH (TAG " + quoted(tag.encode("ascii")) + b")"]
    if uid:
        parts.append(b"UID")
    parts += (b"%s %s" % (name.encode("ascii"), value) for name, value in results)
    return Untagged(b" ".join(parts))


def id_response(params: Sequence[tuple[str, str | None]] | None) -> Untagged:
    """RFC 2971 §3.2 `* ID ("name" "Pillarbox")` or `* ID NIL`."""
    if params is None:
        return Untagged(b"ID NIL")
    return Untagged(b"ID " + plist(string(k) + b" " + nstring(v) for k, v in params))


def namespace(personal: Sequence[tuple[str, str]] | None) -> Untagged:
    """RFC 2342 §5 `* NAMESPACE (("" "/")) NIL NIL`: the personal namespace only."""
    if not personal:
        return Untagged(b"NAMESPACE NIL NIL NIL")
    entries = b"".join(
        b"(" + string(prefix) + b" " + quoted(sep.encode("ascii")) + b")"
        for prefix, sep in personal
    )
    return Untagged(b"NAMESPACE (" + entries + b") NIL NIL")
