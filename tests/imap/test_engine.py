"""The IMAP engine's framing, limits and state rules (transcripts cover the dialogs)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pillarbox.imap import commands as c
from pillarbox.imap.engine import (
    LITERAL_MINUS_MAX,
    NEED_DATA,
    AuthenticateResponse,
    Command,
    ConnectionClosed,
    Done,
    Event,
    ImapConfig,
    ImapEngine,
    LiteralPending,
    NeedData,
    ParseError,
)
from pillarbox.imap.responses import (
    Continuation,
    Status,
    Tagged,
    UntaggedStatus,
    exists,
)
from tests.imap.fake_engine_session import FakeSession


def feed(engine: ImapEngine, data: bytes) -> Event | NeedData:
    engine.receive_data(data)
    return engine.next_event()


def command(engine: ImapEngine, data: bytes) -> Command:
    event = feed(engine, data)
    assert isinstance(event, Command), event
    return event


def refusal(engine: ImapEngine, data: bytes) -> bytes:
    event = feed(engine, data)
    assert isinstance(event, ParseError), event
    return event.response.to_bytes()


def test_commands_are_framed_one_by_one() -> None:
    engine = ImapEngine()
    engine.receive_data(b"a1 NOOP\r\na2 CHECK\r\na3 CAP")
    assert engine.next_event() == Command("a1", c.Noop())
    engine.send(Tagged("a1", Status.OK, "done"))
    assert engine.next_event() == Command("a2", c.Check())
    engine.send(Tagged("a2", Status.OK, "done"))
    assert engine.next_event() is NEED_DATA
    assert feed(engine, b"ABILITY\r\n") == Command("a3", c.Capability())


def test_next_event_before_the_tagged_response_is_a_bug() -> None:
    engine = ImapEngine()
    command(engine, b"a1 NOOP\r\na2 NOOP\r\n")
    engine.send(exists(3))  # untagged data does not complete the command
    with pytest.raises(RuntimeError):
        engine.next_event()


def test_continuation_only_for_authenticate_idle_and_literals() -> None:
    engine = ImapEngine()
    command(engine, b"a1 NOOP\r\n")
    with pytest.raises(RuntimeError):
        engine.send(Continuation("what"))


def test_bare_lf_and_bare_cr_are_bad_and_the_connection_stays() -> None:
    engine = ImapEngine()
    assert refusal(engine, b"a1 NOOP\n") == b"a1 BAD Lines must end with CRLF\r\n"
    assert refusal(engine, b"a2 NO\rOP\r\n") == b"a2 BAD Bare CR in command\r\n"
    assert command(engine, b"a3 NOOP\r\n") == Command("a3", c.Noop())


def test_synchronizing_literal_needs_a_continuation_first() -> None:
    engine = ImapEngine()
    event = feed(engine, b"a1 LOGIN {5}\r\n")
    assert isinstance(event, LiteralPending)
    with pytest.raises(RuntimeError):
        engine.next_event()
    assert engine.send(event.response) == b"+ Ready for literal data\r\n"
    assert engine.next_event() is NEED_DATA
    assert feed(engine, b"alice pw\r\n") == Command("a1", c.Login("alice", "pw"))


def test_literal_minus_refuses_large_non_synchronizing_literals() -> None:
    engine = ImapEngine(ImapConfig(literal_minus=True))
    size = LITERAL_MINUS_MAX + 1
    data = b"a1 APPEND INBOX {%d+}\r\n" % size + b"x" * size + b"\r\n"
    assert refusal(engine, data) == b"a1 BAD [TOOBIG] Non-synchronizing literal too large\r\n"
    data = b"a2 LOGIN {%d+}\r\n" % size + b"x" * size + b" pw\r\n"
    assert refusal(engine, data) == b"a2 BAD Non-synchronizing literal too large\r\n"
    assert command(engine, b"a3 NOOP\r\n") == Command("a3", c.Noop())
    engine.send(Tagged("a3", Status.OK, "done"))
    # exactly 4096 is fine
    data = b"a4 APPEND INBOX {4096+}\r\n" + b"y" * 4096 + b"\r\n"
    event = command(engine, data)
    assert isinstance(event.command, c.Append) and event.command.message == b"y" * 4096


def test_literal_plus_accepts_large_non_synchronizing_literals() -> None:
    engine = ImapEngine(ImapConfig(literal_minus=False))
    data = b"a1 APPEND INBOX {10000+}\r\n" + b"z" * 10000 + b"\r\n"
    event = command(engine, data)
    assert isinstance(event.command, c.Append) and len(event.command.message) == 10000


def test_oversized_synchronizing_literal_is_refused_before_any_octet() -> None:
    engine = ImapEngine(ImapConfig(max_literal=100, max_message_size=1000))
    assert refusal(engine, b"a1 LOGIN {101}\r\n") == b"a1 BAD Literal too large\r\n"
    assert refusal(engine, b"a2 APPEND x {1001}\r\n") == b"a2 NO [TOOBIG] Message too large\r\n"
    # the client sent no literal: the next line is a command again
    assert command(engine, b"a3 NOOP\r\n") == Command("a3", c.Noop())


def test_literal_sizes_add_up_within_one_command() -> None:
    engine = ImapEngine(ImapConfig(max_literal=10))
    assert isinstance(feed(engine, b"a1 LOGIN {6}\r\n"), LiteralPending)
    engine.send(Continuation())
    assert refusal(engine, b"abcdef {5}\r\n") == b"a1 BAD Literal too large\r\n"


def test_big_append_in_chunks_keeps_every_octet() -> None:
    engine = ImapEngine()
    message = bytes(range(256)) * 4096  # 1 MiB with CR, LF and NUL inside
    event = feed(engine, b"a1 APPEND INBOX {%d}\r\n" % len(message))
    assert isinstance(event, LiteralPending)
    engine.send(event.response)
    data = message + b"\r\n"
    for start in range(0, len(data), 65536):
        engine.receive_data(data[start : start + 65536])
    got = engine.next_event()
    assert isinstance(got, Command) and isinstance(got.command, c.Append)
    assert got.command.message == message


def test_authenticate_exchange_over_several_lines() -> None:
    engine = ImapEngine()
    command(engine, b"a1 AUTHENTICATE LOGIN\r\n")
    engine.send(Continuation("VXNlcm5hbWU6"))
    assert feed(engine, b"YWxpY2U=\r\n") == AuthenticateResponse("a1", b"YWxpY2U=")
    engine.send(Continuation("UGFzc3dvcmQ6"))
    assert feed(engine, b"c2VjcmV0\r\n") == AuthenticateResponse("a1", b"c2VjcmV0")
    engine.send(Tagged("a1", Status.OK, "done"))
    assert command(engine, b"a2 NOOP\r\n") == Command("a2", c.Noop())


def test_authenticate_lines_are_not_parsed_as_commands() -> None:
    engine = ImapEngine()
    command(engine, b"a1 AUTHENTICATE PLAIN\r\n")
    engine.send(Continuation(""))
    assert feed(engine, b"a2 LOGOUT\r\n") == AuthenticateResponse("a1", b"a2 LOGOUT")


def test_idle_allows_untagged_data_and_ends_with_done() -> None:
    engine = ImapEngine()
    command(engine, b"a1 IDLE\r\n")
    engine.send(Continuation("idling"))
    assert engine.idling
    assert engine.next_event() is NEED_DATA
    assert engine.send(exists(4)) == b"* 4 EXISTS\r\n"
    assert feed(engine, b"DONE\r\n") == Done("a1")
    assert not engine.idling
    with pytest.raises(RuntimeError):
        engine.next_event()  # the IDLE's tagged OK is still owed
    engine.send(Tagged("a1", Status.OK, "IDLE terminated"))
    assert feed(engine, b"") == ConnectionClosed()


def test_starttls_discards_pipelined_plaintext() -> None:
    engine = ImapEngine()
    command(engine, b"a1 STARTTLS\r\na2 LOGIN evil pw\r\n")
    engine.send(Tagged("a1", Status.OK, "Begin TLS"))
    assert engine.tls_pending
    engine.receive_data(b"a3 LOGIN more evil\r\n")
    assert engine.next_event() is NEED_DATA
    engine.tls_established()
    assert engine.tls_active and not engine.tls_pending
    assert command(engine, b"a4 NOOP\r\n") == Command("a4", c.Noop())


def test_starttls_refused_keeps_plaintext() -> None:
    engine = ImapEngine()
    command(engine, b"a1 STARTTLS\r\n")
    engine.send(Tagged("a1", Status.NO, "TLS unavailable"))
    assert not engine.tls_pending
    with pytest.raises(RuntimeError):
        engine.tls_established()


def test_unsolicited_bye_closes() -> None:
    engine = ImapEngine()
    assert engine.send(UntaggedStatus(Status.BYE, "Idle timeout")) == b"* BYE Idle timeout\r\n"
    assert engine.closed


def test_eof_mid_command_closes() -> None:
    engine = ImapEngine()
    assert feed(engine, b"a1 NO") is NEED_DATA
    assert feed(engine, b"") == ConnectionClosed()
    assert engine.closed


# --- robustness ---------------------------------------------------------------------

SOUP = [
    b"a1 NOOP\r\n", b"a2 LOGIN {3}\r\n", b"abc", b" x\r\n", b"{5+}\r\n", b"\r\n", b"\n",
    b"a3 IDLE\r\n", b"DONE\r\n", b"a4 AUTHENTICATE PLAIN\r\n", b"*\r\n", b"a5 STARTTLS\r\n",
    b"a6 APPEND x {4+}\r\n", b"a7 SEARCH (((", b"\r", b"a8 FETCH 1:* (BODY[]<0.1>)\r\n",
    b"a9 LOGOUT\r\n", b"~{2}\r\n", b"a10 SELECT \"x\r\n",
]  # fmt: skip


def run_all(data: bytes, chunk: int) -> bytes:
    engine = ImapEngine(ImapConfig(max_line=200, max_literal=50, max_discard=100))
    session = FakeSession(engine)
    out = []
    for start in range(0, len(data), chunk):
        out.append(session.run(data[start : start + chunk]))
        if engine.tls_pending:
            engine.tls_established()
    if not engine.closed:
        out.append(session.run(b""))
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=25), st.integers(1, 9))
def test_any_chunking_gives_the_same_output(pieces: list[bytes], chunk: int) -> None:
    data = b"".join(pieces)
    if b"STARTTLS" in data:
        return  # what TLS discards depends on how much was already received
    assert run_all(data, chunk) == run_all(data, max(len(data), 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 64))
def test_random_bytes_never_raise_and_always_end(data: bytes, chunk: int) -> None:
    out = run_all(data, chunk)
    assert isinstance(out, bytes)
