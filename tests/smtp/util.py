"""Test helpers for the SMTP engine: a fake session, dot-stuffing, and a transcript runner."""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pillarbox.smtp.engine import DEFAULT_EXTENSIONS, EngineConfig, Extension, ServerEngine
from pillarbox.smtp.events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    BdatChunk,
    ConnectionClosed,
    Data,
    Etrn,
    Event,
    Expn,
    Helo,
    Help,
    MailFrom,
    MessageData,
    Noop,
    Onex,
    Quit,
    RcptTo,
    Rejected,
    Rset,
    StartTls,
    Verb,
    Vrfy,
)
from pillarbox.smtp.replies import Reply

TRANSCRIPTS = Path(__file__).parent.parent / "transcripts" / "smtp"

GREETING = Reply(220, None, "mx.test ESMTP Pillarbox")


def dot_stuff(body: bytes) -> bytes:
    """RFC 5321 §4.5.2: the client side of dot-stuffing, plus the terminator.

    ``body`` must have CRLF line ends; a missing final CRLF is added.
    """
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    stuffed = (b"\r\n" + body).replace(b"\r\n.", b"\r\n..")[2:]
    return stuffed + b".\r\n"


@dataclass
class FakeSession:
    """Answers every event the standard way, so that transcripts exercise the engine alone."""

    events: list[Event] = field(default_factory=list)
    bdat_octets: int = 0

    def answer(self, event: Event) -> Reply | None:
        self.events.append(event)
        match event:
            case Helo(name=name, extended=True):
                return Reply(250, None, ("mx.test Hello " + name, "PIPELINING", "CHUNKING"))
            case Helo(name=name):
                return Reply(250, None, "mx.test Hello " + name)
            case MailFrom(address=address):
                return Reply(250, "2.1.0", f"<{address}> sender ok")
            case RcptTo(address=address):
                return Reply(250, "2.1.5", f"<{address}> recipient ok")
            case Data():
                return Reply(354, None, "End data with <CR><LF>.<CR><LF>")
            case MessageData(body=body):
                return Reply(250, "2.0.0", f"Message accepted, {len(body)} octets")
            case BdatChunk(data=data, last=last):
                self.bdat_octets += len(data)
                if not last:
                    return Reply(250, "2.0.0", f"{len(data)} octets received")
                total, self.bdat_octets = self.bdat_octets, 0
                return Reply(250, "2.0.0", f"Message accepted, {total} octets")
            case _:
                return _SIMPLE_ANSWERS(event)


def _SIMPLE_ANSWERS(event: Event) -> Reply | None:
    match event:
        case Rset() | Noop() | Verb() | Onex():
            return Reply(250, "2.0.0", "OK")
        case Quit():
            return Reply(221, "2.0.0", "Bye")
        case Help(topic=topic):
            return Reply(214, "2.0.0", f"Help for {topic or 'everything'}")
        case Vrfy(arg=arg):
            return Reply(252, "2.1.5", f"Cannot VRFY {arg}")
        case Expn(arg=arg):
            return Reply(250, "2.1.5", f"List {arg}")
        case Etrn(arg=arg):
            return Reply(250, "2.0.0", f"Queuing for {arg} started")
        case StartTls():
            return Reply(220, "2.0.0", "Ready to start TLS")
        case Auth(initial=None):
            return Reply(334, None, "")
        case Auth():
            return Reply(235, "2.7.0", "Authentication successful")
        case AuthResponse(line=b"*"):
            return Reply(501, "5.0.0", "Authentication cancelled")
        case AuthResponse():
            return Reply(235, "2.7.0", "Authentication successful")
        case Rejected(reply=reply):
            return reply
        case ConnectionClosed():
            return None
    raise AssertionError(f"no answer for {event!r}")


