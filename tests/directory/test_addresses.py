"""Address splitting and normalisation, subaddresses and the postmaster rule."""

from __future__ import annotations

import pytest

from pillarbox.directory.addresses import (
    Address,
    AddressError,
    normalise,
    normalise_domain,
    parse_address,
    split_subaddress,
)


def test_local_part_case_kept_domain_lowered() -> None:
    assert parse_address("John.Smith@Example.ORG") == Address("John.Smith", "example.org")


def test_angle_brackets_and_trailing_dot() -> None:
    assert normalise("<jane@example.org.>") == "jane@example.org"


def test_idna_domain() -> None:
    assert normalise("anna@B\u00fccher.Example") == "anna@xn--bcher-kva.example"


def test_quoted_local_part_with_at_sign_splits_at_last_at() -> None:
    assert parse_address('"a@b"@example.org') == Address('"a@b"', "example.org")


def test_address_literal_kept() -> None:
    assert normalise_domain("[192.0.2.1]") == "[192.0.2.1]"


def test_bare_name() -> None:
    assert parse_address("mac") == Address("mac", "")
    assert str(Address("mac", "")) == "mac"


@pytest.mark.parametrize(
    "text", ["", "@example.org", "jane@", "jane@exa..mple.org", "x" * 65 + "@example.org"]
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("user+tag", ("user", "tag")),
        ("user+tag+more", ("user", "tag+more")),
        ("user+", ("user", "")),
        ("+tag", ("+tag", None)),
        ("user", ("user", None)),
    ],
)
def test_subaddress(local: str, expected: tuple[str, str | None]) -> None:
    assert split_subaddress(local) == expected


@pytest.mark.parametrize("text", ["postmaster", "Postmaster", "POSTMASTER@example.org"])
def test_postmaster_any_case(text: str) -> None:
    assert parse_address(text).is_postmaster


def test_not_postmaster() -> None:
    assert not parse_address("postmasters@example.org").is_postmaster
