"""The real POP3 server over real sockets, driven by poplib and raw dialogues.

Most tests share one server (module scope) and each uses its own account, so that the
suite stays fast; tests that restart the server or change its settings start their own.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import poplib
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pillarbox.auth.passwords import hash_password
from pillarbox.store.sqlite import SqliteStore
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

DOMAIN = "pillarbox.test"
PASSWORD = "secret"
ACCOUNTS = 16
_next_user = itertools.count(1)


def message(number: int, extra: bytes = b"") -> bytes:
    return (
        b"From: Mac <mac@example.org>\r\n"
        b"Subject: message %d\r\n"
        b"\r\n"
        b"Line one of message %d\r\n"
        b".A line that starts with a dot\r\n"
        b"Line three\r\n" % (number, number)
    ) + extra


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def add_accounts(server: Server, addresses: Sequence[str]) -> None:
    """Create accounts straight in the store (one argon2 hash for all: fast setup)."""

    async def add() -> None:
        store = SqliteStore(server.data_dir / "pillarbox.sqlite3")
        await store.open()
        try:
            hashed = hash_password(PASSWORD)
            for address in addresses:
                await store.add_account(address, hashed)
        finally:
            await store.close()

    asyncio.run(add())


def start_server(root: Path, extra: str = "", accounts: int = 4) -> Server:
    server = Server(root, extra)
    server.cli("domain", "add", DOMAIN)
    add_accounts(server, [f"user{n}@{DOMAIN}" for n in range(1, accounts + 1)])
    server.start()
    return server


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("pop3"), accounts=ACCOUNTS)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def user(shared: Server) -> str:
    """An account of the shared server that no other test touches."""
    number = next(_next_user)
    assert number <= ACCOUNTS, "raise ACCOUNTS"
    return f"user{number}@{DOMAIN}"


def deliver(server: Server, address: str, count: int, extra: bytes = b"") -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        for number in range(1, count + 1):
            client.sendmail("mac@example.org", [address], message(number, extra))


def login(server: Server, address: str) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    client.user(address)
    client.pass_(PASSWORD)
    return client


def count_messages(server: Server, address: str) -> int:
    for line in server.cli("mailbox", "list", address).splitlines():
        name, count, *_ = line.split("\t")
        if name == "INBOX":
            return int(count.split()[0])
    raise AssertionError(address)


class Dialogue:
    """A raw POP3 client: send lines, read status lines and multi-line bodies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def line(self) -> bytes:
        line = self.file.readline()
        assert line.endswith(b"\r\n"), f"connection closed or bad line: {line!r}"
        return line[:-2]

    def lines(self) -> list[bytes]:
        """The rest of a multi-line response, still byte-stuffed, without the "."."""
        out = []
        while (line := self.line()) != b".":
            out.append(line)
        return out

    def command(self, text: str | bytes) -> bytes:
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(data + b"\r\n")
        return self.line()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# -- the seed's session ------------------------------------------------------------------


def test_seed_session_retrieves_and_deletes_the_first_of_three(shared: Server, user: str) -> None:
    deliver(shared, user, 3)
    talk = Dialogue(shared.ports["pop3"])
    assert talk.line().startswith(b"+OK Pillarbox POP3 server ready <")
    assert talk.command(f"USER {user}") == b"+OK send PASS"
    assert talk.command("PASS secret").startswith(b"+OK maildrop has 3 messages (")
    count, size = talk.command("STAT").split()[1:]
    assert count == b"3"
    retr = talk.command("RETR 1")
    body = talk.lines()
    assert retr.startswith(b"+OK ") and b"Subject: message 1" in body
    assert b"..A line that starts with a dot" in body  # RFC 1939 §3 byte-stuffing
    assert talk.command("DELE 1") == b"+OK message 1 deleted"
    assert talk.command("STAT").split()[1] == b"2"
    assert talk.command("QUIT") == b"+OK Pillarbox POP3 server signing off (2 messages left)"
    assert talk.file.readline() == b""  # the server closed the connection
    talk.close()
    assert count_messages(shared, user) == 2
    client = login(shared, user)
    assert client.stat()[0] == 2
    assert b"Subject: message 2" in client.retr(1)[1]  # the first one is gone for good
    client.quit()
    assert int(size) > 0


# -- poplib: the commands ----------------------------------------------------------------


def test_capa_announces_every_extension(shared: Server) -> None:
    client = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    capabilities = client.capa()
    client.quit()
    for name in ["TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"]:
        assert name in capabilities
    assert capabilities["SASL"] == ["PLAIN", "LOGIN"]
    assert capabilities["EXPIRE"] == ["NEVER"]
    assert capabilities["LOGIN-DELAY"] == ["0"]
    assert capabilities["IMPLEMENTATION"] == ["Pillarbox"]
    assert capabilities["UTF8"] == ["USER"]


