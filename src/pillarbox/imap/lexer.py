"""Tokens of an IMAP command (RFC 3501 §4, §9), read from a framed command.

The engine frames a command into `parts`: text lines (without CRLF) alternating with the
octets of the literals they announce, so `a LOGIN {5}` CRLF `alice` ` secret` CRLF arrives
as [b"a LOGIN {5}", b"alice", b" secret"]. A text part that announces a literal ends with
`{n}`, `{n+}`, `~{n}` or `~{n+}`; the next part is that literal's data.

`Lexer` reads one token at a time; every failure raises `SyntaxFailure` with a message
fit for a client (the parser turns it into BAD).
"""

from __future__ import annotations

import datetime
import re
from typing import Final

from pillarbox.imap import utf7
from pillarbox.imap.sequence import SequenceSet, SequenceSetError

# RFC 3501 §9 ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ].
_ATOM: Final = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+")
# ASTRING-CHAR: ATOM-CHAR or resp-specials ("]").
_ASTRING_ATOM: Final = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c-\x7e]+")
# RFC 3501 §9 list-mailbox: list-char = ATOM-CHAR / list-wildcards / resp-specials.
_LIST_ATOM: Final = re.compile(rb"[\x21\x23-\x27\x2a-\x5b\x5d-\x7a\x7c-\x7e]+")
# RFC 3501 §9 quoted: DQUOTE *QUOTED-CHAR DQUOTE, QUOTED-CHAR escapes only \ and ".
# 8-bit octets are accepted too (clients send UTF-8 search strings quoted; RFC 9051 §4.3).
_QUOTED: Final = re.compile(rb'"((?:[\x01-\x09\x0b\x0c\x0e-\x21\x23-\x5b\x5d-\xff]|\\["\\])*)"')
_UNESCAPE: Final = re.compile(rb'\\(["\\])')
# RFC 3501 §9 literal, RFC 7888 §3 `{n+}`, RFC 3516 §4.1 literal8 `~{n}`.
LITERAL_MARK: Final = re.compile(rb"(~?)\{([0-9]{1,10})(\+?)\}\Z")
_NUMBER: Final = re.compile(rb"[0-9]{1,20}")
# RFC 3501 §9 number: 32-bit unsigned; RFC 7162 §7 mod-sequence-value: 63-bit.
MAX_NUMBER: Final = 4294967295
MAX_NUMBER64: Final = 9223372036854775807


class SyntaxFailure(Exception):
    """The command does not follow the grammar; `args[0]` is the client-facing text."""


