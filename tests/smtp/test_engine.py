"""SMTP server engine: bodies, framing, limits and state, checked event by event."""

from __future__ import annotations

import pytest

from pillarbox.smtp import replies
from pillarbox.smtp.engine import MAX_COMMAND_LINE, EngineConfig, EngineError, ServerEngine
from pillarbox.smtp.events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    BdatChunk,
    ConnectionClosed,
    Helo,
    MailFrom,
    MailParams,
    MessageData,
    RcptParams,
    RcptTo,
    Rejected,
)
from pillarbox.smtp.replies import Reply
from pillarbox.smtp.states import ALLOWED, DENIED, State
from tests.smtp.util import GREETING, FakeSession, chunks, config_with, dot_stuff, drain

CHUNK_SIZES = [0, 1, 7]
PREAMBLE = b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n"


def run(data: bytes, chunk_size: int = 0, config: EngineConfig | None = None):
    """Feed ``data`` through engine + fake session; return (session, output, engine)."""
    engine = ServerEngine(config)
    session = FakeSession()
    engine.send(GREETING)
    out = b""
    for piece in chunks(data, chunk_size):
        engine.receive_data(piece)
        out += drain(engine, session)
    return session, out, engine


def bodies(session: FakeSession) -> list[bytes]:
    return [e.body for e in session.events if isinstance(e, MessageData)]


def rejections(session: FakeSession) -> list[Reply]:
    return [e.reply for e in session.events if isinstance(e, Rejected)]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b".\r\n", b""),
        (b"hello\r\n.\r\n", b"hello\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b".hidden\r\n.\r\n", b"hidden\r\n"),
        (b"a\r\n..b\r\n...\r\n.\r\n", b"a\r\n.b\r\n..\r\n"),
        (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
        (b"x.\r\n.y\r\n.\r\n", b"x.\r\ny\r\n"),
    ],
)
def test_data_body_is_unstuffed(wire: bytes, body: bytes, chunk_size: int) -> None:
    session, _, _ = run(PREAMBLE + wire + b"QUIT\r\n", chunk_size)
    assert bodies(session) == [body]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize(
    "fake_end",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\n.\r", b"\r\n.\r\r\n"],
)
def test_only_crlf_dot_crlf_ends_data(fake_end: bytes, chunk_size: int) -> None:
    """RFC 5321 §4.1.1.4 / §2.3.8: a fake end never ends data, smuggled commands never run."""
    smuggled = b"MAIL FROM:<evil@c.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\nevil\r\n.\r\n"
    wire = PREAMBLE + b"hi" + fake_end + smuggled + b"NOOP\r\n"
    session, _, _ = run(wire, chunk_size)
    senders = [e.address for e in session.events if isinstance(e, MailFrom)]
    assert senders == ["a@c.test"]
    assert bodies(session) == []
    assert rejections(session) == [replies.BARE_NEWLINE]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\n.\r\r\n"])
def test_normalize_mode_never_ends_data_at_bare_lf(fake_end: bytes, chunk_size: int) -> None:
    config = EngineConfig(bare_newline="normalize")
    wire = PREAMBLE + b"hi" + fake_end + b"RSET\r\n.\r\n"
    session, _, _ = run(wire, chunk_size, config)
    if b"\r\r" in fake_end:
        assert rejections(session) == [replies.BARE_NEWLINE]  # bare CR stays refused
    else:
        [body] = bodies(session)
        assert body.endswith(b"RSET\r\n")
        assert b"\n" not in body.replace(b"\r\n", b"")


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_oversized_message_is_consumed_then_refused(chunk_size: int) -> None:
    config = config_with(max_message_size=100)
    wire = PREAMBLE + b"x" * 500 + b"\r\n.\r\nNOOP\r\n"
    session, out, engine = run(wire, chunk_size, config)
    assert rejections(session) == [replies.MESSAGE_TOO_BIG]
    assert out.endswith(
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 OK\r\n"
    )
    assert len(engine._buffer) == 0


def test_oversized_message_is_not_buffered() -> None:
    config = config_with(max_message_size=1000)
    engine = ServerEngine(config)
    session = FakeSession()
    engine.send(GREETING)
    engine.receive_data(PREAMBLE)
    drain(engine, session)
    for _ in range(100):
        engine.receive_data(b"y" * 9998 + b"\r\n")
        drain(engine, session)
        assert len(engine._buffer) < 20_000
    engine.receive_data(b".\r\n")
    drain(engine, session)
    assert rejections(session) == [replies.MESSAGE_TOO_BIG]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_long_text_lines_are_accepted(chunk_size: int) -> None:
    """RFC 5321 §4.5.3.1.6 caps text lines at 1000 octets; we accept longer (documented)."""
    line = b"z" * 5000 + b"\r\n"
    session, _, _ = run(PREAMBLE + line + b".\r\n", chunk_size)
    assert bodies(session) == [line]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_overlong_command_line_is_discarded_and_refused(chunk_size: int) -> None:
    long_line = b"MAIL FROM:<" + b"a" * 5000 + b"@c.test>\r\n"
    session, out, engine = run(b"EHLO c.test\r\n" + long_line + b"NOOP\r\n", chunk_size)
    assert rejections(session) == [replies.LINE_TOO_LONG]
    assert out.endswith(b"500 5.5.6 Line too long\r\n250 2.0.0 OK\r\n")
    assert engine.state is State.READY


