"""sendmail(8) input handling (pure parts): dots, -t, Bcc, added header fields."""

from __future__ import annotations

import io

from pillarbox.config import Config
from pillarbox.delivery.sendmail import prepare, read_message

CONFIG = Config(hostname="mx.a.test")


def test_a_lone_dot_ends_input_unless_dash_i() -> None:
    data = b"Subject: x\n\nkept\n.\nlost\n"
    assert read_message(io.BytesIO(data), ignore_dots=False) == b"Subject: x\r\n\r\nkept\r\n"
    assert read_message(io.BytesIO(data), ignore_dots=True) == data.replace(b"\n", b"\r\n")
    assert read_message(io.BytesIO(b".\nall gone\n"), ignore_dots=False) == b""
    assert read_message(io.BytesIO(b"no newline"), ignore_dots=True) == b"no newline\r\n"


def test_dash_t_collects_to_cc_bcc_and_drops_bcc_with_its_continuation() -> None:
    data = (
        b"To: A <a@a.test>, b@b.test\r\nCc: group: c@c.test;\r\n"
        b"Bcc: hidden@h.test,\r\n  other@h.test\r\nSubject: s\r\n\r\nBcc: in the body\r\n"
    )
    sub = prepare(data, ["extra@e.test", "a@a.test"], "root@a.test", CONFIG, from_headers=True)
    assert sub.recipients == (
        "extra@e.test",
        "a@a.test",
        "b@b.test",
        "c@c.test",
        "hidden@h.test",
        "other@h.test",
    )
    assert b"hidden" not in sub.body.split(b"\r\n\r\n")[0]
    assert sub.body.endswith(b"Subject: s\r\n\r\nBcc: in the body\r\n")


def test_missing_from_date_and_message_id_are_added() -> None:
    sub = prepare(
        b"Subject: s\r\n\r\nbody\r\n", ["x@x.test"], "me@a.test", CONFIG, from_headers=False
    )
    header = sub.body.split(b"\r\n\r\n")[0]
    assert header.startswith(b"From: <me@a.test>\r\nDate: ")
    assert b"Message-ID: <" in header and b"@mx.a.test>" in header
    kept = prepare(sub.body, ["x@x.test"], "me@a.test", CONFIG, from_headers=False)
    assert kept.body == sub.body  # nothing added twice


def test_text_without_a_header_becomes_the_body() -> None:
    sub = prepare(b"just text\r\n", ["x@x.test"], "me@a.test", CONFIG, from_headers=False)
    head, _, body = sub.body.partition(b"\r\n\r\n")
    assert body == b"just text\r\n" and b"just text" not in head
