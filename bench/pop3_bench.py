"""POP3 benchmark: Pillarbox side by side with Dovecot (dovecot-pop3d) on the same mail.

For each message size (default 2 KB and 100 KB) the script fills one Maildir with N messages
(default 1,000), gives a copy to each server, and runs one client that logs in, LISTs,
UIDLs, then RETRs and DELEs every message (RETR n and DELE n pipelined in one write, which
both servers announce with PIPELINING) and QUITs, so the deletions are committed. It prints
messages/second for the whole session (login to the QUIT reply) and for the RETR+DELE
phase alone, and checks that each server sent every byte and emptied the mailbox.

  pillarbox  `pillarbox serve` on a private data_dir, filled by `pillarbox mailbox import`.
  dovecot    a throw-away Dovecot (own config, base_dir and Maildir in a temp dir) with
             only the pop3 protocol on a loopback port, plaintext login allowed there.

Before each measured session the set-up's writes are flushed to disk (`os.sync`, skipped
with --no-sync), so both servers expunge mail that is on disk, as a server's mail is.

Run: `.venv/bin/python bench/pop3_bench.py [--messages N] [--sizes 2K,100K]
[--target pillarbox,dovecot] [--no-sync]`. Everything listens on and talks to 127.0.0.1
only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from _common import (
    BENCH_DOMAIN,
    BENCH_PASSWORD,
    LOOPBACK,
    free_port,
    make_message,
    tree_cpu_seconds,
    wait_for_port,
)

PILLARBOX: Final = Path(sys.executable).parent / "pillarbox"
DOVECOT: Final = Path("/usr/sbin/dovecot")
DOVECOT_POP3: Final = Path("/usr/lib/dovecot/pop3")
USER: Final = f"pop@{BENCH_DOMAIN}"
DEFAULT_MESSAGES: Final = 1000
DEFAULT_SIZES: Final = ("2K", "100K")
TARGETS: Final = ("pillarbox", "dovecot")
ADMIN_TIMEOUT: Final = 300.0
STOP_TIMEOUT: Final = 20.0
# One socket read; large enough that a 100 KB RETR needs only a few.
READ_SIZE: Final = 256 * 1024
CLIENT_TIMEOUT: Final = 60.0

_PILLARBOX_CONFIG: Final = """\
hostname = "{domain}"
data_dir = "{data}"
[smtp]
listen = []
submission = []
submissions = []
[pop3]
listen = ["{host}:{port}"]
listen_tls = []
[imap]
listen = []
listen_tls = []
"""

_DOVECOT_CONFIG: Final = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
info_log_path = {tmp}/dovecot.log
protocols = pop3
listen = {host}
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
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


# -- the mail ------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().upper()
    factor = 1024 if text.endswith("K") else 1
    return int(text.rstrip("K")) * factor


def fill_maildir(path: Path, count: int, size: int) -> None:
    """`count` messages of about `size` octets (CRLF, some lines starting with ".")."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    template = make_message(size)
    rest = template.rest.replace(b"\r\n..", b"\r\n.")  # stored form: not dot-stuffed
    stamp = int(time.time()) - count
    for number in range(1, count + 1):
        head = b"Message-ID: <%d.pop3bench@client.test>\r\n" % number
        name = f"{stamp + number}.M{number}P{os.getpid()}.bench:2,"
        (path / "cur" / name).write_bytes(head + rest)


# -- the client ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    messages: int
    octets: int
    login: float
    listing: float
    retrieve: float
    quit: float
    cpu: float | None = None  # server CPU seconds (user + system) for the session

    @property
    def total(self) -> float:
        return self.login + self.listing + self.retrieve + self.quit


