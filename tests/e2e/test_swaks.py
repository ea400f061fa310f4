"""swaks (Debian package) against the real server: plain, STARTTLS+AUTH, implicit TLS, BDAT."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.e2e.server import Server
from tests.e2e.test_smtp_e2e import count_messages, mailbox

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.external,
    pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed"),
]


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--timeout", "20", "--helo", "client.example", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_swaks_plain_delivery(server: Server) -> None:
    done = swaks(
        "--server",
        f"127.0.0.1:{server.ports['smtp']}",
        "--from",
        "bob@example.net",
        "--to",
        "tyler@pillarbox.test",
        "--body",
        "Hi Tyler! from swaks",
    )
    assert done.returncode == 0, done.stdout
    assert b"Hi Tyler! from swaks" in mailbox(server, "tyler@pillarbox.test")


def test_swaks_starttls_auth_submission(server: Server) -> None:
    done = swaks(
        "--server",
        f"127.0.0.1:{server.ports['submission']}",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "mac@pillarbox.test",
        "--auth-password",
        "secret",
        "--from",
        "mac@pillarbox.test",
        "--to",
        "jane@pillarbox.test",
    )
    assert done.returncode == 0, done.stdout
    assert "250-STARTTLS" in done.stdout and "235 2.7.0" in done.stdout
    assert count_messages(server, "jane@pillarbox.test") == 1


def test_swaks_implicit_tls_auth_login(server: Server) -> None:
    done = swaks(
        "--server",
        f"127.0.0.1:{server.ports['submissions']}",
        "--tls-on-connect",
        "--auth",
        "LOGIN",
        "--auth-user",
        "jane@pillarbox.test",
        "--auth-password",
        "secret",
        "--from",
        "jane@pillarbox.test",
        "--to",
        "tyler@pillarbox.test",
    )
    assert done.returncode == 0, done.stdout
    assert count_messages(server, "tyler@pillarbox.test") == 1


def test_swaks_bad_password_fails(server: Server) -> None:
    done = swaks(
        "--server",
        f"127.0.0.1:{server.ports['submission']}",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "mac@pillarbox.test",
        "--auth-password",
        "wrong",
        "--from",
        "mac@pillarbox.test",
        "--to",
        "jane@pillarbox.test",
    )
    assert done.returncode != 0
    assert "535 5.7.8" in done.stdout


def test_swaks_pipelining_and_unknown_user(server: Server) -> None:
    done = swaks(
        "--server",
        f"127.0.0.1:{server.ports['smtp']}",
        "--pipeline",
        "--from",
        "bob@example.net",
        "--to",
        "nobody@pillarbox.test",
    )
    assert done.returncode != 0
    assert "550 5.1.1" in done.stdout