class Lexer:
    """A cursor over a framed command's parts."""

    __slots__ = ("_index", "_parts", "_pos", "_text")

    def __init__(self, parts: list[bytes]) -> None:
        if len(parts) % 2 != 1:
            raise ValueError("parts must alternate text and literal data, text first and last")
        self._parts = parts
        self._index = 0
        self._text = parts[0]
        self._pos = 0

    # --- position ---------------------------------------------------------------

    def peek(self) -> int | None:
        """The next byte of the current text part, None at its end."""
        return self._text[self._pos] if self._pos < len(self._text) else None

    def at_end(self) -> bool:
        return self._index == len(self._parts) - 1 and self._pos == len(self._text)

    def at(self, prefix: bytes) -> bool:
        """True if the text continues with `prefix` (ASCII, case-insensitive)."""
        return self._text[self._pos : self._pos + len(prefix)].upper() == prefix.upper()

    def skip(self, prefix: bytes) -> bool:
        """Consume `prefix` (case-insensitive) if it comes next."""
        if self.at(prefix):
            self._pos += len(prefix)
            return True
        return False

    def expect(self, prefix: bytes, what: str | None = None) -> None:
        if not self.skip(prefix):
            raise SyntaxFailure(f"Expected {what or prefix.decode()!s}")

    def sp(self) -> None:
        self.expect(b" ", "a space")

    def end(self) -> None:
        if not self.at_end():
            raise SyntaxFailure("Unexpected extra arguments")

    def match(self, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
        """Match a compiled pattern at the cursor and consume it."""
        found = pattern.match(self._text, self._pos)
        if found is not None:
            self._pos = found.end()
        return found

    # --- tokens -----------------------------------------------------------------

    def atom(self, what: str = "an atom") -> bytes:
        found = self.match(_ATOM)
        if found is None:
            raise SyntaxFailure(f"Expected {what}")
        return found.group()

    def number(self, limit: int = MAX_NUMBER, *, nonzero: bool = False) -> int:
        found = self.match(_NUMBER)
        if found is None:
            raise SyntaxFailure("Expected a number")
        value = int(found.group())
        if value > limit or (nonzero and value == 0):
            raise SyntaxFailure("Number out of range")
        return value

    def literal(self) -> bytes | None:
        """The literal announced here, or None if no literal marker is at the cursor."""
        found = LITERAL_MARK.match(self._text, self._pos)
        if found is None:
            return None
        if found.group(1):
            raise SyntaxFailure("literal8 is not allowed here")
        return self._take_literal()

    def literal8(self) -> bytes | None:
        """A literal or literal8 (RFC 3516 §4.1), for APPEND."""
        if LITERAL_MARK.match(self._text, self._pos) is None:
            return None
        return self._take_literal()

    def _take_literal(self) -> bytes:
        data = self._parts[self._index + 1]
        self._index += 2
        self._text = self._parts[self._index]
        self._pos = 0
        return data

    def quoted(self) -> bytes | None:
        found = self.match(_QUOTED)
        if found is None:
            if self.peek() == ord('"'):
                raise SyntaxFailure("Invalid quoted string")
            return None
        return _UNESCAPE.sub(rb"\1", found.group(1))

    def string(self, what: str = "a string") -> bytes:
        """RFC 3501 §9 string: quoted or literal."""
        value = self.quoted()
        if value is None:
            value = self.literal()
        if value is None:
            raise SyntaxFailure(f"Expected {what}")
        return value

    def astring(self, what: str = "a string") -> bytes:
        """RFC 3501 §9 astring: 1*ASTRING-CHAR or string."""
        if self.peek() == ord("~"):
            self.literal()  # "~{n}" is literal8, never an atom starting with "~"
        found = self.match(_ASTRING_ATOM)
        if found is not None:
            return found.group()
        return self.string(what)

    def nstring(self, what: str = "a string or NIL") -> bytes | None:
        if self.skip(b"NIL"):
            return None
        return self.string(what)

    def list_mailbox(self) -> bytes:
        """RFC 3501 §9 list-mailbox: 1*list-char or string (wildcards allowed)."""
        found = self.match(_LIST_ATOM)
        if found is not None:
            return found.group()
        return self.string("a mailbox pattern")

    def text_until_space(self) -> bytes:
        """The raw bytes up to the next space or the end of the text part."""
        end = self._text.find(b" ", self._pos)
        end = len(self._text) if end < 0 else end
        value = self._text[self._pos : end]
        self._pos = end
        return value

    def rest_of_text(self) -> bytes:
        value = self._text[self._pos :]
        self._pos = len(self._text)
        return value

    # --- typed values (RFC 3501 §9) ---------------------------------------------

    def sequence_set(self, *, allow_saved: bool = True) -> SequenceSet:
        found = self.match(_SEQUENCE)
        if found is None or (found.group() == b"$" and not allow_saved):
            raise SyntaxFailure("Expected a sequence set")
        try:
            return SequenceSet.parse(found.group().decode("ascii"))
        except SequenceSetError as error:
            raise SyntaxFailure("Invalid sequence set") from error

    def mailbox(self) -> str:
        """RFC 3501 §9 mailbox: an astring in modified UTF-7 (§5.1.3); INBOX in any case
        is "INBOX" (§5.1)."""
        name = self.mailbox_text(self.astring("a mailbox name"))
        return "INBOX" if name.upper() == "INBOX" else name

    def mailbox_text(self, raw: bytes) -> str:
        try:
            return utf7.decode(raw)
        except utf7.Utf7Error as error:
            raise SyntaxFailure(f"Invalid mailbox name: {error}") from None

    def flag(self, *, storable: bool = True) -> str:
        """RFC 3501 §9 flag: a system flag (canonical case) or a keyword atom. `storable`
        refuses \\Recent and unknown system flags (RFC 3501 §2.3.2: \\Recent is read-only;
        flag-extension is reserved for future RFCs)."""
        backslash = self.skip(b"\\")
        name = self.atom("a flag").decode("ascii")
        if not backslash:
            return name
        canonical = SYSTEM_FLAGS.get("\\" + name.upper())
        if canonical is None or (storable and canonical == "\\Recent"):
            raise SyntaxFailure(f"Invalid system flag \\{name}")
        return canonical

    def flag_list(self) -> tuple[str, ...]:
        """RFC 3501 §9 flag-list: "(" [flag *(SP flag)] ")"."""
        self.expect(b"(")
        flags: list[str] = []
        while not self.skip(b")"):
            if flags:
                self.sp()
            flags.append(self.flag())
        return tuple(flags)

    def search_date(self) -> datetime.date:
        """RFC 3501 §9 date: date-text, optionally quoted (d-Mon-yyyy)."""
        found = self.match(_DATE)
        if found is None or (found.group(1) != found.group(5)):
            raise SyntaxFailure("Expected a date like 1-Feb-2024")
        day, month, year = found.group(2, 3, 4)
        return _make_date(int(year), month, int(day))

    def date_time(self) -> datetime.datetime:
        """RFC 3501 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"."""
        found = self.match(_DATE_TIME)
        if found is None:
            raise SyntaxFailure('Expected a date-time like "01-Feb-2024 10:00:00 +0000"')
        day, month, year, hour, minute, second, sign, zh, zm = found.groups()
        date = _make_date(int(year), month, int(day))
        offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
        try:
            zone = datetime.timezone(-offset if sign == b"-" else offset)
            return datetime.datetime.combine(
                date, datetime.time(int(hour), int(minute), int(second)), tzinfo=zone
            )
        except ValueError:
            raise SyntaxFailure("Invalid date-time") from None


_SEQUENCE: Final = re.compile(rb"[0-9*:,]+|\$")
_MONTH_NUMBERS: Final = {
    name: index
    for index, name in enumerate(
        (
            b"JAN",
            b"FEB",
            b"MAR",
            b"APR",
            b"MAY",
            b"JUN",
            b"JUL",
            b"AUG",
            b"SEP",
            b"OCT",
            b"NOV",
            b"DEC",
        ),
        start=1,
    )
}
_DATE: Final = re.compile(rb'("?)([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})("?)')
_DATE_TIME: Final = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) '
    rb'([+-])([0-9]{2})([0-9]{2})"'
)
# RFC 3501 §2.3.2 system flags, keyed by their upper-case spelling.
SYSTEM_FLAGS: Final = {
    flag.upper(): flag
    for flag in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")
}


def _make_date(year: int, month: bytes, day: int) -> datetime.date:
    number = _MONTH_NUMBERS.get(month.upper())
    try:
        if number is None:
            raise ValueError(month)
        return datetime.date(year, number, day)
    except ValueError:
        raise SyntaxFailure("Invalid date") from None