def test_command_line_limit_is_exact() -> None:
    fits = b"NOOP " + b"x" * (MAX_COMMAND_LINE - 7) + b"\r\n"
    assert len(fits) == MAX_COMMAND_LINE
    session, _, _ = run(fits + b"NOOP x" + fits[5:])
    assert rejections(session) == [replies.LINE_TOO_LONG]


def test_overlong_line_is_never_buffered() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    for _ in range(100):
        engine.receive_data(b"A" * 10_000)
        assert engine.next_event() is NEED_DATA
        assert len(engine._buffer) < 2 * MAX_COMMAND_LINE
    engine.receive_data(b"\r\n")
    event = engine.next_event()
    assert event == Rejected(replies.LINE_TOO_LONG)


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_overlong_auth_line_is_refused(chunk_size: int) -> None:
    wire = b"EHLO c.test\r\nAUTH LOGIN\r\n" + b"QUFB" * 4000 + b"\r\nNOOP\r\n"
    session, out, _ = run(wire, chunk_size)
    assert rejections(session) == [replies.AUTH_LINE_TOO_LONG]
    assert out.endswith(b"500 5.5.6 Authentication exchange line too long\r\n250 2.0.0 OK\r\n")


def test_auth_line_may_exceed_command_limit() -> None:
    response = b"QUFB" * 2000
    session, _, _ = run(b"EHLO c.test\r\nAUTH PLAIN\r\n" + response + b"\r\n")
    assert AuthResponse(response) in session.events


def test_auth_initial_response_is_decoded() -> None:
    session, _, engine = run(b"EHLO c.test\r\nAUTH plain AGJvYgBzZWNyZXQ=\r\n")
    assert Auth("PLAIN", b"\x00bob\x00secret") in session.events
    assert engine.authenticated


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_bare_lf_in_command_is_refused(chunk_size: int) -> None:
    session, _, _ = run(b"EHLO c.test\nMAIL FROM:<a@c.test>\r\n", chunk_size)
    assert rejections(session) == [replies.BARE_NEWLINE_COMMAND, replies.HELO_FIRST]


def test_bare_cr_in_command_is_refused() -> None:
    session, _, _ = run(b"EHLO c.test\rMAIL FROM:<a@c.test>\r\n")
    assert rejections(session) == [replies.BARE_NEWLINE_COMMAND]


def test_starttls_discards_pipelined_plaintext() -> None:
    """CVE-2011-0411: commands sent with STARTTLS must not run after the handshake."""
    session, out, engine = run(b"EHLO c.test\r\nSTARTTLS\r\nMAIL FROM:<evil@c.test>\r\n")
    assert out.endswith(b"220 2.0.0 Ready to start TLS\r\n")
    assert not any(isinstance(e, MailFrom) for e in session.events)
    assert engine.tls
    assert engine.state is State.INITIAL


def test_greeting_554_allows_only_quit() -> None:
    engine = ServerEngine()
    engine.send(Reply(554, "5.3.2", "No service"))
    engine.receive_data(b"EHLO c.test\r\nQUIT\r\n")
    assert engine.next_event() == Rejected(replies.NO_SERVICE)
    engine.send(replies.NO_SERVICE)
    assert engine.state is State.REFUSED
    assert engine.next_event().__class__.__name__ == "Quit"
    engine.send(replies.CLOSING)
    assert engine.closed


def test_421_closes_at_any_time() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    out = engine.send(Reply(421, "4.4.2", "Timeout"))
    assert out == b"421 4.4.2 Timeout\r\n"
    assert engine.closed


def test_eof_gives_connection_closed() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    engine.receive_data(b"NOOP")
    assert engine.next_event() is NEED_DATA
    engine.receive_data(b"")
    assert engine.next_event() == ConnectionClosed()
    assert engine.closed


def test_next_event_before_reply_is_a_programming_error() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    engine.receive_data(b"NOOP\r\nNOOP\r\n")
    engine.next_event()
    with pytest.raises(EngineError):
        engine.next_event()


