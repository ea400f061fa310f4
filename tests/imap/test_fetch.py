"""FETCH data items on a multipart message, through engine + session + SQLite store."""

from __future__ import annotations

from pathlib import Path

from pillarbox.store.api import INBOX
from tests.imap.harness import Client, Harness, run

MULTIPART = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@remote.test>\r\n"
    b"To: jane@example.test\r\n"
    b"Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream; name=a.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=a.bin\r\n"
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--b1--\r\n"
)


async def selected(harness: Harness) -> Client:
    await harness.store.append(harness.account.id, INBOX, MULTIPART)
    client = harness.client()
    client.greet()
    await client.line("a LOGIN jane@example.test secret")
    await client.line("b SELECT INBOX")
    return client


def test_bodystructure_sections_and_binary(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        client = await selected(harness)
        out = await client.line("c FETCH 1 (BODYSTRUCTURE)")
        assert b'("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 29 0' in out
        assert b'"application" "octet-stream" ("name" "a.bin")' in out
        assert b'"mixed" ("boundary" "b1")' in out
        out = await client.line("d FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[2])")
        assert b"BODY[1] {29}\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln " in out
        assert b"BODY[2.MIME] {" in out and b"Content-Disposition: attachment" in out
        assert b"BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04" in out  # literal8: NUL inside
        out = await client.line("e FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1]<3.4>)")
        assert b"BINARY.SIZE[1] 17" in out
        assert b"BINARY[1]<3> {4}\r\n\xbc\xc3\x9fe" in out
        assert b"FLAGS" not in out  # PEEK never sets \Seen

    run(tmp_path, check)


def test_envelope_keeps_encoded_words_and_body_fetch_sets_seen(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        client = await selected(harness)
        out = await client.line("c FETCH 1 ENVELOPE")
        assert b'"=?utf-8?b?R3LDvMOfZQ==?="' in out  # RFC 3501 §7.4.2: not decoded
        assert b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "j" "remote.test"))' in out
        out = await client.line("d FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]<0.8>")
        assert b"BODY[HEADER.FIELDS (SUBJECT)]<0> {8}\r\nSubject:" in out
        assert b"FLAGS (\\Seen \\Recent)" in out
        out = await client.line("e FETCH 1 BODY[1]")
        assert b"FLAGS" not in out  # already \Seen: nothing changed

    run(tmp_path, check)


def test_parse_cache_is_filled_on_first_fetch_and_reused(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        entry = await harness.store.append(harness.account.id, INBOX, MULTIPART)
        assert await harness.store.get_message_cache(entry.message_id) is None
        client = harness.client()
        client.greet()
        await client.line("a LOGIN jane@example.test secret")
        await client.line("b EXAMINE INBOX")
        await client.line("c FETCH 1 BODYSTRUCTURE")
        assert await harness.store.get_message_cache(entry.message_id) is not None

    run(tmp_path, check)
