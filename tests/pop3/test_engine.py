"""The POP3 engine's API contract, tables and robustness (transcripts cover the dialogs)."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pillarbox.pop3 import replies
from pillarbox.pop3.commands import ALLOWED, COMMANDS, INVALID_UTF8
from pillarbox.pop3.engine import (
    BARE_LINE_END,
    LINE_TOO_LONG,
    MAX_COMMAND_LINE,
    MAX_SASL_LINE,
    Pop3Config,
    Pop3Engine,
    capabilities,
)
from pillarbox.pop3.events import (
    NEED_DATA,
    AuthResponse,
    Capa,
    ConnectionClosed,
    Event,
    Pass,
    Quit,
    Rejected,
    Stat,
    User,
)
from pillarbox.pop3.replies import Challenge, Err, Ok
from pillarbox.pop3.states import (
    Authorization,
    SaslExchange,
    State,
    Transaction,
    Update,
    UserGiven,
)
from tests.pop3.fake_session import FakeSession, new_engine


def greeted(**options: bool) -> Pop3Engine:
    engine = Pop3Engine(Pop3Config(tls_available=True), **options)  # type: ignore[arg-type]
    engine.send(engine.greeting())
    return engine


def feed(engine: Pop3Engine, data: bytes) -> Event:
    engine.receive_data(data)
    event = engine.next_event()
    assert event is not NEED_DATA
    return event


def state_of(engine: Pop3Engine) -> State:
    return engine.state  # a call, so mypy does not keep an earlier narrowing


def logged_in() -> Pop3Engine:
    engine = greeted(plaintext_allowed=True)
    feed(engine, b"USER a\r\n")
    engine.send(replies.USER_ACCEPTED)
    feed(engine, b"PASS b\r\n")
    engine.send(replies.maildrop_ready(0, 0))
    assert isinstance(engine.state, Transaction)
    return engine


# --- tables ------------------------------------------------------------------


def test_every_allowed_command_has_a_parser_and_every_state_a_row() -> None:
    for verbs in ALLOWED.values():
        assert verbs <= COMMANDS.keys()
    assert set(ALLOWED) == set(typing.get_args(State))
    allowed_somewhere = set().union(*ALLOWED.values())
    assert allowed_somewhere == COMMANDS.keys()


def test_the_fake_session_answers_every_event_type() -> None:
    session = FakeSession(new_engine(set()))
    assert set(session.handlers) == set(typing.get_args(Event))


def test_capabilities_follow_tls_and_plaintext_policy() -> None:
    config = Pop3Config(tls_available=True, expire="30", login_delay=900)
    before = capabilities(config, tls_active=False, plaintext_allowed=False)
    assert "STLS" in before
    assert "USER" not in before
    assert not any(line.startswith("SASL") for line in before)
    assert "EXPIRE 30" in before
    assert "LOGIN-DELAY 900" in before
    after = capabilities(config, tls_active=True, plaintext_allowed=True)
    assert "STLS" not in after
    assert {"USER", "SASL PLAIN LOGIN", "UTF8 USER", "PIPELINING", "RESP-CODES"} <= set(after)
    scram = Pop3Config(sasl_mechanisms=("SCRAM-SHA-256", "PLAIN"))
    assert "SASL SCRAM-SHA-256" in capabilities(scram, False, False)


# --- API contract ---------------------------------------------------------------


def test_one_response_per_event() -> None:
    engine = greeted(plaintext_allowed=True)
    engine.receive_data(b"USER a\r\nUSER b\r\n")
    assert engine.next_event() == User("a")
    with pytest.raises(RuntimeError, match="response"):
        engine.next_event()
    engine.send(replies.USER_ACCEPTED)
    assert engine.next_event() == User("b")


def test_send_without_a_command_is_refused_except_a_closing_error() -> None:
    engine = greeted()
    with pytest.raises(RuntimeError, match="waiting"):
        engine.send(Ok("unasked"))
    assert engine.send(replies.IDLE_TIMEOUT) == b"-ERR Disconnected for inactivity.\r\n"
    assert engine.closed
    with pytest.raises(RuntimeError, match="closed"):
        engine.next_event()
    with pytest.raises(RuntimeError, match="closed"):
        engine.send(Err("x"))


def test_a_challenge_answers_only_auth() -> None:
    engine = greeted(plaintext_allowed=True)
    feed(engine, b"USER a\r\n")
    with pytest.raises(ValueError, match="AUTH"):
        engine.send(Challenge(b"x"))
    fresh = Pop3Engine(Pop3Config())
    with pytest.raises(ValueError, match="AUTH"):
        fresh.send(Challenge(b"x"))


def test_an_error_with_closes_ends_the_session() -> None:
    engine = greeted(plaintext_allowed=True)
    feed(engine, b"USER a\r\n")
    engine.send(Err("too many failures", closes=True))
    assert engine.closed


def test_tls_established_only_after_stls() -> None:
    engine = greeted()
    with pytest.raises(RuntimeError, match="STLS"):
        engine.tls_established()


def test_input_during_the_tls_handshake_is_discarded() -> None:
    engine = greeted()
    feed(engine, b"STLS\r\n")
    engine.send(replies.TLS_STARTING)
    assert engine.tls_pending
    engine.receive_data(b"USER injected\r\n")
    assert engine.next_event() is NEED_DATA
    engine.tls_established()
    assert engine.tls_active
    assert engine.plaintext_allowed
    assert engine.next_event() is NEED_DATA
    assert feed(engine, b"CAPA\r\n") == Capa()


def test_eof_during_the_tls_handshake_closes() -> None:
    engine = greeted()
    feed(engine, b"STLS\r\n")
    engine.send(replies.TLS_STARTING)
    engine.receive_data(b"")
    assert engine.next_event() == ConnectionClosed()
    assert engine.closed


def test_refused_stls_keeps_the_plaintext_session() -> None:
    engine = greeted()
    feed(engine, b"STLS\r\n")
    engine.send(replies.SYSTEM_TEMPORARY)
    assert not engine.tls_pending
    assert feed(engine, b"CAPA\r\n") == Capa()


def test_quit_in_transaction_goes_through_update() -> None:
    engine = logged_in()
    event = feed(engine, b"QUIT\r\n")
    assert event == Quit(update=True)
    assert isinstance(engine.state, Update)
    engine.send(replies.signing_off(0))
    assert engine.closed


def test_quit_before_login_has_no_update() -> None:
    engine = greeted()
    assert feed(engine, b"QUIT\r\n") == Quit(update=False)
    engine.send(replies.signing_off())
    assert engine.closed


def test_a_partial_line_at_eof_is_dropped() -> None:
    engine = logged_in()
    engine.receive_data(b"DELE 1")
    assert engine.next_event() is NEED_DATA
    engine.receive_data(b"")
    assert engine.next_event() == ConnectionClosed()
    assert engine.closed


def test_lines_already_buffered_are_answered_before_eof() -> None:
    engine = logged_in()
    engine.receive_data(b"STAT\r\n")
    engine.receive_data(b"")
    assert engine.next_event() == Stat()
    engine.send(replies.stat(0, 0))
    assert engine.next_event() == ConnectionClosed()


def test_state_follows_user_pass_replies() -> None:
    engine = greeted(plaintext_allowed=True)
    feed(engine, b"USER a\r\n")
    engine.send(replies.USER_ACCEPTED)
    assert engine.state == UserGiven("a")
    assert feed(engine, b"PASS p w\r\n") == Pass("a", "p w")
    engine.send(replies.AUTH_FAILED)
    assert state_of(engine) == Authorization()


def test_sasl_state_and_long_responses() -> None:
    engine = greeted(plaintext_allowed=True)
    feed(engine, b"AUTH PLAIN\r\n")
    engine.send(Challenge())
    assert engine.state == SaslExchange("PLAIN")
    long_response = b"QUFB" * 500  # 2000 octets: longer than a command line may be
    assert feed(engine, long_response + b"\r\n") == AuthResponse(b"AAA" * 500)
    engine.send(Challenge())
    event = feed(engine, b"A" * MAX_SASL_LINE + b"\r\n")
    assert event == Rejected(LINE_TOO_LONG)
    engine.send(event.response)
    assert state_of(engine) == Authorization()


def test_utf8_mode_is_recorded() -> None:
    engine = greeted()
    assert not engine.utf8
    feed(engine, b"UTF8\r\n")
    engine.send(replies.UTF8_ENABLED)
    assert engine.utf8


def test_user_names_must_be_utf8_without_controls() -> None:
    engine = greeted(plaintext_allowed=True)
    assert feed(engine, b"USER \xff\xfe\r\n") == Rejected(INVALID_UTF8)
    engine.send(INVALID_UTF8)
    event = feed(engine, b"USER a\x00b\r\n")
    assert isinstance(event, Rejected)
    assert event.response.text == "Invalid user name"


@pytest.mark.parametrize("line", [b"STAT\n", b"ST\rAT\r\n", b"STAT\r\r\n"])
def test_bare_cr_or_lf_is_refused(line: bytes) -> None:
    engine = logged_in()
    assert feed(engine, line) == Rejected(BARE_LINE_END)


def test_an_endless_line_is_refused_once_and_not_buffered() -> None:
    engine = logged_in()
    rejections = 0
    for _ in range(1000):
        engine.receive_data(b"x" * 1000)
        event = engine.next_event()
        if event is not NEED_DATA:
            assert event == Rejected(LINE_TOO_LONG)
            engine.send(event.response)
            rejections += 1
        assert len(engine._buffer) <= MAX_COMMAND_LINE + 1000
    assert rejections == 1
    assert feed(engine, b"tail\r\nSTAT\r\n") == Stat()


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(Pass("a", "hunter2"))
    assert "c2VjcmV0" not in repr(AuthResponse(b"c2VjcmV0"))
    assert "secret" not in repr(AuthResponse(b"secret"))


# --- robustness -------------------------------------------------------------------

COMMAND_WORDS = [
    b"USER alice@example.test",
    b"PASS secret",
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"*",
    b"STLS",
    b"UTF8",
    b"CAPA",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"RETR 1",
    b"DELE 1",
    b"RSET",
    b"NOOP",
    b"TOP 1 0",
    b"UIDL",
    b"QUIT",
    b"APOP a 0123456789abcdef0123456789abcdef",
    b"\xff",
    b"AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=",
    b"x" * 300,
    b"",
]
line_endings = st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b""])
pieces = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.sampled_from(COMMAND_WORDS), line_endings).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(pieces, max_size=40),
    st.sets(st.sampled_from(["plaintext", "tls", "tls-active", "apop"])),
    st.integers(min_value=1, max_value=64),
)
def test_random_input_never_raises_and_always_terminates(
    data_pieces: list[bytes], options: set[str], chunk: int
) -> None:
    data = b"".join(data_pieces)
    engine = new_engine(options)
    session = FakeSession(engine)
    out = [engine.send(engine.greeting())]
    for start in range(0, len(data), chunk):
        out.append(session.run(data[start : start + chunk]))
        if engine.tls_pending:
            engine.tls_established()
    out.append(session.run(b""))
    assert engine.closed
    wire = b"".join(out)
    assert wire.startswith(b"+OK ")
    for line in wire.split(b"\r\n")[:-1]:
        assert len(line) + 2 <= replies.MAX_RESPONSE_LINE
