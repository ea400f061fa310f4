"""Replay every POP3 transcript through the engine and the fake session, whole and in
1- and 7-byte chunks; the server's bytes must match the S: lines exactly.

Transcript syntax: "C: line" client, "S: line" server ("S:" alone is an empty line),
"! option ..." engine options (plaintext, tls, tls-active, apop), "-- TLS --" the driver
completes the STLS handshake, "-- EOF --" the client closes, "-- CLOSED --" the server must
have closed by now, "# ..." comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.pop3.fake_session import FakeSession, new_engine

TRANSCRIPTS = Path(__file__).parent.parent / "transcripts" / "pop3"
CRLF = b"\r\n"


@dataclass
class Transcript:
    options: set[str] = field(default_factory=set)
    # (client bytes, marker after them): markers "TLS", "EOF", "CLOSED" or "".
    segments: list[tuple[bytes, str]] = field(default_factory=list)
    expected: bytes = b""


def load(path: Path) -> Transcript:
    transcript = Transcript()
    client = bytearray()
    expected = bytearray()
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("C:"):
            client += raw[3:].encode() + CRLF
        elif raw.startswith("S:"):
            expected += raw[3:].encode() + CRLF
        elif raw.startswith("! "):
            transcript.options.update(raw[2:].split())
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
    out = [engine.send(engine.greeting())]
    for data, marker in transcript.segments:
        step = chunk or max(len(data), 1)
        for start in range(0, len(data), step):
            out.append(session.run(data[start : start + step]))
        if marker == "TLS":
            assert engine.tls_pending, "no STLS was accepted before -- TLS --"
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


def test_seed_session_removes_exactly_the_deleted_message() -> None:
    out, session = replay(load(TRANSCRIPTS / "seed_session.txt"), 1)
    assert len(session.store) == 2
    assert b"+OK Pillarbox POP3 server signing off (2 messages left)" in out


def test_dropped_connection_deletes_nothing() -> None:
    _, session = replay(load(TRANSCRIPTS / "eof_deletes_nothing.txt"), None)
    assert len(session.store) == 3
    assert session.engine.closed


def test_every_command_appears_in_some_transcript() -> None:
    client_verbs: set[bytes] = set()
    for path in FILES:
        for data, _ in load(path).segments:
            client_verbs.update(line.split(b" ")[0].upper() for line in data.split(CRLF))
    for verb in [b"USER", b"PASS", b"APOP", b"AUTH", b"STLS", b"UTF8", b"CAPA", b"QUIT"]:
        assert verb in client_verbs
    for verb in [b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL"]:
        assert verb in client_verbs