def drain(engine: ServerEngine, session: FakeSession) -> bytes:
    """Run events until the engine needs data (what the driver does); return the output."""
    out: list[bytes] = []
    while not engine.closed:
        event = engine.next_event()
        if event is NEED_DATA:
            break
        reply = session.answer(event)
        if reply is not None:
            out.append(engine.send(reply))
    return b"".join(out)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` octets (0 = all at once)."""
    if size == 0:
        yield data
        return
    for start in range(0, len(data), size):
        yield data[start : start + size]


@dataclass
class Step:
    """One client flight (bytes, or EOF) and the server output expected after it."""

    send: bytes
    eof: bool = False
    expect: list[str] = field(default_factory=list)


@dataclass
class Transcript:
    config: EngineConfig
    steps: list[Step]
    greeting: list[str]
    closed: bool


def _config_value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


def parse_transcript(text: str) -> Transcript:
    """Parse a transcript.

    ``C: text`` sends text+CRLF; ``R: text`` sends text with Python escapes and no CRLF;
    ``X: EOF`` closes the client side; ``S: line`` is an expected server line;
    ``@ key=value`` sets an EngineConfig field; ``+ NAME`` / ``- NAME`` enables or
    disables an extension; ``X: CLOSED`` at the end asserts the
    engine closed; ``#`` starts a comment.  Consecutive client lines form one flight.
    """
    config: dict[str, object] = {}
    steps: list[Step] = []
    greeting: list[str] = []
    closed = False
    for raw in text.splitlines():
        kind, _, rest = raw.partition(": ")
        if raw.startswith("@ "):
            key, _, value = raw[2:].partition("=")
            config[key.strip()] = _config_value(value.strip())
        elif raw.startswith(("+ ", "- ")):
            extensions = config.get("extensions", DEFAULT_EXTENSIONS)
            assert isinstance(extensions, frozenset)
            change = {Extension(raw[2:].strip().upper())}
            extensions = extensions | change if raw[0] == "+" else extensions - change
            config["extensions"] = frozenset(extensions)
        elif not raw or raw.startswith("#"):
            continue
        elif kind == "S":
            (steps[-1].expect if steps else greeting).append(rest)
        elif kind in ("C", "R", "X") and (not steps or steps[-1].expect or steps[-1].eof):
            steps.append(Step(b""))
            _add_client(steps[-1], kind, rest)
        elif kind in ("C", "R", "X"):
            _add_client(steps[-1], kind, rest)
        else:
            raise ValueError(f"bad transcript line: {raw!r}")
        if kind == "X" and rest == "CLOSED":
            closed = True
    return Transcript(EngineConfig(**config), steps, greeting, closed)  # type: ignore[arg-type]


def _add_client(step: Step, kind: str, rest: str) -> None:
    if kind == "C":
        step.send += rest.encode() + b"\r\n"
    elif kind == "R":
        step.send += codecs.escape_decode(rest.encode())[0]
    elif rest == "EOF":
        step.eof = True
    elif rest != "CLOSED":
        raise ValueError(f"bad X: directive {rest!r}")


def replay(transcript: Transcript, chunk_size: int) -> list[tuple[list[str], list[str]]]:
    """Replay; return (expected, actual) server lines per step (greeting first)."""
    engine = ServerEngine(transcript.config)
    session = FakeSession()
    greeting = engine.send(GREETING).decode()
    results = [(transcript.greeting, greeting.splitlines())] if transcript.greeting else []
    for step in transcript.steps:
        out = b""
        for piece in chunks(step.send, chunk_size):
            engine.receive_data(piece)
            out += drain(engine, session)
        if step.eof:
            engine.receive_data(b"")
            out += drain(engine, session)
        results.append((step.expect, out.decode("utf-8", "replace").split("\r\n")[:-1]))
    assert engine.closed == transcript.closed, f"engine.closed is {engine.closed}"
    return results


def config_with(**changes: object) -> EngineConfig:
    return dataclasses.replace(EngineConfig(), **changes)  # type: ignore[arg-type]
