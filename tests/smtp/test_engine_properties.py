"""Property tests: the engine never crashes or loops, chunking never changes the events,
and dot-stuffing round-trips."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from pillarbox.smtp.engine import EngineConfig, ServerEngine
from pillarbox.smtp.events import NEED_DATA, Event, MessageData, StartTls
from pillarbox.smtp.replies import Reply
from tests.smtp.util import GREETING, FakeSession, dot_stuff

# Fragments that reach every reader: commands, framing, BDAT, AUTH, odd line ends.
FRAGMENTS = [
    b"EHLO c.test\r\n",
    b"HELO c\r\n",
    b"MAIL FROM:<a@c.test>\r\n",
    b"MAIL FROM:<> SIZE=9\r\n",
    b"RCPT TO:<b@mx.test>\r\n",
    b"DATA\r\n",
    b"BDAT 3\r\n",
    b"BDAT 2 LAST\r\n",
    b"BDAT 0 LAST\r\n",
    b"BODY=BINARYMIME",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN =\r\n",
    b"*\r\n",
    b"VRFY x\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b".\r\n",
    b"\r\n.\r\n",
    b"x" * 600,
    b"\x00\xff",
    b"QUIT\r\n",
    b"line\r\n",
    b"GET / HTTP/1.0\r\n",
]
wire_strategy = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=40), max_size=40).map(
    b"".join
)
CONFIGS = st.builds(
    EngineConfig,
    max_line=st.sampled_from([512, 2048]),
    max_auth_line=st.sampled_from([512, 12288]),
    max_message_size=st.sampled_from([0, 10, 1000]),
    bare_newline=st.sampled_from(["reject", "normalize"]),
    max_commands=st.sampled_from([0, 30]),
    max_errors=st.sampled_from([0, 5]),
)


class NoTlsSession(FakeSession):
    """STARTTLS answered 454, so the plaintext buffer is never discarded mid-test."""

    def answer(self, event: Event) -> Reply | None:
        if isinstance(event, StartTls):
            self.events.append(event)
            return Reply(454, "4.7.0", "TLS not available")
        return super().answer(event)


def replay(wire: bytes, cuts: list[int], config: EngineConfig) -> tuple[list[Event], bytes]:
    engine = ServerEngine(config)
    session = NoTlsSession()
    out = [engine.send(GREETING)]
    bounds = [0, *sorted({c % (len(wire) + 1) for c in cuts}), len(wire)]
    budget = len(wire) + 10  # every event consumes at least one octet (or closes)
    for start, end in [*itertools.pairwise(bounds), (len(wire), -1)]:
        if start == end:
            continue  # an empty piece would mean EOF
        engine.receive_data(wire[start:end] if end >= 0 else b"")
        while not engine.closed:
            event = engine.next_event()
            if event is NEED_DATA:
                break
            budget -= 1
            assert budget >= 0, "engine produced events without consuming input"
            reply = session.answer(event)
            if reply is not None:
                out.append(engine.send(reply))
        if engine.closed:
            break
    assert engine.closed  # EOF always ends the session
    return session.events, b"".join(out)


@settings(max_examples=300, deadline=None)
@given(wire=wire_strategy, cuts=st.lists(st.integers(min_value=0), max_size=20), config=CONFIGS)
def test_chunking_never_changes_the_dialog(
    wire: bytes, cuts: list[int], config: EngineConfig
) -> None:
    assert replay(wire, cuts, config) == replay(wire, [], config)


@settings(max_examples=200, deadline=None)
@given(wire=st.binary(max_size=3000), config=CONFIGS)
def test_random_bytes_never_raise(wire: bytes, config: EngineConfig) -> None:
    replay(b"EHLO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@c>\r\nDATA\r\n" + wire, [7, 100], config)
    replay(wire, [1, 2, 3], config)


line_strategy = st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(line_strategy, max_size=20), cuts=st.lists(st.integers(0), max_size=8))
def test_dot_stuffing_round_trips(lines: list[bytes], cuts: list[int]) -> None:
    body = b"".join(line + b"\r\n" for line in lines)
    wire = b"EHLO c\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@c.test>\r\nDATA\r\n"
    events, _ = replay(wire + dot_stuff(body) + b"QUIT\r\n", cuts, EngineConfig())
    assert [e.body for e in events if isinstance(e, MessageData)] == [body]
