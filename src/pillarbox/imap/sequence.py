"""IMAP sequence sets (RFC 3501 §9 `sequence-set`, RFC 5182 `$`).

A `SequenceSet` keeps the ranges exactly as the client wrote them; `*` is stored as
`STAR` and only gets a value when the set is resolved against a mailbox:

    s = SequenceSet.parse("4:2,7,10:*")
    s.ranges_for(12)        -> [(2, 4), (7, 7), (10, 12)]
    list(s.iter(12))        -> [2, 3, 4, 7, 10, 11, 12]
    s.select([3, 5, 9, 11]) -> [3, 11]            (UID sets: members that exist)
    format_set([1, 2, 3, 5]) -> "1:3,5"            (COPYUID/APPENDUID, RFC 4315 §3)

Members are never expanded into a list unless asked (`iter`, `select`), so `1:4294967295`
costs nothing.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

# RFC 3501 §9: "*" is the largest number in use; stored as 0, which no nz-number can be.
STAR: Final = 0
# RFC 3501 §9 nz-number / uniqueid: 32-bit unsigned, non-zero.
MAX_NUMBER: Final = 4294967295
# A set longer than this many ranges is refused: real clients send a few hundred at most
# (mbsync UID lists), and every range costs work on every FETCH/STORE.
MAX_RANGES: Final = 10000

_NUMBER = r"(?:[1-9][0-9]{0,9}|\*)"
_SET_RE: Final = re.compile(rf"{_NUMBER}(?::{_NUMBER})?(?:,{_NUMBER}(?::{_NUMBER})?)*")


class SequenceSetError(ValueError):
    """The text is not a valid sequence-set."""


def _number(text: str) -> int:
    if text == "*":
        return STAR
    value = int(text)
    if value > MAX_NUMBER:
        raise SequenceSetError("number out of range")
    return value


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence-set: (first, last) pairs as written (either order, STAR = `*`).

    `saved` is True for RFC 5182 `$` (the result of the last SEARCH RETURN (SAVE)); its
    `ranges` are then empty and the session substitutes the saved result.
    """

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse `1:3,5,7:*` (RFC 3501 §9) or `$` (RFC 5182 §2); raises SequenceSetError."""
        if text == "$":
            return cls((), saved=True)
        if not _SET_RE.fullmatch(text):
            raise SequenceSetError("invalid sequence set")
        pieces = text.split(",")
        if len(pieces) > MAX_RANGES:
            raise SequenceSetError("sequence set too long")
        ranges = []
        for piece in pieces:
            first, _, last = piece.partition(":")
            start = _number(first)
            ranges.append((start, _number(last) if last else start))
        return cls(tuple(ranges))

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """The compact set holding exactly `numbers`."""
        return cls(tuple(_compact(numbers)))

    @property
    def uses_star(self) -> bool:
        return any(STAR in pair for pair in self.ranges)

    def largest_given(self) -> int:
        """The largest explicit number (ignoring `*`); 0 if there is none."""
        return max((n for pair in self.ranges for n in pair), default=0)

    def ranges_for(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged, low-high ranges with `*` = `largest` (RFC 3501 §9: "*" is the
        largest number in use; a range's ends may come in either order)."""
        if largest <= 0 and self.uses_star:
            # RFC 3501 §6.4.8: "*" in an empty mailbox matches nothing.
            usable = [(a, b) for a, b in self.ranges if STAR not in (a, b)]
        else:
            usable = list(self.ranges)
        resolved = sorted(
            (min(a or largest, b or largest), max(a or largest, b or largest)) for a, b in usable
        )
        merged: list[tuple[int, int]] = []
        for low, high in resolved:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def iter(self, largest: int) -> Iterator[int]:
        """Every member in ascending order, each once (sequence numbers: check `within`)."""
        for low, high in self.ranges_for(largest):
            yield from range(low, high + 1)

    def contains(self, number: int, largest: int) -> bool:
        ranges = self.ranges_for(largest)
        index = bisect.bisect_right(ranges, (number, MAX_NUMBER + 1)) - 1
        return index >= 0 and ranges[index][0] <= number <= ranges[index][1]

    def within(self, largest: int) -> bool:
        """True if every explicit number is at most `largest`: RFC 3501 §9 lets a server
        refuse message sequence numbers beyond the mailbox ("Invalid message sequence
        number" is answered BAD)."""
        return self.largest_given() <= largest

    def select(self, existing: Sequence[int]) -> list[int]:
        """The members of `existing` (sorted ascending, e.g. a mailbox's UIDs) in this set,
        with `*` = the last of `existing` (RFC 3501 §6.4.8: a UID range like 559:* always
        includes the last UID). Cost: O(ranges · log n + result)."""
        largest = existing[-1] if existing else 0
        found: list[int] = []
        for low, high in self.ranges_for(largest):
            start = bisect.bisect_left(existing, low)
            stop = bisect.bisect_right(existing, high)
            found.extend(existing[start:stop])
        return found

    def __str__(self) -> str:
        if self.saved:
            return "$"
        return ",".join(_format_range(a, b) for a, b in self.ranges)


def _format_number(number: int) -> str:
    return "*" if number == STAR else str(number)


def _format_range(first: int, last: int) -> str:
    if first == last:
        return _format_number(first)
    return f"{_format_number(first)}:{_format_number(last)}"


def _compact(numbers: Iterable[int]) -> Iterator[tuple[int, int]]:
    ordered = sorted(set(numbers))
    if not ordered:
        return
    low = high = ordered[0]
    for number in ordered[1:]:
        if number == high + 1:
            high = number
            continue
        yield (low, high)
        low = high = number
    yield (low, high)


def format_set(numbers: Iterable[int]) -> str:
    """Compact `uid-set` text, e.g. "1:3,5" (RFC 4315 §3 COPYUID/APPENDUID, RFC 4731)."""
    return ",".join(_format_range(a, b) for a, b in _compact(numbers))


def format_ordered(numbers: Sequence[int]) -> str:
    """A `uid-set` that keeps the given order (RFC 4315 §3: COPYUID's source and destination
    sets are matched member by member, so they must stay in correspondence). Adjacent
    ascending runs are still compacted."""
    pieces: list[str] = []
    index = 0
    while index < len(numbers):
        end = index
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        pieces.append(_format_range(numbers[index], numbers[end]))
        index = end + 1
    return ",".join(pieces)
