"""Account quotas: APPEND and COPY over the quota get NO [OVERQUOTA]; nothing is stored."""

from __future__ import annotations

from pathlib import Path

from pillarbox.store.api import INBOX
from tests.imap.harness import DOMAIN, PASSWORD_HASH, Harness, run, sample


def test_append_and_copy_over_quota_are_refused(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        size = len(sample(1))
        small = await harness.store.add_account(f"small@{DOMAIN}", PASSWORD_HASH, quota=size * 2)
        await harness.store.append(small.id, INBOX, sample(1))
        client = harness.client()
        client.greet()
        await client.line(f"a LOGIN small@{DOMAIN} secret")
        await client.line("b SELECT INBOX")
        message = sample(2) + b"x" * size
        out = await client.send(b"c APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
        assert out == b"c NO [OVERQUOTA] Quota exceeded\r\n"
        out = await client.line("d APPEND Archive {5+}\r\nhello")
        assert out.startswith(b"d OK [APPENDUID ")  # 5 more octets still fit
        out = await client.line("e COPY 1 Archive")
        assert out == b"e NO [OVERQUOTA] Quota exceeded\r\n"
        archive = await harness.store.get_mailbox(small.id, "Archive")
        assert archive.messages == 1

    run(tmp_path, check)


def test_store_with_unchangedsince_reports_modified_messages(tmp_path: Path) -> None:
    async def check(harness: Harness) -> None:
        for _ in range(2):
            await harness.append()
        client = harness.client()
        client.greet()
        await client.line("a LOGIN jane@example.test secret")
        await client.line("b SELECT INBOX (CONDSTORE)")
        out = await client.line("c FETCH 1:2 (MODSEQ)")
        first, second = (int(x.split(b"MODSEQ (")[1].split(b")")[0]) for x in out.splitlines()[:2])
        box = await harness.store.get_mailbox(harness.account.id, INBOX)
        # Another session changes message 2 after the client read its MODSEQ.
        entries = await harness.store.store_flags(box.id, [2], frozenset({"$X"}), frozenset())
        out = await client.line(
            f"d STORE 1:2 (UNCHANGEDSINCE {max(first, second)}) +FLAGS (\\Seen)"
        )
        lines = out.splitlines()
        # RFC 7162 §3.1.3: message 1 is changed, 2 is left alone and named in MODIFIED.
        assert lines[0].startswith(b"* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (")
        assert lines[-1] == b"d OK [MODIFIED 2] STORE completed"
        assert entries[0].flags == frozenset({"$X"})

    run(tmp_path, check)
