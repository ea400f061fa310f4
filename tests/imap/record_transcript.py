"""Print the server's side of a draft session transcript, for review before saving.

    python -m tests.imap.record_transcript draft.txt > tests/transcripts/imap_session/x.txt

The draft holds C: lines and "!" directives (see tests/imap/harness.py); every client line
is sent on its own and the server's answer printed after it, with UIDVALIDITY, MODSEQ and
capability lists replaced by placeholders. Read the output against the RFC before saving it:
a recorded transcript is only a test once a person has checked it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path

from tests.imap.harness import directive, load, open_harness


def normalise(line: str) -> str:
    line = re.sub(r"\[CAPABILITY [^\]]*\]", "[CAPABILITY <*>]", line)
    return re.sub(r"(UIDVALIDITY|HIGHESTMODSEQ|APPENDUID|COPYUID) \d+", r"\1 <n>", line)


def show(data: bytes) -> None:
    for line in data.decode("utf-8", "replace").split("\r\n")[:-1]:
        print("S: " + normalise(line))


async def record(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        harness = await open_harness(Path(tmp))
        options, steps = load(path)
        for option in sorted(options):
            print("! " + option)
        client = harness.client(plaintext="plaintext" in options, tls="tls" in options)
        show(client.greet())
        for step in steps:
            if step.directive:
                print("! " + " ".join(step.directive))
                show(await directive(harness, client, step.directive))
            for line in step.client.decode().split("\r\n")[:-1]:
                print("C: " + line)
                show(await client.send(line.encode() + b"\r\n"))
        await harness.store.close()


if __name__ == "__main__":
    asyncio.run(record(Path(sys.argv[1])))