def test_list_uidl_top_and_retr_with_poplib(shared: Server, user: str) -> None:
    deliver(shared, user, 3)
    client = login(shared, user)
    _, listing, _ = client.list()
    sizes = [int(line.split()[1]) for line in listing]
    assert [int(line.split()[0]) for line in listing] == [1, 2, 3]
    _, uidls, _ = client.uidl()
    uids = [line.split()[1] for line in uidls]
    assert len(set(uids)) == 3
    single = client.uidl(2)
    assert isinstance(single, bytes) and single.split()[2] == uids[1]
    scan = client.list(3)
    assert isinstance(scan, bytes) and scan.split()[2] == str(sizes[2]).encode()
    _, top, _ = client.top(2, 1)
    assert top[-2:] == [b"", b"Line one of message 2"]  # headers, blank line, one line
    _, lines, octets = client.retr(3)
    assert lines[-2:] == [b".A line that starts with a dot", b"Line three"]  # unstuffed
    assert octets >= sizes[2]
    client.quit()


def test_rset_undeletes(shared: Server, user: str) -> None:
    deliver(shared, user, 3)
    client = login(shared, user)
    client.dele(1)
    client.dele(3)
    assert client.stat()[0] == 1
    with pytest.raises(poplib.error_proto, match="no such message"):
        client.retr(1)  # RFC 1939 §5: a deleted message is refused
    assert client.rset().startswith(b"+OK maildrop has 3 messages")
    assert client.stat()[0] == 3
    client.quit()
    assert count_messages(shared, user) == 3


def test_dropped_connection_deletes_nothing(shared: Server, user: str) -> None:
    deliver(shared, user, 3)
    client = login(shared, user)
    client.dele(1)
    client.dele(2)
    client.close()  # no QUIT: no UPDATE state (RFC 1939 §6)
    client = _login_when_unlocked(shared, user)
    assert client.stat()[0] == 3
    client.quit()


def _login_when_unlocked(server: Server, address: str) -> poplib.POP3:
    """The server notices a dropped connection a moment later; retry the login briefly."""
    for _ in range(50):
        client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
        client.user(address)
        try:
            client.pass_(PASSWORD)
        except poplib.error_proto as error:
            assert b"[IN-USE]" in error.args[0]
            client.close()
            time.sleep(0.05)
        else:
            return client
    raise AssertionError("maildrop never unlocked")


def test_second_session_gets_in_use(shared: Server, user: str) -> None:
    deliver(shared, user, 1)
    first = login(shared, user)
    second = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    second.user(user)
    with pytest.raises(poplib.error_proto) as refused:
        second.pass_(PASSWORD)
    assert refused.value.args[0].startswith(b"-ERR [IN-USE]")
    assert first.stat()[0] == 1  # the first session is unaffected
    first.quit()
    second.user(user)  # RFC 1939 §7: back in AUTHORIZATION, may try again
    assert second.pass_(PASSWORD).startswith(b"+OK maildrop has 1 message")
    second.quit()


def test_wrong_password_is_refused_with_auth_code(shared: Server, user: str) -> None:
    client = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    client.user(user)
    with pytest.raises(poplib.error_proto) as refused:
        client.pass_("wrong")
    assert refused.value.args[0] == b"-ERR [AUTH] Authentication failed."
    client.user(user)
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()


def test_stls_then_login(shared: Server, user: str) -> None:
    deliver(shared, user, 2)
    client = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    assert client.stls(client_tls()).startswith(b"+OK")
    assert "STLS" not in client.capa()  # RFC 2595 §4: not offered once TLS is active
    client.user(user)
    client.pass_(PASSWORD)
    assert client.stat()[0] == 2
    client.quit()


def test_plaintext_after_stls_is_discarded(shared: Server, user: str) -> None:
    talk = Dialogue(shared.ports["pop3"])
    talk.line()
    talk.sock.sendall(f"STLS\r\nUSER {user}\r\n".encode())
    assert talk.line() == b"+OK Begin TLS negotiation"
    tls = client_tls().wrap_socket(talk.sock, server_hostname="mx.pillarbox.test")
    tls.sendall(b"PASS secret\r\n")
    # The injected USER was dropped (RFC 2595 §4), so PASS has no user to go with.
    assert tls.recv(4096) == b"-ERR No username given\r\n"
    tls.close()


def test_pop3_ssl_implicit_tls(shared: Server, user: str) -> None:
    deliver(shared, user, 1)
    client = poplib.POP3_SSL("127.0.0.1", shared.ports["pop3s"], timeout=10, context=client_tls())
    assert "STLS" not in client.capa()
    client.user(user)
    client.pass_(PASSWORD)
    assert client.stat()[0] == 1
    client.quit()


def test_apop_with_a_secret_set_by_the_operator(shared: Server, user: str) -> None:
    deliver(shared, user, 1)
    client = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.apop(user, "apop-secret")  # no secret set yet: APOP is not allowed
    client.quit()
    shared.cli("user", "apop", user, "--secret-stdin", input="apop-secret\n")
    client = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    assert client.apop(user, "apop-secret").startswith(b"+OK maildrop has 1 message")
    client.quit()
    client = poplib.POP3("127.0.0.1", shared.ports["pop3"], timeout=10)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.apop(user, "wrong-secret")
    client.quit()


