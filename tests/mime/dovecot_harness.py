"""Start a throw-away Dovecot on a loopback port, for comparing FETCH answers with ours.

Nothing here touches the system configuration: the config, base_dir, state, logs and the
maildir all live in one temporary directory that the caller owns and removes.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port

DOVECOT = Path("/usr/sbin/dovecot")
USER = "corpus"
PASSWORD = "corpus-pass"
START_TIMEOUT = 10.0

_CONFIG = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
info_log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:{tmp}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@dataclass(frozen=True, slots=True)
class Dovecot:
    """A running throw-away Dovecot: where it listens and how to stop it."""

    port: int
    tmp: Path
    config: Path

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def stop(self) -> None:
        subprocess.run(
            [str(DOVECOT), "-c", str(self.config), "stop"],
            check=False,
            capture_output=True,
        )


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on 127.0.0.1:{port}")


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """Start Dovecot with a config in a fresh temporary directory; stop it and remove it."""
    # Our own directory under /tmp: the mail user (not root) must be able to enter every
    # directory above its maildir, which a pytest tmp_path (mode 0700 parents) does not allow.
    tmp = Path(tempfile.mkdtemp(prefix="pillarbox-dovecot-"))
    try:
        with _started(tmp) as server:
            yield server
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _started(tmp: Path) -> Iterator[Dovecot]:
    if os.geteuid() == 0:
        mail_user = pwd.getpwnam("nobody")
        login_user, internal_user = "dovenull", "dovecot"
    else:
        mail_user = pwd.getpwuid(os.getuid())
        login_user = internal_user = mail_user.pw_name
    tmp.chmod(0o711)  # the mail user must be able to reach its maildir
    for sub in ("run", "state", "mail", "home"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("mail", "home"):
        shutil.chown(tmp / sub, mail_user.pw_uid, mail_user.pw_gid)
    port = free_port()
    config = tmp / "dovecot.conf"
    config.write_text(
        _CONFIG.format(
            tmp=tmp,
            port=port,
            password=PASSWORD,
            uid=mail_user.pw_uid,
            gid=mail_user.pw_gid,
            login_user=login_user,
            internal_user=internal_user,
        )
    )
    subprocess.run([str(DOVECOT), "-c", str(config)], check=True)
    server = Dovecot(port=port, tmp=tmp, config=config)
    try:
        _wait_listening(port)
        yield server
    finally:
        server.stop()
        _wait_stopped(tmp / "run" / "master.pid")


def _wait_stopped(pidfile: Path) -> None:
    """Wait until the master process has gone (its pid file is removed on exit)."""
    deadline = time.monotonic() + START_TIMEOUT
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def fetch_raw(client: imaplib.IMAP4, seq: int, items: str) -> bytes:
    """FETCH ``items`` for one message and return the raw response with literals inlined."""
    typ, data = client.fetch(str(seq), f"({items})")
    if typ != "OK":
        raise RuntimeError(f"FETCH failed: {data!r}")
    out: list[bytes] = []
    for chunk in data:
        if isinstance(chunk, tuple):
            head, literal = chunk
            out.append(head + b"\r\n" if head.endswith(b"}") else head)
            out.append(literal)
        elif isinstance(chunk, bytes):
            out.append(chunk)
    return b"".join(out)
