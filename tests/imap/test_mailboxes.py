"""Mailbox names, LIST/LSUB patterns and the hierarchy's attributes (RFC 3501 §6.3.8)."""

from __future__ import annotations

import pytest

from pillarbox.imap.mailboxes import Refused, attributes, check_name, hierarchy, pattern_regex
from pillarbox.store.api import AccountId, Mailbox, MailboxId, ModSeq, Uid


def box(name: str, special: str | None = None, subscribed: bool = False) -> Mailbox:
    return Mailbox(MailboxId(1), AccountId(1), name, 1, Uid(1), ModSeq(1), special, subscribed)


NAMES = ["INBOX", "INBOX/Lists", "Work", "Work/2024/Q1", "Sent"]


def matching(pattern: str, reference: str = "") -> list[str]:
    rx = pattern_regex(reference, pattern)
    return [n for n in sorted(hierarchy(box(n) for n in NAMES)) if rx.fullmatch(n)]


def test_star_matches_every_level_and_percent_one() -> None:
    assert matching("*") == ["INBOX", "INBOX/Lists", "Sent", "Work", "Work/2024", "Work/2024/Q1"]
    assert matching("%") == ["INBOX", "Sent", "Work"]
    assert matching("Work/%") == ["Work/2024"]
    assert matching("%", reference="Work/") == ["Work/2024"]


def test_inbox_matches_case_insensitively() -> None:
    assert matching("inbox") == ["INBOX"]
    assert matching("inBox/%") == ["INBOX/Lists"]
    assert matching("in%") == []  # only a whole "INBOX" level is case-insensitive


def test_levels_made_only_by_children_are_noselect() -> None:
    nodes = hierarchy(box(n) for n in NAMES)
    assert attributes(nodes["Work/2024"]) == ["\\Noselect", "\\HasChildren"]
    assert attributes(nodes["Work"]) == ["\\HasChildren"]
    assert attributes(nodes["Sent"]) == ["\\HasNoChildren"]


def test_special_use_and_subscribed_attributes() -> None:
    nodes = hierarchy([box("Sent", "\\Sent", subscribed=True)])
    assert attributes(nodes["Sent"], subscribed_flag=True) == [
        "\\HasNoChildren",
        "\\Sent",
        "\\Subscribed",
    ]


@pytest.mark.parametrize("name", ["", "a//b", "/a", "a/", "a*b", "a%", "x\x01y", "a/" * 20 + "b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(Refused):
        check_name(name)


def test_inbox_is_canonical_at_the_first_level_only() -> None:
    assert check_name("inbox/Inbox") == "INBOX/Inbox"
    assert check_name("Entwürfe") == "Entwürfe"
