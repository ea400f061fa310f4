"""Recipient resolution at RCPT time: users, subaddresses, aliases, lists, loops, includes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pillarbox.directory.model import (
    Expansion,
    LocalMailbox,
    Remote,
    Resolution,
    Unknown,
    targets_of,
)
from pillarbox.directory.resolver import MAX_ALIAS_DEPTH, Directory

from .fakes import FakeStore


@pytest.fixture
def store() -> FakeStore:
    store = FakeStore(["example.org", "example.net"])
    store.user("jane@example.org", "Jane Doe")
    store.user("john@example.org", "John Smith")
    store.user("mac@example.net", "Mac Net")
    return store


def resolve(store: FakeStore, address: str, **kwargs: str) -> Resolution:
    return asyncio.run(Directory(store, **kwargs).resolve_recipient(address))


def addresses(resolution: Resolution) -> list[str]:
    return [target.address for target in targets_of(resolution)]


def test_local_user(store: FakeStore) -> None:
    result = resolve(store, "jane@example.org")
    assert result == LocalMailbox(store.accounts["jane@example.org"].id, "jane@example.org")


def test_domain_is_case_insensitive_and_brackets_allowed(store: FakeStore) -> None:
    assert addresses(resolve(store, "<jane@EXAMPLE.Org>")) == ["jane@example.org"]


def test_local_part_falls_back_to_lower_case(store: FakeStore) -> None:
    assert addresses(resolve(store, "Jane@example.org")) == ["jane@example.org"]


def test_subaddress_delivers_to_the_user_with_its_detail(store: FakeStore) -> None:
    result = resolve(store, "jane+lists@example.org")
    assert isinstance(result, LocalMailbox)
    assert result.address == "jane@example.org"
    assert result.detail == "lists"


def test_account_with_plus_in_its_name_wins_over_subaddress(store: FakeStore) -> None:
    store.user("jane+x@example.org")
    result = resolve(store, "jane+x@example.org")
    assert isinstance(result, LocalMailbox)
    assert (result.address, result.detail) == ("jane+x@example.org", None)


def test_other_separator(store: FakeStore) -> None:
    result = resolve(store, "jane-tag@example.org", subaddress_separator="-")
    assert isinstance(result, LocalMailbox)
    assert result.detail == "tag"


def test_unknown_local_user(store: FakeStore) -> None:
    result = resolve(store, "nobody@example.org")
    assert isinstance(result, Unknown)
    assert result.address == "nobody@example.org"


def test_non_local_domain_is_remote(store: FakeStore) -> None:
    assert resolve(store, "Someone@Elsewhere.Example") == Remote("Someone@elsewhere.example")


def test_idna_domain_is_encoded(store: FakeStore) -> None:
    store.domains.append("xn--bcher-kva.example")
    store.user("anna@xn--bcher-kva.example")
    assert addresses(resolve(store, "anna@b\u00fccher.example")) == ["anna@xn--bcher-kva.example"]


def test_bare_name_other_than_postmaster_is_unknown(store: FakeStore) -> None:
    assert isinstance(resolve(store, "jane"), Unknown)


def test_alias_to_one_user(store: FakeStore) -> None:
    store.alias("info@example.org", "jane@example.org")
    result = resolve(store, "info@example.org")
    assert isinstance(result, Expansion)
    assert result.address == "info@example.org"
    assert addresses(result) == ["jane@example.org"]
    assert not result.is_list


def test_list_mixing_local_and_remote(store: FakeStore) -> None:
    store.alias("team@example.org", "jane", "mac@example.net", "Bob@Remote.Example")
    result = resolve(store, "team@example.org")
    assert isinstance(result, Expansion)
    assert result.targets == (
        LocalMailbox(store.accounts["jane@example.org"].id, "jane@example.org"),
        LocalMailbox(store.accounts["mac@example.net"].id, "mac@example.net"),
        Remote("Bob@remote.example"),
    )
    assert result.is_list


def test_alias_chain_and_duplicates_collapse(store: FakeStore) -> None:
    store.alias("all@example.org", "staff", "jane", "ops")
    store.alias("staff@example.org", "jane", "john")
    store.alias("ops@example.org", "john@example.org", "jane+ops")
    result = resolve(store, "all@example.org")
    assert addresses(result) == ["jane@example.org", "john@example.org"]


def test_bare_alias_applies_in_every_domain_with_that_domain(store: FakeStore) -> None:
    store.user("admin-a@example.net")
    store.alias("admin", "jane@example.org", "admin-a")
    assert addresses(resolve(store, "admin@example.net")) == [
        "jane@example.org",
        "admin-a@example.net",
    ]
    # In example.org the unqualified target does not exist: it is dropped and noted.
    result = resolve(store, "admin@example.org")
    assert isinstance(result, Expansion)
    assert addresses(result) == ["jane@example.org"]
    assert any("admin-a@example.org" in problem for problem in result.problems)


def test_qualified_alias_beats_bare_alias(store: FakeStore) -> None:
    store.alias("help", "john")
    store.alias("help@example.org", "jane")
    assert addresses(resolve(store, "help@example.org")) == ["jane@example.org"]
    assert isinstance(resolve(store, "help@example.net"), Unknown)  # john@example.net


def test_self_reference_keeps_a_copy_and_forwards(store: FakeStore) -> None:
    store.alias("jane@example.org", "jane", "jane@elsewhere.example")
    assert addresses(resolve(store, "jane@example.org")) == [
        "jane@example.org",
        "jane@elsewhere.example",
    ]


def test_backslash_target_skips_alias_expansion(store: FakeStore) -> None:
    store.alias("john", "\\john", "jane")
    assert addresses(resolve(store, "john@example.org")) == [
        "john@example.org",
        "jane@example.org",
    ]


def test_alias_loop_is_cut(store: FakeStore) -> None:
    store.alias("a@example.org", "b", "jane")
    store.alias("b@example.org", "c")
    store.alias("c@example.org", "a")
    result = resolve(store, "a@example.org")
    assert isinstance(result, Expansion)
    assert addresses(result) == ["jane@example.org"]
    assert any("loop" in problem for problem in result.problems)


def test_pure_loop_resolves_to_unknown(store: FakeStore) -> None:
    store.alias("a@example.org", "b")
    store.alias("b@example.org", "a")
    result = resolve(store, "a@example.org")
    assert isinstance(result, Unknown)
    assert "loop" in result.reason


def test_depth_limit(store: FakeStore) -> None:
    for i in range(MAX_ALIAS_DEPTH + 5):
        store.alias(f"l{i}@example.org", f"l{i + 1}", "john")
    store.alias(f"l{MAX_ALIAS_DEPTH + 5}@example.org", "jane")
    result = resolve(store, "l0@example.org")
    assert isinstance(result, Expansion)
    assert addresses(result) == ["john@example.org"]
    assert any("deeper" in problem for problem in result.problems)


def test_program_and_file_targets_are_dropped(store: FakeStore) -> None:
    store.alias("x@example.org", "|/usr/bin/vacation", "/var/log/mail", "jane")
    result = resolve(store, "x@example.org")
    assert isinstance(result, Expansion)
    assert addresses(result) == ["jane@example.org"]
    assert len(result.problems) == 2


def test_include_file_read_at_expansion_time(store: FakeStore, tmp_path: Path) -> None:
    members = tmp_path / "members"
    store.alias("news@example.org", f":include:{members}", "john")
    members.write_text("jane\n")
    assert addresses(resolve(store, "news@example.org")) == [
        "jane@example.org",
        "john@example.org",
    ]
    members.write_text("# edited\nmac@example.net, friend@remote.example\n")
    assert addresses(resolve(store, "news@example.org")) == [
        "mac@example.net",
        "friend@remote.example",
        "john@example.org",
    ]


def test_unreadable_include_is_noted(store: FakeStore, tmp_path: Path) -> None:
    store.alias("news@example.org", f":include:{tmp_path / 'missing'}", "john")
    result = resolve(store, "news@example.org")
    assert isinstance(result, Expansion)
    assert addresses(result) == ["john@example.org"]
    assert any("cannot read" in problem for problem in result.problems)


def test_postmaster_any_case_in_a_domain(store: FakeStore) -> None:
    store.alias("postmaster", "john")
    assert addresses(resolve(store, "PostMaster@example.org")) == ["john@example.org"]


def test_bare_postmaster_without_domain(store: FakeStore) -> None:
    store.user("postmaster@example.net")
    assert addresses(resolve(store, "Postmaster")) == ["postmaster@example.net"]


def test_configured_postmaster_catches_unclaimed_postmaster(store: FakeStore) -> None:
    kwargs = {"postmaster": "jane@example.org"}
    assert addresses(resolve(store, "postmaster@example.net", **kwargs)) == ["jane@example.org"]
    assert addresses(resolve(store, "POSTMASTER", **kwargs)) == ["jane@example.org"]


def test_no_postmaster_anywhere_is_unknown(store: FakeStore) -> None:
    assert isinstance(resolve(store, "postmaster"), Unknown)
