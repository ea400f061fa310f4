"""Start the real `pillarbox serve` in a subprocess on free loopback ports, for e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import free_port

PILLARBOX = [sys.executable, "-m", "pillarbox.cli"]
START_TIMEOUT = 20.0

SERVICES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


@dataclass
class Server:
    """A Pillarbox instance in `root`; `ports[service]` is where each listener is."""

    root: Path
    extra: str = ""  # more TOML, appended to the generated config
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.ports = {name: free_port() for name in SERVICES}
        self.data_dir = self.root / "data"
        self.config_path = self.root / "pillarbox.toml"
        self.log_path = self.root / "server.log"
        self.config_path.write_text(self.config_text())

    def config_text(self) -> str:
        p = self.ports
        top, sections = _split_extra(self.extra)
        return f"""hostname = "mx.pillarbox.test"
data_dir = "{self.data_dir}"
{top}
[smtp]
listen = ["127.0.0.1:{p["smtp"]}"]
submission = ["127.0.0.1:{p["submission"]}"]
submissions = ["127.0.0.1:{p["submissions"]}"]
{sections.get("smtp", "")}
[pop3]
listen = ["127.0.0.1:{p["pop3"]}"]
listen_tls = ["127.0.0.1:{p["pop3s"]}"]
{sections.get("pop3", "")}
[imap]
listen = ["127.0.0.1:{p["imap"]}"]
listen_tls = ["127.0.0.1:{p["imaps"]}"]
{sections.get("imap", "")}
[auth]
failure_delay = 0.05
{sections.get("auth", "")}
{
            "".join(
                f"[{k}]{chr(10)}{v}{chr(10)}"
                for k, v in sections.items()
                if k not in ("smtp", "pop3", "imap", "auth")
            )
        }
"""

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [*PILLARBOX, "--config", str(self.config_path), *args],
            input=input.encode() if input is not None else None,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pillarbox {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout.decode()

    def add_user(self, address: str, password: str = "secret", name: str = "") -> None:
        args = ["user", "add", address, "--password-stdin"]
        if name:
            args += ["--name", name]
        self.cli(*args, input=password + "\n")

    def start(self) -> None:
        assert self.process is None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*PILLARBOX, "--config", str(self.config_path), "serve"],
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log_path.read_text()}")
            if b" ready " in self.log_path.read_bytes()[offset:]:
                return
            time.sleep(0.05)
        self.kill()
        raise AssertionError("server did not start in time")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text()


def _split_extra(extra: str) -> tuple[str, dict[str, str]]:
    """Split extra TOML into top-level lines and section bodies keyed by section name."""
    top: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = top
    for line in extra.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1].strip(), [])
        else:
            current.append(line)
    return "\n".join(top), {k: "\n".join(v) for k, v in sections.items()}


def started(root: Path, extra: str = "", users: Sequence[tuple[str, str]] = ()) -> Server:
    server = Server(root, extra)
    server.cli("domain", "add", "pillarbox.test")
    for address, name in users:
        server.add_user(address, name=name)
    server.start()
    return server
