"""Run the real Pillarbox server as a subprocess on a loopback port, for benchmarks.

Uses only the operator interface from DESIGN.md: `pillarbox --config FILE domain add`,
`user add ADDRESS --password-stdin`, then `serve`, stopped with SIGTERM.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Self

from _common import BENCH_DOMAIN, BENCH_PASSWORD, BENCH_RCPT, LOOPBACK, free_port, wait_for_port

# The CLI beside the interpreter that runs the benchmark (the project's .venv).
PILLARBOX: Final = Path(sys.executable).parent / "pillarbox"
# How long `serve` may take to finish after SIGTERM before it is killed.
STOP_TIMEOUT: Final = 20.0
# How long one administrative command (domain add, user add) may take.
ADMIN_TIMEOUT: Final = 60.0

_CONFIG: Final = """\
hostname = "{domain}"
data_dir = "{data}"

[smtp]
listen = ["{host}:{port}"]
submission = []
submissions = []
processes = {processes}

[pop3]
listen = []
listen_tls = []

[imap]
listen = []
listen_tls = []
"""


def pillarbox_available() -> str | None:
    """None if the pillarbox command can be run, else the reason it cannot."""
    if not PILLARBOX.is_file():
        return f"{PILLARBOX} not found (pip install -e . into the venv)"
    probe = subprocess.run(
        [str(PILLARBOX), "--help"], capture_output=True, check=False, timeout=ADMIN_TIMEOUT
    )
    if probe.returncode != 0:
        return "`pillarbox --help` fails: " + probe.stderr.decode(errors="replace")[-200:]
    return None


@dataclass(slots=True)
class PillarboxServer:
    """`pillarbox serve` with one domain and one user; use as a context manager."""

    workdir: Path | None = None
    port: int = 0
    processes: int = 1  # smtp.processes
    base: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: BinaryIO | None = None

    def __enter__(self) -> Self:
        reason = pillarbox_available()
        if reason is not None:
            raise RuntimeError(reason)
        self.base = Path(tempfile.mkdtemp(prefix="pillarbox-bench-", dir=self.workdir))
        atexit.register(self.stop)
        try:
            self._prepare(self.base)
            self.log = (self.base / "serve.log").open("wb")
            self.proc = subprocess.Popen(
                [str(PILLARBOX), "--config", str(self.config), "serve"],
                stdout=subprocess.DEVNULL,
                stderr=self.log,
            )
            wait_for_port(self.port, proc=self.proc)
        except BaseException as exc:
            tail = self.log_tail()
            self.stop()
            if isinstance(exc, RuntimeError) and tail:
                raise RuntimeError(f"{exc}; server log: {tail}") from exc
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def config(self) -> Path:
        assert self.base is not None
        return self.base / "pillarbox.toml"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def _prepare(self, base: Path) -> None:
        self.port = self.port or free_port()
        self.config.write_text(
            _CONFIG.format(
                domain=BENCH_DOMAIN,
                data=base / "data",
                host=LOOPBACK,
                port=self.port,
                processes=self.processes,
            )
        )
        self._admin(["domain", "add", BENCH_DOMAIN])
        self._admin(["user", "add", BENCH_RCPT, "--password-stdin"], BENCH_PASSWORD + "\n")

    def _admin(self, args: list[str], stdin: str = "") -> None:
        command = [str(PILLARBOX), "--config", str(self.config), *args]
        result = subprocess.run(
            command,
            input=stdin.encode(),
            capture_output=True,
            check=False,
            timeout=ADMIN_TIMEOUT,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise RuntimeError(f"pillarbox {' '.join(args)} failed: {detail[-300:]}")

    def mailbox_summary(self) -> str:
        """What `pillarbox mailbox list` says about the bench recipient (or why it failed)."""
        if self.base is None:
            return ""
        result = subprocess.run(
            [str(PILLARBOX), "--config", str(self.config), "mailbox", "list", BENCH_RCPT],
            capture_output=True,
            check=False,
            timeout=ADMIN_TIMEOUT,
        )
        text = (result.stdout or result.stderr).decode(errors="replace").strip()
        return " | ".join(text.splitlines()[:5])

    def log_tail(self) -> str:
        """The last lines the server wrote to stderr."""
        if self.base is None:
            return ""
        if self.log is not None:
            self.log.flush()
        try:
            return " | ".join((self.base / "serve.log").read_text().splitlines()[-3:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the server and wait (idempotent); SIGKILL if it hangs."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        atexit.unregister(self.stop)
