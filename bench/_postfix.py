"""Private Postfix and smtp-sink instances on loopback ports, for side-by-side figures.

The Postfix instance has its own config_directory, queue and Maildir tree in a temp dir and
is started with `postfix -c DIR start`; the system's /etc/postfix is never written. Its
smtpd fsyncs the queue file before answering 250 to DATA, which is the "durable" rate.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from _common import BENCH_DOMAIN, BENCH_RCPT, LOOPBACK, free_port, wait_for_port

POSTFIX: Final = "/usr/sbin/postfix"
DAEMON_DIR: Final = Path("/usr/lib/postfix/sbin")
SMTP_SINK_NAMES: Final = ("/usr/sbin/smtp-sink", str(DAEMON_DIR / "smtp-sink"))
# How long `postfix stop` may take before the master is killed.
STOP_TIMEOUT: Final = 15.0
# Connections smtp-sink may hold in its listen backlog (its required argument).
SINK_BACKLOG: Final = 256
# The unprivileged user that owns delivered Maildir files (virtual_minimum_uid is 100).
MAIL_USER: Final = "nobody"
MAILDIR_USER: Final = BENCH_RCPT.split("@", 1)[0]

# Services copied from Debian's master.cf, all without chroot; smtpd listens on one port.
_MASTER_CF: Final = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

_MAIN_CF: Final = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
myhostname = postfix.{domain}
mydestination =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {base}/mail
virtual_mailbox_maps = texthash:{base}/conf/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
alias_maps =
alias_database =
biff = no
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
"""


def postfix_available() -> str | None:
    """None if a private Postfix can run here, else the reason it cannot."""
    if not Path(POSTFIX).is_file() or not (DAEMON_DIR / "master").is_file():
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance must be started as root"
    return None


def smtp_sink_path() -> str | None:
    """The smtp-sink program, or None."""
    for name in SMTP_SINK_NAMES:
        if Path(name).is_file():
            return name
    return shutil.which("smtp-sink")


@dataclass(slots=True)
class PostfixInstance:
    """A private Postfix with Maildir delivery for BENCH_RCPT; use as a context manager."""

    workdir: Path | None = None
    port: int = 0
    base: Path | None = None
    master_pid: int | None = None

    def __enter__(self) -> Self:
        reason = postfix_available()
        if reason is not None:
            raise RuntimeError(reason)
        self.base = Path(tempfile.mkdtemp(prefix="postfix-bench-", dir=self.workdir))
        atexit.register(self.stop)
        try:
            self._write_config(self.base)
            self._run("start")
            wait_for_port(self.port)
            self.master_pid = self._read_master_pid()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def maildir(self) -> Path:
        assert self.base is not None
        return self.base / "mail" / MAILDIR_USER

    def delivered(self) -> int:
        """Messages delivered into the Maildir so far."""
        total = 0
        for sub in ("new", "cur"):
            path = self.maildir / sub
            if path.is_dir():
                total += sum(1 for _ in os.scandir(path))
        return total

    def wait_delivered(self, count: int, timeout: float) -> int:
        """Wait (bounded) until `count` messages sit in the Maildir; return how many do."""
        deadline = time.monotonic() + timeout
        seen = self.delivered()
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = self.delivered()
        return seen

    def _write_config(self, base: Path) -> None:
        base.chmod(0o755)  # the postfix user must reach its queue below this directory
        nobody = pwd.getpwnam(MAIL_USER)
        postfix = pwd.getpwnam("postfix")
        for name in ("conf", "queue", "data", "mail"):
            (base / name).mkdir()
        os.chown(base / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(base / "mail", nobody.pw_uid, nobody.pw_gid)
        self.port = self.port or free_port()
        conf = base / "conf"
        (conf / "main.cf").write_text(
            _MAIN_CF.format(
                base=base, domain=BENCH_DOMAIN, host=LOOPBACK, uid=nobody.pw_uid, gid=nobody.pw_gid
            )
        )
        (conf / "master.cf").write_text(_MASTER_CF.format(listen=f"{LOOPBACK}:{self.port}"))
        # Trailing "/" selects Maildir delivery (virtual(8)).
        (conf / "vmailbox").write_text(f"{BENCH_RCPT} {MAILDIR_USER}/\n")

    def _run(self, action: str) -> None:
        assert self.base is not None
        result = subprocess.run(
            [POSTFIX, "-c", str(self.base / "conf"), action],
            capture_output=True,
            text=True,
            check=False,
            timeout=STOP_TIMEOUT * 2,
        )
        if result.returncode != 0:
            raise RuntimeError(f"postfix {action} failed: {self._log_tail() or result.stderr}")

    def _read_master_pid(self) -> int | None:
        assert self.base is not None
        try:
            return int((self.base / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _log_tail(self) -> str:
        assert self.base is not None
        try:
            lines = (self.base / "maillog").read_text().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])

    def stop(self) -> None:
        """Stop the instance (idempotent); kill its master if it does not go quietly."""
        if self.base is None:
            return
        pid = self.master_pid or self._read_master_pid()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("stop")
        if pid is not None and not _wait_gone(pid, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, STOP_TIMEOUT)
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        atexit.unregister(self.stop)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@dataclass(slots=True)
class SmtpSink:
    """Postfix's smtp-sink on a loopback port: accepts and discards, stores nothing."""

    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        program = smtp_sink_path()
        if program is None:
            raise RuntimeError("smtp-sink is not installed (apt-get install postfix)")
        self.port = self.port or free_port()
        command = [program]
        if os.geteuid() == 0:
            command += ["-u", MAIL_USER]
        command += [f"{LOOPBACK}:{self.port}", str(SINK_BACKLOG)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        try:
            wait_for_port(self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Terminate smtp-sink (idempotent)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        atexit.unregister(self.stop)
