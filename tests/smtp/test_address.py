"""Path parsing for MAIL FROM / RCPT TO (RFC 5321 §4.1.2, RFC 6531 §3.3)."""

from __future__ import annotations

import pytest

from pillarbox.smtp.address import AddressError, parse_forward_path, parse_reverse_path


@pytest.mark.parametrize(
    ("text", "address", "rest"),
    [
        ("<jane@example.test>", "jane@example.test", ""),
        ("<jane@example.test> SIZE=1", "jane@example.test", " SIZE=1"),
        ("<>", "", ""),
        ("<> BODY=8BITMIME", "", " BODY=8BITMIME"),
        ('<"jane doe"@example.test>', '"jane doe"@example.test', ""),
        ('<"a\\"b"@example.test>', '"a\\"b"@example.test', ""),
        ("<a.b+tag@sub.example.test>", "a.b+tag@sub.example.test", ""),
        ("<@one.test,@two.test:jane@example.test>", "jane@example.test", ""),
        ("<jane@[192.0.2.1]>", "jane@[192.0.2.1]", ""),
        ("<jane@[IPv6:2001:db8::1]>", "jane@[IPv6:2001:db8::1]", ""),
        ("<jösé@exämple.test>", "jösé@exämple.test", ""),
    ],
)
def test_valid_reverse_paths(text: str, address: str, rest: str) -> None:
    path = parse_reverse_path(text)
    assert (path.address, path.rest) == (address, rest)


@pytest.mark.parametrize(
    "text",
    [
        "jane@example.test",
        "<jane@example.test",
        "<jane>",
        "<@example.test>",
        "<jane@>",
        "<jane@-bad.test>",
        "<jane@bad-.test>",
        "<jane..doe@example.test>",
        "<.jane@example.test>",
        "<jane@example..test>",
        "<jane doe@example.test>",
        "<jane@[300.0.0.1]>",
        "<jane@[IPv6:not-an-address]>",
        '<"unterminated@example.test>',
        "<jane@example.test:x>",
        "",
    ],
)
def test_invalid_paths(text: str) -> None:
    with pytest.raises(AddressError):
        parse_reverse_path(text)


def test_postmaster_without_domain_is_a_forward_path() -> None:
    """RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> must be accepted."""
    assert parse_forward_path("<PostMaster>").address == "PostMaster"
    with pytest.raises(AddressError):
        parse_forward_path("<>")
    with pytest.raises(AddressError):
        parse_reverse_path("<postmaster>")
