"""The session's maildrop model (RFC 1939 §5-§7)."""

from __future__ import annotations

import pytest

from pillarbox.pop3 import replies
from pillarbox.pop3.maildrop import Maildrop, MaildropError


def make() -> Maildrop:
    return Maildrop([("u1", 100), ("u2", 200), ("u3", 300)])


def error_text(exc: pytest.ExceptionInfo[MaildropError]) -> bytes:
    return replies.encode(exc.value.response)


def test_stat_list_and_uidl_before_any_deletion() -> None:
    drop = make()
    assert len(drop) == 3
    assert drop.stat() == (3, 600)
    assert drop.sizes() == [(1, 100), (2, 200), (3, 300)]
    assert drop.uids() == [(1, "u1"), (2, "u2"), (3, "u3")]
    assert drop.size(2) == 200
    assert drop.uid(3) == "u3"


@pytest.mark.parametrize("number", [0, 4, -1, 10**20])
def test_numbers_out_of_range_are_no_such_message(number: int) -> None:
    drop = make()
    for operation in (drop.size, drop.uid, drop.check, drop.mark_deleted):
        with pytest.raises(MaildropError) as exc:
            operation(number)
        assert error_text(exc) == b"-ERR no such message\r\n"


def test_deleted_messages_are_hidden_and_refused_but_keep_their_numbers() -> None:
    drop = make()
    drop.mark_deleted(2)
    assert drop.stat() == (2, 400)
    assert drop.sizes() == [(1, 100), (3, 300)]
    assert drop.uids() == [(1, "u1"), (3, "u3")]
    assert drop.size(3) == 300
    for operation in (drop.size, drop.uid, drop.check):
        with pytest.raises(MaildropError) as exc:
            operation(2)
        assert error_text(exc) == b"-ERR no such message\r\n"
    with pytest.raises(MaildropError) as exc:
        drop.mark_deleted(2)
    assert error_text(exc) == b"-ERR message 2 already deleted\r\n"


def test_reset_unmarks_everything() -> None:
    drop = make()
    drop.mark_deleted(1)
    drop.mark_deleted(3)
    drop.reset()
    assert drop.stat() == (3, 600)
    assert drop.deletions() == []
    drop.mark_deleted(1)  # deletable again after RSET
    assert drop.stat() == (2, 500)


def test_deletions_are_listed_in_number_order() -> None:
    drop = make()
    drop.mark_deleted(3)
    drop.mark_deleted(1)
    assert drop.deletions() == [1, 3]
    assert drop.deleted_uids() == ["u1", "u3"]


def test_empty_maildrop() -> None:
    drop = Maildrop([])
    assert drop.stat() == (0, 0)
    assert drop.sizes() == []
    assert replies.encode(replies.scan_listing(drop.sizes(), *drop.stat())) == (
        b"+OK 0 messages (0 octets)\r\n.\r\n"
    )


@pytest.mark.parametrize("uid", ["", "has space", "x" * 71, "tab\there", "é"])
def test_invalid_uidl_strings_are_refused(uid: str) -> None:
    with pytest.raises(ValueError, match="UIDL"):
        Maildrop([(uid, 1)])


def test_longest_uidl_string_is_accepted() -> None:
    assert Maildrop([("~" * 70, 1)]).uid(1) == "~" * 70


def test_duplicate_uids_and_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Maildrop([("a", 1), ("a", 2)])
    with pytest.raises(ValueError, match="negative"):
        Maildrop([("a", -1)])
