"""Sequence sets (RFC 3501 §9): `*`, ranges in either order, UID selection, formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.imap.sequence import (
    MAX_RANGES,
    STAR,
    SequenceSet,
    SequenceSetError,
    format_ordered,
    format_set,
)


def test_parse_keeps_what_was_written() -> None:
    s = SequenceSet.parse("4:2,7,10:*")
    assert s.ranges == ((4, 2), (7, 7), (10, STAR))
    assert str(s) == "4:2,7,10:*"
    assert s.uses_star


def test_members_with_star_resolved() -> None:
    s = SequenceSet.parse("4:2,7,10:*,3")
    assert s.ranges_for(12) == [(2, 4), (7, 7), (10, 12)]
    assert list(s.iter(12)) == [2, 3, 4, 7, 10, 11, 12]
    assert s.contains(11, 12) and not s.contains(8, 12)


def test_star_beyond_the_range_start() -> None:
    # RFC 3501 §6.4.8: 559:* includes the last UID even if 559 is larger
    assert SequenceSet.parse("559:*").select([3, 10, 20]) == [20]
    assert list(SequenceSet.parse("*").iter(5)) == [5]


def test_star_in_an_empty_mailbox_matches_nothing() -> None:
    assert list(SequenceSet.parse("1:*").iter(0)) == []
    assert SequenceSet.parse("*").select([]) == []
    assert SequenceSet.parse("1:3,*").ranges_for(0) == [(1, 3)]


def test_select_picks_existing_uids() -> None:
    uids = [3, 5, 9, 11, 400]
    assert SequenceSet.parse("4:2,7,10:*").select(uids) == [3, 11, 400]
    assert SequenceSet.parse("1:4294967295").select(uids) == uids


def test_within_checks_sequence_numbers() -> None:
    assert SequenceSet.parse("1:3,*").within(3)
    assert not SequenceSet.parse("1:4").within(3)


def test_saved_search_result() -> None:
    s = SequenceSet.parse("$")
    assert s.saved and s.ranges == () and str(s) == "$"


@pytest.mark.parametrize("text", ["", "0", "1:0", "1,", ",1", "1::2", "a", "4294967296", "1 2"])
def test_invalid(text: str) -> None:
    with pytest.raises(SequenceSetError):
        SequenceSet.parse(text)


def test_too_many_ranges() -> None:
    with pytest.raises(SequenceSetError):
        SequenceSet.parse(",".join(["1"] * (MAX_RANGES + 1)))


def test_formatting() -> None:
    assert format_set([5, 1, 2, 3, 3, 9, 10]) == "1:3,5,9:10"
    assert format_set([]) == ""
    assert format_ordered([7, 8, 9, 2, 4, 5]) == "7:9,2,4:5"
    assert str(SequenceSet.of([4, 2, 3])) == "2:4"


@given(st.sets(st.integers(1, 5000), max_size=60))
def test_round_trip(numbers: set[int]) -> None:
    text = format_set(numbers)
    if not numbers:
        return
    parsed = SequenceSet.parse(text)
    assert list(parsed.iter(5000)) == sorted(numbers)
    assert parsed.select(sorted(numbers | {6000})) == sorted(numbers)


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=8),
       st.integers(0, 70))  # fmt: skip
def test_iter_matches_a_naive_expansion(pairs: list[tuple[int, int]], largest: int) -> None:
    text = ",".join(f"{a or '*'}:{b or '*'}" for a, b in pairs)
    s = SequenceSet.parse(text)
    expected: set[int] = set()
    for a, b in pairs:
        if largest == 0 and (a == 0 or b == 0):
            continue
        lo, hi = sorted((a or largest, b or largest))
        expected.update(range(lo, hi + 1))
    assert list(s.iter(largest)) == sorted(expected)
    assert all(s.contains(n, largest) for n in expected)
