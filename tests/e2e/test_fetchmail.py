"""fetchmail (the Debian client) against the real server: STLS, MDA delivery, deletion,
and `--keep --uidl` fetching only new messages."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server
from tests.e2e.test_pop3_e2e import DOMAIN, PASSWORD, count_messages, deliver, start_server

FETCHMAIL = shutil.which("fetchmail") or "/usr/bin/fetchmail"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.external,
    pytest.mark.skipif(not os.path.exists(FETCHMAIL), reason="fetchmail is not installed"),
]

# fetchmail's exit codes (fetchmail(1) "EXIT CODES").
GOT_MAIL = 0
NO_MAIL = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = start_server(tmp_path_factory.mktemp("fetchmail"), accounts=2)
    try:
        yield instance
    finally:
        instance.kill()


def fetch(server: Server, home: Path, address: str, *options: str) -> int:
    """One fetchmail run over STLS into an MDA that writes each message to its own file."""
    home.mkdir(exist_ok=True)
    (home / "mail").mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(
        f"poll 127.0.0.1 protocol pop3 service {server.ports['pop3']}\n"
        f'  user "{address}" there with password "{PASSWORD}" is "root" here\n'
        # STLS is mandatory with sslproto auto; the certificate is self-signed.
        "  sslproto 'auto' no sslcertck\n"
        f'  mda "cat > $(mktemp {home}/mail/msg.XXXXXX)"\n'
    )
    rc.chmod(0o600)
    done = subprocess.run(
        [
            FETCHMAIL,
            "--fetchmailrc",
            str(rc),
            "--idfile",
            str(home / "fetchids"),
            "--pidfile",
            str(home / "fetchmail.pid"),
            "--nosyslog",
            "--verbose",
            *options,
        ],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    (home / "fetchmail.log").write_bytes(done.stdout + done.stderr)
    return done.returncode


def fetched(home: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((home / "mail").iterdir())]


def test_fetch_all_over_stls_then_nothing_left(server: Server, tmp_path: Path) -> None:
    address = f"user1@{DOMAIN}"
    deliver(server, address, 3)
    assert fetch(server, tmp_path, address) == GOT_MAIL, (tmp_path / "fetchmail.log").read_text()
    log = (tmp_path / "fetchmail.log").read_text()
    assert "STLS" in log
    messages = fetched(tmp_path)
    assert len(messages) == 3
    subjects = sorted(
        line for text in messages for line in text.splitlines() if line.startswith(b"Subject:")
    )
    assert subjects == [b"Subject: message 1", b"Subject: message 2", b"Subject: message 3"]
    assert all(b"\n.A line that starts with a dot\n" in m for m in messages)  # unstuffed
    assert count_messages(server, address) == 0
    assert fetch(server, tmp_path, address) == NO_MAIL
    assert len(fetched(tmp_path)) == 3
    assert "pop3.tls" in server.log()


def test_keep_with_uidl_fetches_only_new_messages(server: Server, tmp_path: Path) -> None:
    address = f"user2@{DOMAIN}"
    deliver(server, address, 2)
    assert fetch(server, tmp_path, address, "--keep", "--uidl") == GOT_MAIL
    assert len(fetched(tmp_path)) == 2
    assert count_messages(server, address) == 2  # kept on the server
    assert fetch(server, tmp_path, address, "--keep", "--uidl") == NO_MAIL
    deliver(server, address, 1)
    assert fetch(server, tmp_path, address, "--keep", "--uidl") == GOT_MAIL
    messages = fetched(tmp_path)
    assert len(messages) == 3  # only the new one came the second time
    assert count_messages(server, address) == 3
    assert address in (tmp_path / "fetchids").read_text()
