"""VRFY and EXPN answers (RFC 5321 §3.5), as the SMTP session will put them on the wire."""

from __future__ import annotations

import asyncio

import pytest

from pillarbox.directory.answers import mailbox_line
from pillarbox.directory.model import AddressAnswer
from pillarbox.directory.resolver import Directory

from .fakes import FakeStore


@pytest.fixture
def directory() -> Directory:
    store = FakeStore(["example.org", "example.net"])
    store.user("jane@example.org", "Jane Doe")
    store.user("john@example.org", "John Smith")
    store.user("mac@example.org", "Mac Org")
    store.user("mac@example.net", "Mac Net")
    store.user("nameless@example.org")
    store.alias("info@example.org", "jane")
    store.alias("staff@example.org", "jane", "john", "Pal@Remote.Example")
    store.alias("void@example.org", "gone")
    store.alias("abuse", "john@example.org")
    return Directory(store)


def vrfy(directory: Directory, arg: str, relay: bool = False) -> AddressAnswer:
    return asyncio.run(directory.vrfy(arg, relay_allowed=relay))


def expn(directory: Directory, arg: str) -> AddressAnswer:
    return asyncio.run(directory.expn(arg))


def test_vrfy_local_user_gives_full_name(directory: Directory) -> None:
    assert vrfy(directory, "jane@example.org") == AddressAnswer(
        250, "2.1.5", ("Jane Doe <jane@example.org>",)
    )


def test_vrfy_unqualified_unique_user(directory: Directory) -> None:
    assert vrfy(directory, "john").lines == ("John Smith <john@example.org>",)


def test_vrfy_user_without_name(directory: Directory) -> None:
    assert vrfy(directory, "<nameless@example.org>").lines == ("<nameless@example.org>",)


def test_vrfy_alias_gives_its_single_target(directory: Directory) -> None:
    assert vrfy(directory, "info@example.org") == AddressAnswer(
        250, "2.1.5", ("Jane Doe <jane@example.org>",)
    )


def test_vrfy_list_is_252(directory: Directory) -> None:
    answer = vrfy(directory, "staff@example.org")
    assert (answer.code, answer.status) == (252, "2.1.5")
    assert answer.lines == ("Unable to verify members of mailing list <staff@example.org>",)


def test_vrfy_unknown_is_550_511(directory: Directory) -> None:
    assert vrfy(directory, "nobody@example.org") == AddressAnswer(550, "5.1.1", ("User unknown",))
    assert vrfy(directory, "nobody").code == 550


def test_vrfy_ambiguous_name_lists_possibilities(directory: Directory) -> None:
    # RFC 5321 §3.5.1 example form; candidates in the store's domain order.
    assert vrfy(directory, "mac") == AddressAnswer(
        553,
        "5.1.4",
        ("Ambiguous; Possibilities are", "Mac Org <mac@example.org>", "Mac Net <mac@example.net>"),
    )


def test_qualified_name_is_not_ambiguous(directory: Directory) -> None:
    assert vrfy(directory, "mac@example.net").lines == ("Mac Net <mac@example.net>",)


def test_bare_alias_is_one_candidate_not_one_per_domain(directory: Directory) -> None:
    assert vrfy(directory, "abuse") == AddressAnswer(
        250, "2.1.5", ("John Smith <john@example.org>",)
    )


def test_vrfy_alias_to_nothing(directory: Directory) -> None:
    assert vrfy(directory, "void@example.org").code == 550


def test_vrfy_remote_address(directory: Directory) -> None:
    assert vrfy(directory, "x@remote.example").code == 551
    assert vrfy(directory, "x@remote.example", relay=True).code == 252


def test_vrfy_bad_syntax(directory: Directory) -> None:
    assert vrfy(directory, "jane@").code == 501


def test_vrfy_postmaster_in_any_case(directory: Directory) -> None:
    directory.store.alias("postmaster", "jane@example.org")  # type: ignore[attr-defined]
    assert vrfy(directory, "Postmaster").lines == ("Jane Doe <jane@example.org>",)
    assert vrfy(directory, "POSTMASTER@example.net").lines == ("Jane Doe <jane@example.org>",)


def test_expn_list_one_line_per_member(directory: Directory) -> None:
    assert expn(directory, "staff@example.org") == AddressAnswer(
        250,
        "2.1.5",
        ("Jane Doe <jane@example.org>", "John Smith <john@example.org>", "<Pal@remote.example>"),
    )


def test_expn_unqualified_list(directory: Directory) -> None:
    assert len(expn(directory, "staff").lines) == 3


def test_expn_user_is_a_list_of_one(directory: Directory) -> None:
    assert expn(directory, "john@example.org") == AddressAnswer(
        250, "2.1.5", ("John Smith <john@example.org>",)
    )


def test_expn_unknown_and_ambiguous(directory: Directory) -> None:
    assert expn(directory, "nobody").code == 550
    assert expn(directory, "mac").code == 553


def test_expn_empty_list(directory: Directory) -> None:
    assert expn(directory, "void@example.org") == AddressAnswer(
        550, "5.1.1", ("List has no deliverable members",)
    )


def test_display_names_that_could_break_the_line_are_left_out() -> None:
    assert mailbox_line("a@example.org", "Eve\r\n250 fake") == "Eve 250 fake <a@example.org>"
    assert mailbox_line("a@example.org", "Evil <b@x>") == "<a@example.org>"
    assert mailbox_line("a@example.org", "J\u00f6rg") == "<a@example.org>"
