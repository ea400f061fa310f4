"""The real server over real sockets, driven by imaplib and raw IMAP dialogues."""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
import time

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

MESSAGE = (
    b"From: Mac <mac@pillarbox.test>\r\n"
    b"To: Tyler <tyler@pillarbox.test>\r\n"
    b"Subject: Lunch\r\n"
    b"\r\n"
    b"Hi Tyler!\r\n"
)


def deliver(server: Server, to: str = "tyler@pillarbox.test", body: bytes = MESSAGE) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
        smtp.sendmail("mac@pillarbox.test", [to], body)


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Dialogue:
    """A raw IMAP client: send a tagged line, read until its tagged response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()

    def line(self) -> bytes:
        line = self.file.readline()
        assert line, "connection closed"
        return line

    def command(self, tag: str, text: str) -> list[bytes]:
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        return self.until(tag)

    def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_the_seed_session(server: Server) -> None:
    """LOGIN, SELECT inbox, FETCH 1 BODY[TEXT], STORE 1 +FLAGS \\Deleted, CLOSE, LOGOUT."""
    deliver(server)
    imap = Dialogue(server.ports["imap"])
    assert imap.greeting.startswith(b"* OK ")
    assert imap.command("a1", "LOGIN tyler@pillarbox.test secret")[-1].startswith(b"a1 OK")
    select = imap.command("a2", "SELECT inbox")
    text = b"".join(select)
    assert b"* 1 EXISTS\r\n" in text
    assert b"* 1 RECENT\r\n" in text
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in text
    assert b"[PERMANENTFLAGS (" in text and b"[UIDVALIDITY " in text
    assert b"[UIDNEXT 2]" in text and b"[UNSEEN 1]" in text
    assert b"[HIGHESTMODSEQ " in text
    assert select[-1].startswith(b"a2 OK [READ-WRITE]")
    fetch = imap.command("a3", "FETCH 1 BODY[TEXT]")
    # The body, then the \\Seen that the non-PEEK fetch set (RFC 3501 §6.4.5).
    assert fetch == [
        b"* 1 FETCH (BODY[TEXT] {11}\r\n",
        b"Hi Tyler!\r\n",
        b" FLAGS (\\Seen \\Recent))\r\n",
        b"a3 OK FETCH completed\r\n",
    ]
    store = imap.command("a4", "STORE 1 +FLAGS \\Deleted")
    assert store[0] == b"* 1 FETCH (FLAGS (\\Deleted \\Seen \\Recent))\r\n"
    assert store[-1].startswith(b"a4 OK")
    close = imap.command("a5", "CLOSE")
    assert close == [b"a5 OK CLOSE completed\r\n"]  # RFC 3501 §6.4.2: no untagged EXPUNGE
    logout = imap.command("a6", "LOGOUT")
    assert logout[0].startswith(b"* BYE") and logout[-1].startswith(b"a6 OK")
    imap.close()
    # The message is gone from the store.
    assert "INBOX" in server.cli("mailbox", "list", "tyler@pillarbox.test")
    check = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    check.login("tyler@pillarbox.test", "secret")
    assert check.select("INBOX") == ("OK", [b"0"])
    check.logout()


def test_imaplib_over_implicit_tls_and_starttls(server: Server) -> None:
    deliver(server)
    with imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls()) as imap:
        imap.login("tyler@pillarbox.test", "secret")
        assert imap.select("INBOX", readonly=True) == ("OK", [b"1"])
        typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"Subject: Lunch" in data[0][1]
    with imaplib.IMAP4("127.0.0.1", server.ports["imap"]) as imap:
        assert "STARTTLS" in imap.capabilities
        imap.starttls(client_tls())
        assert "STARTTLS" not in imap.capabilities
        imap.login("tyler@pillarbox.test", "secret")
        assert imap.list()[0] == "OK"


def test_bad_password_is_refused_and_the_connection_stays(server: Server) -> None:
    imap = Dialogue(server.ports["imap"])
    reply = imap.command("a1", "LOGIN tyler@pillarbox.test wrong")
    assert reply[-1].startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    assert imap.command("a2", "LOGIN tyler@pillarbox.test secret")[-1].startswith(b"a2 OK")
    imap.close()


def test_idle_pushes_new_mail_quickly(server: Server) -> None:
    imap = Dialogue(server.ports["imap"])
    imap.command("a1", "LOGIN tyler@pillarbox.test secret")
    imap.command("a2", "SELECT INBOX")
    imap.sock.sendall(b"a3 IDLE\r\n")
    assert imap.line().startswith(b"+ ")
    start = time.monotonic()
    deliver(server)
    assert imap.line() == b"* 1 EXISTS\r\n"
    elapsed = time.monotonic() - start
    assert imap.line() == b"* 1 RECENT\r\n"
    imap.sock.sendall(b"DONE\r\n")
    assert imap.until("a3")[-1].startswith(b"a3 OK")
    assert elapsed < 2.0  # SMTP delivery included; the push itself is immediate
    imap.close()


def test_pop3_deletions_and_smtp_deliveries_reach_a_selected_session(server: Server) -> None:
    import poplib

    deliver(server)
    deliver(server)
    imap = Dialogue(server.ports["imap"])
    imap.command("a1", "LOGIN tyler@pillarbox.test secret")
    assert b"* 2 EXISTS\r\n" in imap.command("a2", "SELECT INBOX")
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    pop.user("tyler@pillarbox.test")
    pop.pass_("secret")
    pop.dele(1)
    pop.quit()
    deliver(server)
    noop = imap.command("a3", "NOOP")
    # Message 2 (now 1) is still recent for this session, and so is the new one.
    assert noop == [
        b"* 1 EXPUNGE\r\n",
        b"* 2 EXISTS\r\n",
        b"* 2 RECENT\r\n",
        b"a3 OK NOOP completed\r\n",
    ]
    imap.command("a4", "LOGOUT")
    imap.close()
