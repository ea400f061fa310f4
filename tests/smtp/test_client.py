"""The SMTP client engine, driven by byte transcripts (whole and in 1- and 7-byte chunks)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from pillarbox.smtp.client import (
    ClientEngine,
    ClientEvent,
    ClientSettings,
    Closed,
    Credentials,
    MessageDone,
    NeedData,
    Ready,
    SessionFailed,
    StartTls,
    State,
)
from pillarbox.smtp.client_wire import MessageOutcome, OutboundMessage, RecipientSpec

CHUNKS = [None, 1, 7]
SETTINGS = ClientSettings(helo_name="mx.a.test")


class Wire:
    """Feeds server lines to the engine and checks what it writes."""

    def __init__(self, settings: ClientSettings = SETTINGS, chunk: int | None = None) -> None:
        self.engine = ClientEngine(settings)
        self.chunk = chunk
        self.events: list[ClientEvent] = []

    def server(self, *lines: str | bytes) -> list[ClientEvent]:
        data = b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\r\n" for ln in lines)
        step = self.chunk or len(data) or 1
        new: list[ClientEvent] = []
        for start in range(0, len(data), step):
            self.engine.receive_data(data[start : start + step])
            new += self._drain()
        self.events += new
        return new

    def _drain(self) -> list[ClientEvent]:
        out = []
        while not isinstance(event := self.engine.next_event(), NeedData):
            out.append(event)
        return out

    def client(self, *lines: str | bytes) -> None:
        expected = b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\r\n" for ln in lines)
        assert self.engine.data_to_send() == expected

    def ready(self, *keywords: str) -> Ready:
        self.server("220 mx.b.test ESMTP")
        self.client("EHLO mx.a.test")
        lines = ["250-mx.b.test Hello", *(f"250-{k}" for k in keywords)]
        lines[-1] = lines[-1].replace("250-", "250 ", 1)
        [event] = self.server(*lines)
        assert isinstance(event, Ready)
        return event

    def done(self) -> MessageOutcome:
        [event] = [e for e in self.events if isinstance(e, MessageDone)]
        return event.outcome


def msg(
    *rcpts: str, body: bytes = b"Subject: hi\r\n\r\nHello\r\n", **kw: object
) -> OutboundMessage:
    recipients = tuple(RecipientSpec(r) for r in rcpts or ("bob@b.test",))
    return OutboundMessage("alice@a.test", recipients, body, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_pipelined_transaction_with_one_refused_recipient(chunk: int | None) -> None:
    wire = Wire(chunk=chunk)
    ready = wire.ready("PIPELINING", "SIZE 1000", "8BITMIME")
    assert ready.capabilities.pipelining and ready.capabilities.size == 1000
    wire.engine.start_message(msg("bob@b.test", "nobody@b.test"))
    # RFC 2920 §3.1: MAIL, the RCPTs and DATA go out in one group
    wire.client(
        "MAIL FROM:<alice@a.test> SIZE=22",
        "RCPT TO:<bob@b.test>",
        "RCPT TO:<nobody@b.test>",
        "DATA",
    )
    wire.server("250 2.1.0 ok", "250 2.1.5 ok", "550 5.1.1 no such user", "354 go ahead")
    wire.client("Subject: hi", "", "Hello", ".")
    wire.server("250 2.0.0 queued as X")
    bob, nobody = wire.done().results
    assert (bob.accepted, str(bob.reply)) == (True, "250 2.0.0 queued as X")
    assert (nobody.accepted, nobody.reply.status) == (False, "5.1.1")
    assert wire.engine.state is State.READY
    wire.engine.quit()
    wire.client("QUIT")
    assert wire.server("221 bye") == [Closed()]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_without_pipelining_commands_wait_for_replies_and_no_data_without_recipients(
    chunk: int | None,
) -> None:
    wire = Wire(chunk=chunk)
    wire.ready("8BITMIME")
    wire.engine.start_message(msg("x@b.test", "y@b.test"))
    wire.client("MAIL FROM:<alice@a.test>")
    wire.server("250 ok")
    wire.client("RCPT TO:<x@b.test>")
    wire.server("550 5.1.1 unknown")
    wire.client("RCPT TO:<y@b.test>")
    wire.server("450 4.2.1 busy")
    wire.client("RSET")  # nothing accepted: no DATA, reset the open MAIL
    wire.server("250 ok")
    x, y = wire.done().results
    assert (x.reply.code, y.reply.code) == (550, 450)


def test_a_refused_mail_command_fails_every_recipient() -> None:
    wire = Wire()
    wire.ready()
    wire.engine.start_message(msg("x@b.test", "y@b.test"))
    wire.client("MAIL FROM:<alice@a.test>")
    wire.server("553 5.7.1 sender rejected")
    assert {str(r.reply) for r in wire.done().results} == {"553 5.7.1 sender rejected"}
    assert wire.engine.data_to_send() == b""


def test_ehlo_refused_falls_back_to_helo_without_extensions() -> None:
    wire = Wire()
    wire.server("220 old.b.test SMTP")
    wire.client("EHLO mx.a.test")
    wire.server("502 command not implemented")
    wire.client("HELO mx.a.test")  # RFC 5321 §3.2
    [ready] = wire.server("250 old.b.test")
    assert isinstance(ready, Ready) and not ready.capabilities.esmtp
    wire.engine.start_message(msg(body=b"caf\xc3\xa9\r\n", body_type="8BITMIME"))
    # no SIZE or BODY parameter for a server that did not offer them
    wire.client("MAIL FROM:<alice@a.test>")


def test_pipelined_data_refusal_is_reported_after_rset() -> None:
    wire = Wire()
    wire.ready("PIPELINING")
    wire.engine.start_message(msg())
    wire.engine.data_to_send()
    wire.server("250 ok", "250 ok", "554 5.3.0 no data today")
    wire.client("RSET")
    wire.server("250 ok")
    [bob] = wire.done().results
    assert str(bob.reply) == "554 5.3.0 no data today"


def test_pipelined_354_without_accepted_recipients_gets_a_lone_dot() -> None:
    wire = Wire()
    wire.ready("PIPELINING")
    wire.engine.start_message(msg())
    wire.engine.data_to_send()
    wire.server("250 ok", "550 5.1.1 unknown", "354 go")
    wire.client(".")  # RFC 2920 §3.1 example: the message itself is not sent
    wire.server("554 5.5.1 no valid recipients")
    [bob] = wire.done().results
    assert bob.reply.status == "5.1.1"


@pytest.mark.parametrize("chunk", CHUNKS)
def test_starttls_then_ehlo_again_and_pre_tls_bytes_are_dropped(chunk: int | None) -> None:
    wire = Wire(chunk=chunk)
    wire.server("220 mx.b.test ESMTP")
    wire.client("EHLO mx.a.test")
    wire.server("250-mx.b.test", "250 STARTTLS")
    wire.client("STARTTLS")
    events = wire.server("220 2.0.0 go ahead", "250 injected before the handshake")
    assert events == [StartTls()]
    wire.engine.tls_started()  # RFC 3207 §4.2: forget everything, EHLO again
    wire.client("EHLO mx.a.test")
    [ready] = wire.server("250-mx.b.test", "250 PIPELINING")
    assert isinstance(ready, Ready) and ready.tls and ready.capabilities.pipelining


def test_starttls_refused_carries_on_in_plaintext_unless_tls_is_required() -> None:
    wire = Wire()
    wire.server("220 mx")
    wire.engine.data_to_send()
    wire.server("250-mx", "250 STARTTLS")
    wire.client("STARTTLS")
    [ready] = wire.server("454 4.7.0 TLS not available")
    assert isinstance(ready, Ready) and not ready.tls
    strict = Wire(ClientSettings("mx.a.test", require_tls=True))
    strict.server("220 mx")
    strict.engine.data_to_send()
    [failed] = strict.server("250 mx")  # no STARTTLS offered at all
    assert isinstance(failed, SessionFailed) and failed.reply.status == "4.7.10"


def test_auth_plain_with_initial_response() -> None:
    settings = ClientSettings(
        "mx.a.test", credentials=Credentials("a@a.test", "pw"), allow_plaintext_auth=True
    )
    wire = Wire(settings)
    wire.server("220 relay")
    wire.engine.data_to_send()
    wire.server("250-relay", "250 AUTH LOGIN PLAIN")
    token = base64.b64encode(b"\0a@a.test\0pw").decode()
    wire.client(f"AUTH PLAIN {token}")  # RFC 4954 §4, RFC 4616
    [ready] = wire.server("235 2.7.0 ok")
    assert isinstance(ready, Ready)


def test_auth_login_and_a_failed_login_ends_the_session() -> None:
    settings = ClientSettings(
        "mx.a.test", credentials=Credentials("user", "secret"), allow_plaintext_auth=True
    )
    wire = Wire(settings)
    wire.server("220 relay")
    wire.engine.data_to_send()
    wire.server("250-relay", "250 AUTH LOGIN")
    wire.client("AUTH LOGIN")
    wire.server("334 VXNlcm5hbWU6")
    wire.client(base64.b64encode(b"user").decode())
    wire.server("334 UGFzc3dvcmQ6")
    wire.client(base64.b64encode(b"secret").decode())
    [failed] = wire.server("535 5.7.8 bad credentials")
    assert isinstance(failed, SessionFailed) and failed.reply.code == 535
    wire.client("QUIT")


def test_credentials_are_never_sent_in_plaintext_by_default() -> None:
    wire = Wire(ClientSettings("mx.a.test", credentials=Credentials("u", "p")))
    wire.server("220 relay")
    wire.engine.data_to_send()
    [failed] = wire.server("250-relay", "250 AUTH PLAIN")
    assert isinstance(failed, SessionFailed)
    assert b"AUTH" not in wire.engine.data_to_send()


def test_a_message_over_the_peer_size_limit_is_refused_before_sending() -> None:
    wire = Wire()
    wire.ready("SIZE 10")
    wire.engine.start_message(msg())
    [done] = wire._drain()
    assert isinstance(done, MessageDone)
    assert done.outcome.results[0].reply.status == "5.3.4"  # RFC 1870
    assert wire.engine.data_to_send() == b""


def test_smtputf8_needed_but_not_offered_fails_permanently() -> None:
    wire = Wire()
    wire.ready("8BITMIME")
    wire.engine.start_message(msg("jörg@b.test"))
    [done] = wire._drain()
    assert isinstance(done, MessageDone)
    reply = done.outcome.results[0].reply
    assert (reply.code, reply.status) == (553, "5.6.7")  # RFC 6531 §3.2


def test_smtputf8_offered_is_requested_in_mail() -> None:
    wire = Wire()
    wire.ready("SMTPUTF8", "8BITMIME")
    wire.engine.start_message(msg("jörg@b.test", smtputf8=True))
    assert wire.engine.data_to_send().startswith(b"MAIL FROM:<alice@a.test> SMTPUTF8\r\n")


EIGHT_BIT = (
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n"
)


def test_8bit_body_goes_as_is_with_body_8bitmime_when_offered() -> None:
    wire = Wire()
    wire.ready("8BITMIME", "PIPELINING")
    wire.engine.start_message(msg(body=EIGHT_BIT, body_type="8BITMIME"))
    assert wire.engine.data_to_send().startswith(b"MAIL FROM:<alice@a.test> BODY=8BITMIME\r\n")
    wire.server("250 ok", "250 ok", "354 go")
    assert wire.engine.data_to_send() == EIGHT_BIT + b".\r\n"


def test_8bit_body_is_downgraded_for_a_peer_without_8bitmime() -> None:
    wire = Wire()
    wire.ready("PIPELINING")
    wire.engine.start_message(msg(body=EIGHT_BIT, body_type="8BITMIME"))
    assert wire.engine.data_to_send().startswith(b"MAIL FROM:<alice@a.test>\r\n")
    wire.server("250 ok", "250 ok", "354 go")
    sent = wire.engine.data_to_send()
    assert sent.isascii()  # RFC 6152 §3
    assert b"Content-Transfer-Encoding: quoted-printable" in sent
    assert b"caf=C3=A9" in sent


def test_dsn_parameters_pass_on_only_to_a_dsn_peer() -> None:
    rcpt = RecipientSpec("bob@b.test", ("SUCCESS", "FAILURE"), "rfc822;Bob+x@b.test")
    message = OutboundMessage("a@a.test", (rcpt,), b"x\r\n", ret="HDRS", envid="id 1+2")
    wire = Wire()
    wire.ready("DSN", "PIPELINING")
    wire.engine.start_message(message)
    wire.client(  # RFC 3461 §4: ENVID and ORCPT in xtext
        "MAIL FROM:<a@a.test> RET=HDRS ENVID=id+201+2B2",
        "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@b.test",
        "DATA",
    )
    wire.server("250 ok", "250 ok", "354 go")
    wire.engine.data_to_send()
    wire.server("250 ok")
    assert wire.done().dsn_passed is True
    plain = Wire()
    plain.ready("PIPELINING")
    plain.engine.start_message(message)
    plain.client("MAIL FROM:<a@a.test>", "RCPT TO:<bob@b.test>", "DATA")


def test_421_in_a_transaction_fails_it_and_the_session() -> None:
    wire = Wire()
    wire.ready("PIPELINING")
    wire.engine.start_message(msg("x@b.test", "y@b.test"))
    wire.engine.data_to_send()
    events = wire.server("250 ok", "421 4.3.2 shutting down")
    done, failed = events
    assert isinstance(done, MessageDone) and isinstance(failed, SessionFailed)
    assert {r.reply.code for r in done.outcome.results} == {421}
    assert wire.engine.closed


def test_connection_lost_during_data_fails_the_message_transiently() -> None:
    wire = Wire()
    wire.ready("PIPELINING")
    wire.engine.start_message(msg())
    wire.engine.data_to_send()
    wire.server("250 ok", "250 ok", "354 go")
    wire.engine.receive_data(b"")
    done, failed = wire._drain()
    assert isinstance(done, MessageDone) and isinstance(failed, SessionFailed)
    assert done.outcome.results[0].reply.transient


@pytest.mark.parametrize(
    "garbage", [b"hello there\r\n", b"250-ok\r\n354 mixed codes\r\n", b"2" * 5000]
)
def test_malformed_replies_end_the_session(garbage: bytes) -> None:
    wire = Wire()
    wire.engine.receive_data(garbage)
    [failed] = wire._drain()
    assert isinstance(failed, SessionFailed) and failed.reply.transient


def test_a_bad_greeting_ends_the_session_politely() -> None:
    wire = Wire()
    [failed] = wire.server("554 5.7.1 no service for you")
    assert isinstance(failed, SessionFailed) and failed.reply.code == 554
    wire.client("QUIT")  # RFC 5321 §3.1


def test_timeouts_follow_rfc5321_section_4_5_3_2() -> None:
    wire = Wire()
    assert wire.engine.timeout == 300.0  # greeting
    wire.ready("PIPELINING")
    wire.engine.start_message(msg())
    assert wire.engine.timeout == 300.0  # MAIL
    wire.server("250 ok", "250 ok")
    assert wire.engine.timeout == 120.0  # DATA initiation
    wire.server("354 go")
    assert wire.engine.timeout == 600.0  # DATA termination


@pytest.mark.parametrize("bad", ["evil@a.test>\r\nRSET", "x@a.test\n"])
def test_control_characters_cannot_inject_commands(bad: str) -> None:
    wire = Wire()
    wire.ready()
    start: Callable[[], None] = lambda: wire.engine.start_message(  # noqa: E731
        OutboundMessage(bad, (RecipientSpec("b@b.test"),), b"x\r\n")
    )
    with pytest.raises(ValueError, match="control character"):
        start()


def test_every_state_that_reads_a_reply_has_a_handler() -> None:
    from pillarbox.smtp.client import _HANDLERS

    waiting = set(State) - {State.CLOSED, State.TLS_UPGRADE}
    assert set(_HANDLERS) == waiting
