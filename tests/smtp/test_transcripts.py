"""Every SMTP engine transcript, replayed whole and in 1- and 7-byte chunks."""

from __future__ import annotations

import pytest

from tests.smtp.util import TRANSCRIPTS, parse_transcript, replay

FILES = sorted(TRANSCRIPTS.glob("*.txt"))


def test_transcripts_exist() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("chunk_size", [0, 1, 7], ids=["whole", "1-byte", "7-byte"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path, chunk_size: int) -> None:
    transcript = parse_transcript(path.read_text(encoding="utf-8"))
    for expected, actual in replay(transcript, chunk_size):
        assert actual == expected
