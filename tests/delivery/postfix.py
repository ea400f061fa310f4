"""A private Postfix instance on a loopback port for interop tests (run as root).

Own config_directory, queue and Maildir tree in a temp dir, started with `postfix -c DIR
start`; the system's /etc/postfix is never touched. It accepts mail for one virtual domain
(Maildir delivery) and relays everything else to `relay_port` on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

POSTFIX = "/usr/sbin/postfix"
DAEMON_DIR = Path("/usr/lib/postfix/sbin")
MAIL_USER = "nobody"

MASTER_CF = """\
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
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
myhostname = mx.{domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {base}/mail
virtual_mailbox_maps = texthash:{base}/conf/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
relayhost = [127.0.0.1]:{relay_port}
smtp_tls_security_level = may
alias_maps =
alias_database =
biff = no
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
"""


def unavailable() -> str | None:
    if not Path(POSTFIX).is_file() or not (DAEMON_DIR / "master").is_file():
        return "Postfix is not installed"
    if os.geteuid() != 0:
        return "a private Postfix instance must be started as root"
    return None


class Postfix:
    """`with Postfix(base, "pf.test", ["carol"], relay_port) as pf:` ... `pf.maildir("carol")`."""

    def __init__(self, domain: str, users: list[str], relay_port: int) -> None:
        # Not below pytest's tmp_path: that is mode 0700 and the postfix user must get in.
        self.base = Path(tempfile.mkdtemp(prefix="pillarbox-postfix-"))
        self.domain = domain
        self.users = users
        self.relay_port = relay_port
        self.port = free_port()

    def __enter__(self) -> Postfix:
        self._configure()
        self._run("start")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return self
            time.sleep(0.1)
        self.__exit__()
        raise AssertionError(f"postfix did not start: {self.log()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(subprocess.SubprocessError, AssertionError):
            self._run("stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def _configure(self) -> None:
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)  # the postfix user must reach its queue below this directory
        nobody, postfix = pwd.getpwnam(MAIL_USER), pwd.getpwnam("postfix")
        for name in ("conf", "queue", "data", "mail"):
            (base / name).mkdir(exist_ok=True)
        os.chown(base / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(base / "mail", nobody.pw_uid, nobody.pw_gid)
        conf = base / "conf"
        (conf / "main.cf").write_text(
            MAIN_CF.format(
                base=base,
                domain=self.domain,
                uid=nobody.pw_uid,
                gid=nobody.pw_gid,
                relay_port=self.relay_port,
            )
        )
        (conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        (conf / "vmailbox").write_text(
            "".join(f"{user}@{self.domain} {user}/\n" for user in self.users)
        )

    def _run(self, action: str) -> None:
        done = subprocess.run(
            [POSTFIX, "-c", str(self.base / "conf"), action],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"postfix {action}: {done.stderr} {self.log()[-1000:]}")

    def maildir(self, user: str) -> list[bytes]:
        """The messages delivered to `user` (new/ and cur/)."""
        out = []
        for sub in ("new", "cur"):
            folder = self.base / "mail" / user / sub
            if folder.is_dir():
                out += [path.read_bytes() for path in sorted(folder.iterdir())]
        return out

    def log(self) -> str:
        path = self.base / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""
