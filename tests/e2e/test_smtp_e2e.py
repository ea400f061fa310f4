"""The real server over real sockets, driven by smtplib and raw dialogues."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest

from tests.e2e.server import Server, started

pytestmark = pytest.mark.e2e

MESSAGE = (
    b"From: Mac <mac@pillarbox.test>\r\n"
    b"To: Tyler <tyler@pillarbox.test>\r\n"
    b"Subject: Lunch\r\n"
    b"\r\n"
    b"Hi Tyler!\r\n"
)


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Dialogue:
    """A raw SMTP client: send lines, read whole replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def reply(self) -> list[bytes]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return lines

    def code(self) -> int:
        return int(self.reply()[-1][:3])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> list[bytes]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def mailbox(server: Server, address: str, name: str = "INBOX") -> bytes:
    return server.cli("mailbox", "export", address, "--mailbox", name).encode()


def count_messages(server: Server, address: str) -> int:
    listing = server.cli("mailbox", "list", address)
    for line in listing.splitlines():
        name, count, *_ = line.split("\t")
        if name == "INBOX":
            return int(count.split()[0])
    raise AssertionError(listing)


def test_seed_session_delivers_hi_tyler(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    assert talk.reply() == [b"220 mx.pillarbox.test ESMTP Pillarbox"]
    assert talk.command("HELO mac.example.org")[0].startswith(b"250 mx.pillarbox.test Hello")
    assert talk.command("MAIL FROM:<mac@pillarbox.test>") == [b"250 2.1.0 Sender ok"]
    assert talk.command("RCPT TO:<tyler@pillarbox.test>") == [b"250 2.1.5 Recipient ok"]
    assert talk.command("DATA")[0].startswith(b"354 ")
    talk.send(MESSAGE + b".\r\n")
    assert talk.reply()[0].startswith(b"250 2.0.0 Ok: queued as ")
    assert talk.command("QUIT") == [b"221 2.0.0 Bye"]
    talk.close()
    stored = mailbox(server, "tyler@pillarbox.test")
    assert b"Hi Tyler!" in stored
    assert b"Return-Path: <mac@pillarbox.test>" in stored
    assert b"by mx.pillarbox.test (Pillarbox) with SMTP id" in stored


def test_smtplib_ehlo_lists_every_extension(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        code, _ = client.ehlo("client.example.org")
        assert code == 250
        for keyword in (
            "pipelining",
            "size",
            "8bitmime",
            "smtputf8",
            "chunking",
            "binarymime",
            "dsn",
            "enhancedstatuscodes",
            "starttls",
            "auth",
            "help",
        ):
            assert client.has_extn(keyword), keyword
        assert client.esmtp_features["size"] == "36700160"
        assert "vrfy" not in client.esmtp_features


def test_smtplib_sends_to_several_local_users(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        refused = client.sendmail(
            "mac@pillarbox.test", ["tyler@pillarbox.test", "jane+news@pillarbox.test"], MESSAGE
        )
    assert refused == {}
    assert b"Hi Tyler!" in mailbox(server, "tyler@pillarbox.test")
    assert b"Hi Tyler!" in mailbox(server, "jane@pillarbox.test")


def test_unknown_local_recipient_is_refused_at_rcpt(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.ehlo()
        client.mail("mac@pillarbox.test")
        code, text = client.rcpt("nobody@pillarbox.test")
    assert (code, text[:5]) == (550, b"5.1.1")


def test_mx_listener_refuses_to_relay(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.ehlo()
        client.mail("mac@pillarbox.test")
        code, text = client.rcpt("someone@elsewhere.example")
    assert (code, text[:5]) == (554, b"5.7.1")


def test_submission_needs_auth_then_relays(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as client:
        client.ehlo()
        code, text = client.mail("mac@pillarbox.test")
        assert (code, text[:5]) == (530, b"5.7.0")
        client.starttls(context=client_tls())
        client.ehlo()
        client.login("mac@pillarbox.test", "secret")
        refused = client.sendmail("mac@pillarbox.test", ["friend@elsewhere.example"], MESSAGE)
    assert refused == {}
    # Queued for the remote recipient (the queue worker may already have tried it since).
    assert "queued=1" in server.log()


def test_wrong_password_is_refused(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            client.login("mac@pillarbox.test", "wrong")
    assert failure.value.smtp_code == 535


def test_submissions_implicit_tls_with_auth_login(server: Server) -> None:
    with smtplib.SMTP_SSL(
        "127.0.0.1", server.ports["submissions"], timeout=10, context=client_tls()
    ) as client:
        client.ehlo()
        assert "starttls" not in client.esmtp_features
        client.user, client.password = "jane@pillarbox.test", "secret"
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        client.sendmail("jane@pillarbox.test", ["tyler@pillarbox.test"], MESSAGE)
    stored = mailbox(server, "tyler@pillarbox.test")
    assert b"with ESMTPSA id" in stored


def test_message_survives_sigkill_right_after_250(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.sendmail("mac@pillarbox.test", ["tyler@pillarbox.test"], MESSAGE)
        server.kill()  # the 250 has been read: the message must be on disk
    server.start()
    assert b"Hi Tyler!" in mailbox(server, "tyler@pillarbox.test")
    server.kill()


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r"],
    ids=["lf-dot-lf", "crlf-dot-lf", "lf-dot-crlf", "cr-dot-cr", "crlf-dot-cr"],
)
def test_smuggled_second_message_is_never_accepted(server: Server, smuggle: bytes) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO attacker.example")
    talk.command("MAIL FROM:<mac@pillarbox.test>")
    talk.command("RCPT TO:<tyler@pillarbox.test>")
    talk.command("DATA")
    payload = (
        b"Subject: first\r\n\r\nfirst body"
        + smuggle
        + b"MAIL FROM:<ceo@pillarbox.test>\r\nRCPT TO:<jane@pillarbox.test>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
    )
    talk.send(payload)
    code = talk.code()
    assert code == 550  # refused as a whole: bare CR/LF (RFC 5321 §2.3.8)
    assert talk.command("QUIT")[0].startswith(b"221")
    talk.close()
    assert count_messages(server, "jane@pillarbox.test") == 0
    assert count_messages(server, "tyler@pillarbox.test") == 0


def test_normalize_mode_accepts_bare_lf_without_smuggling(tmp_path: Path) -> None:
    server = started(
        tmp_path,
        '[smtp]\nbare_newline = "normalize"',
        users=[("tyler@pillarbox.test", ""), ("jane@pillarbox.test", "")],
    )
    try:
        talk = Dialogue(server.ports["smtp"])
        talk.reply()
        talk.command("EHLO attacker.example")
        talk.command("MAIL FROM:<mac@pillarbox.test>")
        talk.command("RCPT TO:<tyler@pillarbox.test>")
        talk.command("DATA")
        talk.send(
            b"Subject: first\n\nline one\n.\nMAIL FROM:<x@pillarbox.test>\r\n"
            b"RCPT TO:<jane@pillarbox.test>\r\nDATA\r\nsmuggled\r\n.\r\n"
        )
        assert talk.code() == 250
        talk.close()
        assert count_messages(server, "jane@pillarbox.test") == 0
        stored = mailbox(server, "tyler@pillarbox.test")
        assert b"line one" in stored and b"RCPT TO:<jane@pillarbox.test>" in stored
    finally:
        server.kill()


def test_plaintext_after_starttls_is_discarded(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO client.example")
    talk.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    assert talk.code() == 220
    tls = client_tls().wrap_socket(talk.sock, server_hostname="mx.pillarbox.test")
    tls.sendall(b"MAIL FROM:<mac@pillarbox.test>\r\n")
    reply = tls.recv(4096)
    # The injected MAIL was dropped: the client must EHLO again after TLS (RFC 3207 §4.2).
    assert reply.startswith(b"503"), reply
    tls.sendall(b"EHLO client.example\r\n")
    time.sleep(0.2)
    assert tls.recv(4096).startswith(b"250-")
    tls.close()


def test_pipelined_commands_get_replies_in_order(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO client.example")
    talk.send(
        b"MAIL FROM:<mac@pillarbox.test>\r\nRCPT TO:<nobody@pillarbox.test>\r\n"
        b"RCPT TO:<tyler@pillarbox.test>\r\nDATA\r\n"
    )
    assert [talk.code() for _ in range(4)] == [250, 550, 250, 354]
    talk.send(MESSAGE + b".\r\nQUIT\r\n")
    assert [talk.code() for _ in range(2)] == [250, 221]
    talk.close()


def test_bdat_chunks_make_one_message(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO client.example")
    talk.command("MAIL FROM:<mac@pillarbox.test> BODY=BINARYMIME")
    talk.command("RCPT TO:<tyler@pillarbox.test>")
    first, second = MESSAGE[:20], MESSAGE[20:]
    talk.send(b"BDAT %d\r\n" % len(first) + first)
    assert talk.code() == 250
    talk.send(b"BDAT %d LAST\r\n" % len(second) + second)
    assert talk.reply()[0].startswith(b"250 2.0.0 Ok: queued")
    talk.close()
    assert b"Hi Tyler!" in mailbox(server, "tyler@pillarbox.test")


def test_declared_and_actual_size_limits(tmp_path: Path) -> None:
    server = started(
        tmp_path, "[smtp]\nmax_message_size = 2000", users=[("tyler@pillarbox.test", "")]
    )
    try:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "2000"
            code, text = client.mail("mac@pillarbox.test", ["SIZE=5000"])
            assert (code, text[:5]) == (552, b"5.3.4")
            client.rset()
            client.mail("mac@pillarbox.test")
            client.rcpt("tyler@pillarbox.test")
            code, text = client.data(MESSAGE + b"x" * 3000 + b"\r\n")
            assert (code, text[:5]) == (552, b"5.3.4")
        assert count_messages(server, "tyler@pillarbox.test") == 0
    finally:
        server.kill()


def test_mail_loop_is_refused(server: Server) -> None:
    looping = (
        b"".join(b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n" for _ in range(60))
        + MESSAGE
    )
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.ehlo()
        client.mail("mac@pillarbox.test")
        client.rcpt("tyler@pillarbox.test")
        code, text = client.data(looping)
    assert (code, text[:5]) == (554, b"5.4.6")


def test_vrfy_and_expn_are_off_by_default(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO client.example")
    assert talk.command("VRFY mac")[0].startswith(b"252 2.5.2")
    assert talk.command("VRFY nosuchuser")[0].startswith(b"252 2.5.2")
    assert talk.command("EXPN admin")[0].startswith(b"502 5.5.1")
    talk.close()


def test_vrfy_and_expn_when_enabled(tmp_path: Path) -> None:
    server = started(
        tmp_path,
        "[smtp]\nvrfy = true\nexpn = true",
        users=[("mac@pillarbox.test", "Mac Intosh"), ("jane@pillarbox.test", "Jane Doe")],
    )
    try:
        server.cli(
            "alias", "add", "admin@pillarbox.test", "mac@pillarbox.test", "jane@pillarbox.test"
        )
        talk = Dialogue(server.ports["smtp"])
        talk.reply()
        assert b"250-VRFY" in b"\n".join(talk.command("EHLO client.example"))
        assert talk.command("VRFY <mac>") == [b"250 2.1.5 Mac Intosh <mac@pillarbox.test>"]
        assert talk.command("VRFY nobody")[0].startswith(b"550 5.1.1")
        expanded = talk.command("EXPN <admin>")
        assert expanded == [
            b"250-2.1.5 Mac Intosh <mac@pillarbox.test>",
            b"250 2.1.5 Jane Doe <jane@pillarbox.test>",
        ]
        talk.close()
    finally:
        server.kill()


def test_help_lists_commands_and_describes_one(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    listing = talk.command("HELP")
    assert listing[0].startswith(b"214-") and b"MAIL" in b" ".join(listing)
    assert talk.command("HELP RCPT")[0].startswith(b"214 2.0.0 RCPT TO:")
    assert talk.command("HELP FOO")[0].startswith(b"504")
    talk.close()


def test_old_commands_answer_502(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("HELO client.example")
    for verb in ("SEND FROM:<a@b>", "SOML FROM:<a@b>", "SAML FROM:<a@b>", "TURN"):
        assert talk.command(verb)[0].startswith(b"502 5.5.1"), verb
    talk.close()


def test_sigterm_finishes_the_transaction_in_flight(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO client.example")
    talk.command("MAIL FROM:<mac@pillarbox.test>")
    talk.command("RCPT TO:<tyler@pillarbox.test>")
    talk.command("DATA")
    idle = Dialogue(server.ports["smtp"])
    idle.reply()
    assert server.process is not None
    server.process.terminate()
    assert idle.code() == 421  # an idle session is told at once
    talk.send(MESSAGE + b".\r\n")
    assert talk.code() == 250  # the transaction in flight completes
    assert talk.command("NOOP")[0].startswith(b"421")
    talk.close()
    idle.close()
    server.process.wait(20)
    server.process = None
    server.start()
    assert b"Hi Tyler!" in mailbox(server, "tyler@pillarbox.test")
    server.kill()


def test_connections_per_ip_are_limited(tmp_path: Path) -> None:
    server = started(tmp_path, "[smtp]\nmax_connections_per_ip = 2")
    try:
        first, second = Dialogue(server.ports["smtp"]), Dialogue(server.ports["smtp"])
        assert first.code() == 220 and second.code() == 220
        third = Dialogue(server.ports["smtp"])
        assert third.reply()[0].startswith(b"421 4.7.0")
        for talk in (first, second, third):
            talk.close()
    finally:
        server.kill()


def test_verb_and_onex_when_sendmail_extensions_are_on(tmp_path: Path) -> None:
    server = started(
        tmp_path,
        "[smtp]\nsendmail_extensions = true",
        users=[("tyler@pillarbox.test", ""), ("jane@pillarbox.test", "")],
    )
    try:
        talk = Dialogue(server.ports["smtp"])
        talk.reply()
        ehlo = talk.command("EHLO client.example")
        assert b"250-VERB" in ehlo and b"250-ONEX" in ehlo
        assert talk.command("VERB")[0].startswith(b"250")
        assert talk.command("ONEX")[0].startswith(b"250")
        talk.command("MAIL FROM:<mac@pillarbox.test>")
        talk.command("RCPT TO:<tyler@pillarbox.test>")
        talk.command("RCPT TO:<jane@pillarbox.test>")
        talk.command("DATA")
        talk.send(MESSAGE + b".\r\n")
        assert talk.reply() == [b"050 <tyler@pillarbox.test>... Delivered to mailbox INBOX"]
        assert talk.reply() == [b"050 <jane@pillarbox.test>... Delivered to mailbox INBOX"]
        assert talk.reply()[0].startswith(b"250 2.0.0 Ok: queued as")
        assert talk.command("MAIL FROM:<mac@pillarbox.test>")[0].startswith(b"503 5.5.1")
        talk.close()
    finally:
        server.kill()


def test_sendmail_extensions_are_off_by_default(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    assert b"VERB" not in b"".join(talk.command("EHLO client.example"))
    assert talk.command("VERB")[0].startswith(b"502")
    assert talk.command("ONEX")[0].startswith(b"502")
    talk.close()


def test_auth_is_not_offered_in_plaintext_when_loopback_is_not_trusted(tmp_path: Path) -> None:
    server = started(
        tmp_path,
        "[auth]\nallow_plaintext_on_loopback = false",
        users=[("mac@pillarbox.test", "")],
    )
    try:
        with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as client:
            client.ehlo()
            assert not client.has_extn("auth")
            code, _ = client.docmd("AUTH", "PLAIN AG1hY0BwaWxsYXJib3gudGVzdABzZWNyZXQ=")
            assert code == 538
            client.starttls(context=client_tls())
            client.ehlo()
            assert client.has_extn("auth")
            client.login("mac@pillarbox.test", "secret")
    finally:
        server.kill()


def test_received_header_names_esmtps_after_starttls(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.starttls(context=client_tls())
        client.sendmail("mac@pillarbox.test", ["tyler@pillarbox.test"], MESSAGE)
    stored = mailbox(server, "tyler@pillarbox.test")
    assert b"with ESMTPS id" in stored
    assert b"for <tyler@pillarbox.test>;" in stored


def test_postmaster_is_always_accepted(tmp_path: Path) -> None:
    server = started(
        tmp_path, 'postmaster = "jane@pillarbox.test"', users=[("jane@pillarbox.test", "")]
    )
    try:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
            refused = client.sendmail(
                "bob@example.net", ["Postmaster@pillarbox.test", "postmaster"], MESSAGE
            )
        assert refused == {}
        assert count_messages(server, "jane@pillarbox.test") == 1  # one copy, not two
    finally:
        server.kill()


def test_notify_success_gets_a_delivered_dsn_for_local_delivery(server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.ehlo()
        client.mail("mac@pillarbox.test", ["RET=HDRS", "ENVID=lunch-1"])
        code, _ = client.rcpt(
            "tyler@pillarbox.test", ["NOTIFY=SUCCESS", "ORCPT=rfc822;tyler@pillarbox.test"]
        )
        assert code == 250
        code, _ = client.data(MESSAGE)
        assert code == 250
    report = mailbox(server, "mac@pillarbox.test")
    assert b"report-type=delivery-status" in report
    assert b"Action: delivered" in report
    assert b"Original-Envelope-Id: lunch-1" in report
    assert b"Final-Recipient: rfc822; tyler@pillarbox.test" in report
    assert b"Hi Tyler!" not in report  # RET=HDRS returns the headers only


def test_help_describes_etrn(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    assert b"ETRN" in b" ".join(talk.command("HELP"))
    assert talk.command("HELP ETRN")[0].startswith(b"214 2.0.0 ETRN")
    talk.close()


def test_a_refusal_between_bdat_chunks_never_stores_part_of_a_message(server: Server) -> None:
    talk = Dialogue(server.ports["smtp"])
    talk.reply()
    talk.command("EHLO client.example")
    talk.command("MAIL FROM:<mac@pillarbox.test>")
    talk.command("RCPT TO:<tyler@pillarbox.test>")
    first, second = MESSAGE[:20], MESSAGE[20:]
    talk.send(b"BDAT %d\r\n" % len(first) + first)
    assert talk.code() == 250
    assert talk.command("BOGUS")[0].startswith(b"500")
    talk.send(b"BDAT %d LAST\r\n" % len(second) + second)
    assert talk.code() == 503
    talk.close()
    assert count_messages(server, "tyler@pillarbox.test") == 0
