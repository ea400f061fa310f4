"""SELECT of a mailbox selected before: the lookup is skipped only while it is the same."""

from __future__ import annotations

import re
from pathlib import Path

from tests.imap.harness import Client, Harness, run


async def _login(harness: Harness) -> Client:
    client = harness.client()
    client.greet()
    await client.line("a LOGIN jane@example.test secret")
    return client


def _validity(out: bytes) -> int:
    found = re.search(rb"UIDVALIDITY (\d+)", out)
    assert found is not None
    return int(found.group(1))


def test_reselect_sees_a_recreated_mailbox(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        client, other = await _login(harness), await _login(harness)
        await client.line("b CREATE Work")
        first = await client.line("c SELECT Work")
        await client.line("d SELECT INBOX")
        assert (await other.line("e DELETE Work")).endswith(b"e OK DELETE completed\r\n")
        await other.line("f CREATE Work")
        await harness.append("Work")
        again = await client.line("g SELECT Work")
        assert again.endswith(b"g OK [READ-WRITE] SELECT completed\r\n")
        assert _validity(again) != _validity(first)
        assert b"* 1 EXISTS" in again

    run(tmp_path, check)


def test_reselect_of_a_renamed_mailbox_fails(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        client, other = await _login(harness), await _login(harness)
        await client.line("b CREATE Work")
        await client.line("c SELECT Work")
        await client.line("d UNSELECT")
        await other.line("e RENAME Work Old")
        out = await client.line("f SELECT Work")
        assert out.startswith(b"f NO [NONEXISTENT]")

    run(tmp_path, check)
