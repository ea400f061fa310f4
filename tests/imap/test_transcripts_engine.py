"""Replay every IMAP engine transcript through the engine and a fake session, whole and in
1- and 7-byte chunks; the server's bytes must match the S: lines exactly.

Transcript syntax: "C: line" client (CRLF added; "C:" alone is an empty line), "S: line"
server, "! option ..." engine options (tls-active, literal-plus, max_literal=N ...),
"-- TLS --" the driver completes the STARTTLS handshake, "-- EOF --" the client closes,
"-- CLOSED --" the server must have closed by now, "# ..." comments. "C+ text" sends text
without CRLF (for the end of a literal that is followed by more on the same line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.imap.fake_engine_session import GREETING, FakeSession, new_engine

TRANSCRIPTS = Path(__file__).parent.parent / "transcripts" / "imap"
CRLF = b"\r\n"


@dataclass
class Transcript:
    options: dict[str, str] = field(default_factory=dict)
    segments: list[tuple[bytes, str]] = field(default_factory=list)
    expected: bytes = b""


def load(path: Path) -> Transcript:
    transcript = Transcript()
    client = bytearray()
    expected = bytearray()
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("C:"):
            client += raw[3:].encode() + CRLF
        elif raw.startswith("C+ "):
            client += raw[3:].encode()
        elif raw.startswith("S:"):
            expected += raw[3:].encode() + CRLF
        elif raw.startswith("! "):
            for option in raw[2:].split():
                key, _, value = option.partition("=")
                transcript.options[key] = value
        elif raw.startswith("-- ") and raw.endswith(" --"):
            transcript.segments.append((bytes(client), raw[3:-3]))
            client.clear()
        elif raw and not raw.startswith("#"):
            raise ValueError(f"{path.name}: cannot read line {raw!r}")
    transcript.segments.append((bytes(client), ""))
    transcript.expected = bytes(expected)
    return transcript


def replay(transcript: Transcript, chunk: int | None) -> tuple[bytes, FakeSession]:
    engine = new_engine(transcript.options)
    session = FakeSession(engine)
    out = [engine.send(GREETING)]
    for data, marker in transcript.segments:
        step = chunk or max(len(data), 1)
        for start in range(0, len(data), step):
            out.append(session.run(data[start : start + step]))
        if marker == "TLS":
            assert engine.tls_pending, "no STARTTLS was accepted before -- TLS --"
            engine.tls_established()
        elif marker == "EOF":
            out.append(session.run(b""))
            assert session.closed_by_peer
        elif marker == "CLOSED":
            assert engine.closed
    return b"".join(out), session


FILES = sorted(TRANSCRIPTS.glob("*.txt"))


@pytest.mark.parametrize("chunk", [None, 1, 7], ids=["whole", "1-byte", "7-byte"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path: Path, chunk: int | None) -> None:
    transcript = load(path)
    out, _ = replay(transcript, chunk)
    assert out.decode("utf-8", "replace").splitlines() == (
        transcript.expected.decode("utf-8").splitlines()
    )
    assert out == transcript.expected


def test_there_are_transcripts() -> None:
    assert len(FILES) >= 8
