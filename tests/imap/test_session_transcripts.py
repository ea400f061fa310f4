"""Replay the session transcripts (tests/transcripts/imap_session) against engine + session
+ a real SQLite store. Each file is one client's dialogue; see tests/imap/harness.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imap.harness import replay, run

TRANSCRIPTS = Path(__file__).parent.parent / "transcripts" / "imap_session"
FILES = sorted(TRANSCRIPTS.glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path: Path, tmp_path: Path) -> None:
    run(tmp_path, lambda harness: replay(harness, path))