def test_failed_rcpt_keeps_have_mail() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    engine.receive_data(b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\n")
    assert isinstance(engine.next_event(), Helo)
    engine.send(Reply(250, None, "hi"))
    assert isinstance(engine.next_event(), MailFrom)
    engine.send(replies.SENDER_OK)
    assert isinstance(engine.next_event(), RcptTo)
    engine.send(Reply(550, "5.1.1", "No such user"))
    assert engine.next_event() == Rejected(replies.NO_VALID_RECIPIENTS)


def test_mail_and_rcpt_params_reach_the_session() -> None:
    wire = (
        b"EHLO c.test\r\n"
        b"MAIL FROM:<a@c.test> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=id+2B1 AUTH=a+40c.test\r\n"
        b"RCPT TO:<b@mx.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@mx.test\r\n"
    )
    session, _, _ = run(wire)
    mail = MailFrom("a@c.test", MailParams(42, "8BITMIME", "HDRS", "id+1", False, "a@c.test"))
    rcpt = RcptTo("b@mx.test", RcptParams(("FAILURE", "DELAY"), "rfc822;b+x@mx.test"))
    assert session.events[1:] == [mail, rcpt]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_bdat_chunks_are_exact(chunk_size: int) -> None:
    wire = (
        b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@mx.test>\r\n"
        b"BDAT 5\r\n.\r\nab" + b"BDAT 4 LAST\r\nQUIT" + b"NOOP\r\n"
    )
    session, _, _ = run(wire, chunk_size)
    chunks_seen = [e for e in session.events if isinstance(e, BdatChunk)]
    assert chunks_seen == [BdatChunk(b".\r\nab", False), BdatChunk(b"QUIT", True)]
    assert session.events[-1].__class__.__name__ == "Noop"


def test_bdat_normalize_turns_bare_lf_into_crlf() -> None:
    wire = (
        b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@mx.test>\r\n"
        b"BDAT 3\r\na\nb" + b"BDAT 2\r\nx\r" + b"BDAT 4 LAST\r\n\nc\nd"
    )
    session, _, _ = run(wire, 0, EngineConfig(bare_newline="normalize"))
    chunks_seen = [e.data for e in session.events if isinstance(e, BdatChunk)]
    assert chunks_seen == [b"a\r\nb", b"x\r", b"\nc\r\nd"]


def test_every_state_has_an_entry_and_every_allowed_verb_a_parser() -> None:
    from pillarbox.smtp.commands import PARSERS

    assert set(ALLOWED) == set(State)
    for verbs in ALLOWED.values():
        assert verbs <= set(PARSERS) | {"BDAT"}
    for state, verb in DENIED:
        assert verb not in ALLOWED[state]


def test_config_rejects_unknown_bare_newline_mode() -> None:
    with pytest.raises(ValueError, match="bare_newline"):
        EngineConfig(bare_newline="ignore")


@pytest.mark.parametrize(
    ("reply", "wire"),
    [
        (Reply(250, "2.1.0", "ok"), b"250 2.1.0 ok\r\n"),
        (Reply(354, None, "go"), b"354 go\r\n"),
        (Reply(334, None, ""), b"334 \r\n"),
        (Reply(250, None, ("a", "b", "c")), b"250-a\r\n250-b\r\n250 c\r\n"),
        (Reply(550, "5.1.1", ("x", "y")), b"550-5.1.1 x\r\n550 5.1.1 y\r\n"),
        (Reply(550, "5.1.1", "inject\r\n250 ok"), b"550 5.1.1 inject  250 ok\r\n"),
    ],
)
def test_format_reply(reply: Reply, wire: bytes) -> None:
    assert replies.format_reply(reply) == wire


@pytest.mark.parametrize(
    ("code", "status"), [(199, None), (600, None), (250, "2.1"), (250, "9.1.1")]
)
def test_reply_rejects_malformed_values(code: int, status: str | None) -> None:
    with pytest.raises(ValueError, match=r"reply code|status"):
        Reply(code, status, "x")


def test_dot_stuff_helper() -> None:
    assert dot_stuff(b".a\r\nb") == b"..a\r\nb\r\n.\r\n"


def test_failed_bdat_chunk_needs_rset() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    engine.receive_data(b"EHLO c\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@c.test>\r\nBDAT 1\r\nx")
    for reply in (Reply(250, None, "hi"), replies.SENDER_OK, replies.RECIPIENT_OK):
        engine.next_event()
        engine.send(reply)
    assert engine.next_event() == BdatChunk(b"x", False)
    engine.send(Reply(452, "4.3.1", "Disk full"))
    assert engine.state is State.BDAT_FAILED
    engine.receive_data(b"BDAT 3 LAST\r\nabc")
    assert engine.next_event() == Rejected(replies.BDAT_FAILED)


@pytest.mark.parametrize("line", [b"NOOP \x00\r\n", b"HELO a\tb\r\n", b"VRFY \x7f\r\n"])
def test_control_characters_in_commands_are_refused(line: bytes) -> None:
    session, _, _ = run(line)
    assert rejections(session) == [replies.INVALID_CHARACTERS]


def test_auth_equals_is_an_empty_initial_response() -> None:
    session, _, _ = run(b"EHLO c.test\r\nAUTH EXTERNAL =\r\n")
    assert Auth("EXTERNAL", b"") in session.events


def test_unsolicited_reply_after_greeting_is_a_programming_error() -> None:
    engine = ServerEngine()
    engine.send(GREETING)
    with pytest.raises(EngineError):
        engine.send(replies.OK)


def test_normalized_body_over_the_limit_is_refused() -> None:
    """Normalizing bare LF to CRLF can push a body over the size limit."""
    config = config_with(max_message_size=10, bare_newline="normalize")
    session, _, _ = run(PREAMBLE + b"\n\n\n\n\n\n\n\n\r\n.\r\n", 0, config)
    assert rejections(session) == [replies.MESSAGE_TOO_BIG]