class Client:
    """A minimal POP3 client that reads whole responses with `bytes.find`."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=CLIENT_TIMEOUT)
        self.buffer = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        if not line.startswith(b"+"):
            raise RuntimeError(f"server said {line!r}")
        return line

    def multiline(self) -> bytes:
        """The status line, then the body up to the terminating ".": its octet count."""
        self.line()
        start = 0
        while (end := self.buffer.find(b"\r\n.\r\n", start)) < 0:
            start = max(len(self.buffer) - 4, 0)
            self._fill()
        body = bytes(self.buffer[: end + 2])
        del self.buffer[: end + 5]
        return body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def run_session(port: int, user: str, password: str, expected: int) -> Result:
    started = time.perf_counter()
    client = Client(port)
    client.line()
    client.send(f"USER {user}\r\nPASS {password}\r\n".encode())
    client.line()
    client.line()
    logged_in = time.perf_counter()
    client.send(b"LIST\r\n")
    listing = client.multiline().count(b"\r\n")
    client.send(b"UIDL\r\n")
    uids = client.multiline().count(b"\r\n")
    if listing != expected or uids != expected:
        raise RuntimeError(f"LIST/UIDL show {listing}/{uids} messages, expected {expected}")
    listed = time.perf_counter()
    octets = 0
    for number in range(1, expected + 1):
        client.send(b"RETR %d\r\nDELE %d\r\n" % (number, number))
        octets += len(client.multiline())
        client.line()
    retrieved = time.perf_counter()
    client.send(b"QUIT\r\n")
    client.line()
    done = time.perf_counter()
    client.close()
    return Result(
        expected,
        octets,
        logged_in - started,
        listed - logged_in,
        retrieved - listed,
        done - retrieved,
    )


def remaining(port: int, user: str, password: str) -> int:
    client = Client(port)
    client.line()
    client.send(f"USER {user}\r\nPASS {password}\r\nSTAT\r\nQUIT\r\n".encode())
    client.line()
    client.line()
    count = int(client.line().split()[1])
    client.line()
    client.close()
    return count


# -- server CPU ----------------------------------------------------------------------------

# Dovecot ends its pop3 process after QUIT; its master reaps it (adding its CPU to the
# master's children time) shortly after. Wait that long before the second reading.
REAP_WAIT: Final = 0.5


# -- the servers ---------------------------------------------------------------------------


def _run(command: list[str], stdin: str = "") -> None:
    result = subprocess.run(
        command, input=stdin.encode(), capture_output=True, check=False, timeout=ADMIN_TIMEOUT
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(command[:4])}... failed: {detail[-300:]}")


@contextlib.contextmanager
def pillarbox(maildir: Path, work: Path) -> Iterator[tuple[int, int]]:
    """`pillarbox serve` with one user whose INBOX holds the Maildir's messages."""
    port = free_port()
    config = work / "pillarbox.toml"
    config.write_text(
        _PILLARBOX_CONFIG.format(domain=BENCH_DOMAIN, data=work / "data", host=LOOPBACK, port=port)
    )
    admin = [str(PILLARBOX), "--config", str(config)]
    _run([*admin, "domain", "add", BENCH_DOMAIN])
    _run([*admin, "user", "add", USER, "--password-stdin"], BENCH_PASSWORD + "\n")
    _run([*admin, "mailbox", "import", USER, str(maildir)])
    with (work / "serve.log").open("wb") as log:
        proc = subprocess.Popen([*admin, "serve"], stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for_port(port, proc=proc)
            yield port, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _master_pid(pidfile: Path) -> int:
    """Dovecot's master process id, once it has written its pid file."""
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            text = pidfile.read_text().strip()
            if text.isdigit():
                return int(text)
        time.sleep(0.05)
    raise RuntimeError(f"dovecot wrote no {pidfile}")


@contextlib.contextmanager
def dovecot(maildir: Path) -> Iterator[tuple[int, int]]:
    """A throw-away Dovecot serving a copy of the Maildir to the same user name."""
    # Own directory under /tmp: the mail user must be able to enter every parent.
    tmp = Path(tempfile.mkdtemp(prefix="pillarbox-pop3bench-dovecot-"))
    try:
        tmp.chmod(0o711)
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            login_user, internal_user = "dovenull", "dovecot"
        else:
            mail_user = pwd.getpwuid(os.getuid())
            login_user = internal_user = mail_user.pw_name
        for sub in ("run", "state", "mail", "home"):
            (tmp / sub).mkdir()
        shutil.copytree(maildir, tmp / "mail" / USER)
        for sub in ("mail", "home"):
            subprocess.run(
                ["chown", "-R", f"{mail_user.pw_uid}:{mail_user.pw_gid}", str(tmp / sub)],
                check=True,
            )
        port = free_port()
        config = tmp / "dovecot.conf"
        config.write_text(
            _DOVECOT_CONFIG.format(
                tmp=tmp,
                host=LOOPBACK,
                port=port,
                password=BENCH_PASSWORD,
                uid=mail_user.pw_uid,
                gid=mail_user.pw_gid,
                login_user=login_user,
                internal_user=internal_user,
            )
        )
        subprocess.run([str(DOVECOT), "-c", str(config)], check=True)
        try:
            wait_for_port(port)
            yield port, _master_pid(tmp / "run" / "master.pid")
        finally:
            subprocess.run(
                [str(DOVECOT), "-c", str(config), "stop"], check=False, capture_output=True
            )
            pidfile = tmp / "run" / "master.pid"
            deadline = time.monotonic() + STOP_TIMEOUT
            while pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the run -------------------------------------------------------------------------------


def bench_target(target: str, maildir: Path, work: Path, count: int, sync: bool = True) -> Result:
    server = pillarbox(maildir, work) if target == "pillarbox" else dovecot(maildir)
    with server as (port, pid):
        # One unmeasured login first: Dovecot's static passdb checks a clear password,
        # Pillarbox an argon2 hash whose verification it then caches (as for any client
        # that polls), so the measured session compares POP3 work, not password hashing.
        remaining(port, USER, BENCH_PASSWORD)
        # The set-up just wrote the whole mail (import, Maildir copy): flush it now, so
        # that the measured QUIT finds the mail on disk, as a server's mail normally is,
        # and its fsync does not wait for the set-up's writes to reach the disk.
        if sync:
            os.sync()
        time.sleep(REAP_WAIT)
        cpu_before = tree_cpu_seconds([pid])
        result = run_session(port, USER, BENCH_PASSWORD, count)
        time.sleep(REAP_WAIT)
        result = replace(result, cpu=tree_cpu_seconds([pid]) - cpu_before)
        left = remaining(port, USER, BENCH_PASSWORD)
    if left:
        raise RuntimeError(f"{target}: {left} messages left after QUIT")
    return result


def report(target: str, size: str, result: Result) -> None:
    rate = result.messages / result.total
    retr_rate = result.messages / result.retrieve
    print(
        f"{target:<10} {size:>5} {result.messages:>6} msgs  "
        f"{rate:>8.0f} msg/s session  {retr_rate:>8.0f} msg/s RETR+DELE  "
        f"login {result.login * 1000:6.1f} ms  LIST+UIDL {result.listing * 1000:6.1f} ms  "
        f"QUIT {result.quit * 1000:6.1f} ms  {result.octets / result.total / 1e6:6.1f} MB/s  "
        f"server CPU {_cpu_per_thousand(result)}",
        flush=True,
    )


def _cpu_per_thousand(result: Result) -> str:
    if result.cpu is None:
        return "?"
    return f"{result.cpu * 1000 / result.messages:6.2f} s/1000 msgs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES))
    parser.add_argument("--target", default=",".join(TARGETS))
    parser.add_argument(
        "--no-sync", action="store_true", help="do not flush the set-up's writes to disk first"
    )
    args = parser.parse_args(argv)
    targets = [t for t in args.target.split(",") if t]
    if "dovecot" in targets and not (DOVECOT.exists() and DOVECOT_POP3.exists()):
        print("dovecot-pop3d is not installed: skipping Dovecot", file=sys.stderr)
        targets.remove("dovecot")
    results: dict[tuple[str, str], Result] = {}
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory(prefix="pillarbox-pop3bench-") as work:
            maildir = Path(work) / "Maildir"
            fill_maildir(maildir, args.messages, parse_size(size))
            for target in targets:
                target_dir = Path(work) / target
                target_dir.mkdir()
                result = bench_target(
                    target, maildir, target_dir, args.messages, sync=not args.no_sync
                )
                results[(target, size)] = result
                report(target, size, result)
    for size in args.sizes.split(","):
        ours, theirs = results.get(("pillarbox", size)), results.get(("dovecot", size))
        if ours is None or theirs is None:
            continue
        line = f"{size:>5}: Pillarbox at {theirs.total / ours.total:.2f}x Dovecot's session rate"
        if ours.cpu and theirs.cpu:
            line += f", {ours.cpu / theirs.cpu:.2f}x its server CPU"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
