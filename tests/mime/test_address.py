"""RFC 5322 address lists."""

from __future__ import annotations

from pillarbox.mime.address import Address, Group, mailboxes, parse_address_list


def test_names_groups_and_comments() -> None:
    items = parse_address_list(
        b'"Doe, John" <john@example.com>, bob@example.net (Bob B), '
        b"Team: a@x.org, B <b@x.org>;, undisclosed-recipients:;"
    )
    assert items[0] == Address(b"Doe, John", None, b"john", b"example.com")
    assert items[1] == Address(b"Bob B", None, b"bob", b"example.net")
    assert isinstance(items[2], Group)
    assert [m.addr_spec for m in items[2].members] == ["a@x.org", "b@x.org"]
    assert items[3] == Group(b"undisclosed-recipients", ())


def test_quoted_local_part_is_requoted_for_smtp() -> None:
    (addr,) = mailboxes(b'"john doe"@example.com')
    assert addr.mailbox == b"john doe"
    assert addr.addr_spec == '"john doe"@example.com'


def test_route_and_encoded_display_name() -> None:
    (addr,) = mailboxes(b"=?utf-8?q?J=C3=B6rg?= <@a.example,@b.example:j@c.example>")
    assert addr.route == b"@a.example,@b.example"
    assert addr.display_name == "Jörg"
    assert addr.addr_spec == "j@c.example"


def test_utf8_address_and_idna_host() -> None:
    (addr,) = mailboxes("José <josé@exämple.com>".encode())
    assert addr.addr_spec == "josé@exämple.com"
    assert addr.host_ascii() == "xn--exmple-cua.com"


def test_null_members_are_ignored() -> None:
    assert [a.addr_spec for a in mailboxes(b",, a@b.c ,,")] == ["a@b.c"]


def test_never_raises_on_garbage() -> None:
    for raw in (b"<<<", b'"unterminated', b"(((", b"@@@:;;<>", bytes(range(256))):
        parse_address_list(raw)
