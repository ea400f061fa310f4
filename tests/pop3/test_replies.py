"""Response values and their wire form (RFC 1939 §3, RFC 2449 §4 and §8, RFC 5034 §4)."""

from __future__ import annotations

import pytest

from pillarbox.pop3 import replies
from pillarbox.pop3.message import dot_stuff
from pillarbox.pop3.replies import Challenge, Err, Ok, ResponseCode, encode


def test_status_lines_with_and_without_text_and_code() -> None:
    assert encode(Ok()) == b"+OK\r\n"
    assert encode(Ok("fine")) == b"+OK fine\r\n"
    assert encode(Err("bad")) == b"-ERR bad\r\n"
    assert encode(Err("busy", ResponseCode.IN_USE)) == b"-ERR [IN-USE] busy\r\n"
    assert encode(replies.SYSTEM_TEMPORARY).startswith(b"-ERR [SYS/TEMP] ")
    assert encode(replies.SYSTEM_PERMANENT).startswith(b"-ERR [SYS/PERM] ")
    assert encode(replies.AUTH_FAILED).startswith(b"-ERR [AUTH] ")
    assert encode(replies.LOGIN_DELAY).startswith(b"-ERR [LOGIN-DELAY] ")
    assert encode(Err("needs UTF8", ResponseCode.UTF8)) == b"-ERR [UTF8] needs UTF8\r\n"


def test_challenges_are_base64() -> None:
    assert encode(Challenge()) == b"+ \r\n"
    assert encode(Challenge(b"Username:")) == b"+ VXNlcm5hbWU6\r\n"


def test_multiline_lines_are_stuffed_and_terminated() -> None:
    wire = encode(Ok("list", lines=(".hidden", "plain", "")))
    assert wire == b"+OK list\r\n..hidden\r\nplain\r\n\r\n.\r\n"
    assert encode(Ok("none", lines=())) == b"+OK none\r\n.\r\n"


def test_message_bodies_are_stuffed() -> None:
    assert encode(replies.message(9, b".x\r\ny\r\n")) == b"+OK 9 octets\r\n..x\r\ny\r\n.\r\n"


def test_a_retr_response_made_beforehand_is_the_same_octets() -> None:
    body = b".a\r\nb\r\n"
    wire = dot_stuff(body, replies.message_status(len(body)))
    assert encode(replies.retrieved(len(body), wire)) == encode(replies.message(len(body), body))
    assert wire == b"+OK 7 octets\r\n..a\r\nb\r\n.\r\n"


def test_text_with_line_breaks_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="one line"):
        encode(Err("a\r\nb"))
    with pytest.raises(ValueError, match="CR or LF"):
        encode(Ok("x", lines=("a\nb",)))


def test_first_line_is_cut_to_512_octets() -> None:
    wire = encode(Err("x" * 1000))
    assert len(wire) == 512
    assert wire.endswith(b"x\r\n")


def test_greeting_and_apop_timestamp() -> None:
    stamp = replies.apop_timestamp(1896, 697170952, "dbc.mtview.ca.us")
    assert stamp == "<1896.697170952@dbc.mtview.ca.us>"
    assert encode(replies.greeting(stamp)) == (
        b"+OK Pillarbox POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"
    )
    assert encode(replies.greeting(None)) == b"+OK Pillarbox POP3 server ready\r\n"


def test_counts_read_naturally() -> None:
    assert replies.maildrop_ready(1, 369).text == "maildrop has 1 message (369 octets)"
    assert replies.reset(2, 320).text == "maildrop has 2 messages (320 octets)"
    assert replies.stat(2, 320).text == "2 320"
    assert replies.signing_off().text == "Pillarbox POP3 server signing off"
    assert replies.signing_off(0).text == "Pillarbox POP3 server signing off (maildrop empty)"
    assert replies.signing_off(1).text == "Pillarbox POP3 server signing off (1 message left)"
    assert encode(replies.DELETIONS_FAILED) == (
        b"-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    )


def test_uidl_and_scan_listings() -> None:
    assert encode(replies.uidl_listing([(1, "a"), (3, "c")])) == (
        b"+OK Unique-ID listing follows\r\n1 a\r\n3 c\r\n.\r\n"
    )
    assert encode(replies.uidl_line(2, "b")) == b"+OK 2 b\r\n"
    assert encode(replies.scan_line(2, 200)) == b"+OK 2 200\r\n"