def test_sasl_plain_with_initial_response_and_login(shared: Server, user: str) -> None:
    talk = Dialogue(shared.ports["pop3"])
    talk.line()
    plain = base64.b64encode(f"\0{user}\0secret".encode()).decode()
    assert talk.command(f"AUTH PLAIN {plain}").startswith(b"+OK maildrop has 0 messages")
    assert talk.command("QUIT").startswith(b"+OK")
    talk.close()
    talk = Dialogue(shared.ports["pop3"])
    talk.line()
    assert talk.command("AUTH LOGIN") == b"+ " + base64.b64encode(b"Username:")
    assert talk.command(base64.b64encode(user.encode())) == b"+ " + base64.b64encode(b"Password:")
    assert talk.command(base64.b64encode(b"secret")).startswith(b"+OK maildrop has 0")
    talk.command("QUIT")
    talk.close()


def test_bad_input_gets_err_and_the_session_goes_on(shared: Server, user: str) -> None:
    deliver(shared, user, 1)
    talk = Dialogue(shared.ports["pop3"])
    talk.line()
    assert talk.command("STAT") == b"-ERR STAT is not valid before login"
    assert talk.command("PASS secret") == b"-ERR No username given"
    assert talk.command("FROB") == b"-ERR Unknown command"
    assert talk.command("USER") == b"-ERR USER needs more arguments"
    talk.command(f"USER {user}")
    talk.command("PASS secret")
    assert talk.command("RETR") == b"-ERR RETR needs more arguments"
    assert talk.command("RETR 2") == b"-ERR no such message"
    assert talk.command("RETR 0") == b"-ERR no such message"
    assert talk.command("LIST x") == b"-ERR Invalid message number"
    assert talk.command("TOP 1") == b"-ERR TOP needs more arguments"
    assert talk.command("DELE 1") == b"+OK message 1 deleted"
    assert talk.command("DELE 1") == b"-ERR message 1 already deleted"
    assert talk.command("USER x") == b"-ERR USER is not valid in the TRANSACTION state"
    assert talk.command(b"NOOP " + b"x" * 300) == b"-ERR Line too long"
    talk.sock.sendall(b"NOOP\n")
    assert talk.line() == b"-ERR Lines must end with CRLF"
    assert talk.command("NOOP") == b"+OK"
    assert talk.command("RSET").startswith(b"+OK")
    assert talk.command("QUIT").startswith(b"+OK")
    talk.close()
    assert count_messages(shared, user) == 1


def test_pipelined_commands_answered_in_order(shared: Server, user: str) -> None:
    deliver(shared, user, 2)
    talk = Dialogue(shared.ports["pop3"])
    talk.line()
    talk.sock.sendall(f"USER {user}\r\nPASS secret\r\nSTAT\r\nDELE 2\r\nQUIT\r\n".encode())
    replies = [talk.line() for _ in range(5)]
    assert replies[0] == b"+OK send PASS"
    assert replies[1].startswith(b"+OK maildrop has 2 messages")
    assert replies[2].startswith(b"+OK 2 ")
    assert replies[3] == b"+OK message 2 deleted"
    assert replies[4].endswith(b"(1 message left)")
    talk.close()
    assert count_messages(shared, user) == 1


# -- servers of their own -----------------------------------------------------------------


def test_uidl_is_stable_across_sessions_and_restarts(tmp_path: Path) -> None:
    server = start_server(tmp_path, accounts=1)
    address = f"user1@{DOMAIN}"
    try:
        deliver(server, address, 3)
        client = login(server, address)
        before = client.uidl()[1]
        client.dele(1)
        client.quit()
        server.stop()
        server.log_path.write_text("")  # start() waits for a fresh "ready" line
        server.start()
        deliver(server, address, 1)
        client = login(server, address)
        after = client.uidl()[1]
        client.quit()
    finally:
        server.kill()
    old = [line.split()[1] for line in before]
    new = [line.split()[1] for line in after]
    assert new[:2] == old[1:]  # the survivors keep their unique-ids (RFC 1939 §7)
    assert new[2] not in old  # the new message's id was never used, not even by message 1


def test_plaintext_login_needs_tls_when_loopback_is_not_trusted(tmp_path: Path) -> None:
    server = start_server(tmp_path, "[auth]\nallow_plaintext_on_loopback = false", accounts=1)
    address = f"user1@{DOMAIN}"
    try:
        talk = Dialogue(server.ports["pop3"])
        talk.line()
        assert talk.command(f"USER {address}").startswith(b"-ERR [AUTH] Plaintext")
        assert talk.command("AUTH PLAIN").startswith(b"-ERR [AUTH] Plaintext")
        talk.sock.sendall(b"CAPA\r\n")
        assert talk.line().startswith(b"+OK")
        capabilities = talk.lines()
        assert b"USER" not in capabilities and b"STLS" in capabilities
        talk.close()
        client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
        client.stls(client_tls())
        assert "USER" in client.capa()
        client.user(address)
        assert client.pass_(PASSWORD).startswith(b"+OK")
        client.quit()
    finally:
        server.kill()
