"""\\Recent (RFC 3501 §2.3.2): each new message is recent in exactly one session."""

from __future__ import annotations

from pathlib import Path

from tests.imap.harness import Client, Harness, run


async def _selected(harness: Harness, mailbox: str = "INBOX") -> Client:
    client = harness.client()
    client.greet()
    await client.line("a LOGIN jane@example.test secret")
    await client.line(f"b SELECT {mailbox}")
    return client


def test_an_appending_session_with_the_mailbox_selected_gets_recent(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        appender, other = await _selected(harness), await _selected(harness)
        await harness.append()  # delivered meanwhile, not yet told to anyone
        out = await appender.line("c APPEND INBOX {5+}\r\nHi!\r\n")
        assert b"* 2 EXISTS\r\n* 2 RECENT\r\n" in out
        assert out.endswith(b" APPEND completed\r\n")
        assert b"* 2 EXISTS\r\n* 0 RECENT\r\n" in await other.line("d NOOP")
        flags = await appender.line("e FETCH 1:2 FLAGS")
        assert flags.count(b"\\Recent") == 2
        # A later session does not get them again.
        late = await _selected(harness)
        assert b"* 0 RECENT" in await late.line("f SELECT INBOX")

    run(tmp_path, check)


def test_an_append_to_another_mailbox_leaves_recent_to_its_first_reader(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        appender = await _selected(harness)
        await appender.line("c CREATE Work")
        assert (await appender.line("d APPEND Work {5+}\r\nHi!\r\n")).endswith(b"completed\r\n")
        reader = harness.client()
        reader.greet()
        await reader.line("a LOGIN jane@example.test secret")
        assert b"* 1 RECENT" in await reader.line("b SELECT Work")

    run(tmp_path, check)
