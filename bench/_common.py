"""Shared helpers for the SMTP benchmarks: ports, test messages, statistics, /proc readings.

Everything here talks to 127.0.0.1 only; nothing in bench/ ever targets another address.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOOPBACK: Final = "127.0.0.1"
BENCH_DOMAIN: Final = "bench.test"
BENCH_RCPT: Final = f"rcpt@{BENCH_DOMAIN}"
BENCH_SENDER: Final = "sender@client.test"
BENCH_PASSWORD: Final = "bench-password-not-secret"
# How long a server may take to open its listening port after it was started.
STARTUP_TIMEOUT: Final = 30.0
# RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; the body uses shorter ones.
BODY_LINE_WIDTH: Final = 72
# Every n-th body line starts with "." so the server's dot-unstuffing is exercised.
DOT_LINE_EVERY: Final = 37

_WORDS: Final = (
    "mail",
    "server",
    "queue",
    "message",
    "delivery",
    "mailbox",
    "header",
    "body",
    "pipelining",
    "durable",
    "commit",
    "sender",
    "recipient",
    "envelope",
    "relay",
    "domain",
    "transport",
    "latency",
    "throughput",
    "session",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "with",
    "as",
    "on",
    "be",
    "at",
    "by",
    "this",
    "from",
    "or",
    "an",
)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A pre-generated message: per-message header lines are joined in front of `rest`.

    `rest` holds the remaining headers and the body, already dot-stuffed (RFC 5321 §4.5.2)
    and CRLF-terminated, without the final "." line.
    """

    size: int
    rest: bytes

    def wire(self, session: int, seq: int) -> tuple[bytes, bytes]:
        """Return the DATA payload for one message as two buffers (for writelines)."""
        first = b"Message-ID: <%d.%d.bench@client.test>\r\n" % (seq, session)
        return first, self.rest


def make_message(size: int, seed: int = 1) -> MessageTemplate:
    """Build a realistic message of about `size` octets (as stored, before dot-stuffing)."""
    rng = random.Random(seed)
    headers = (
        f"From: Bench Sender <{BENCH_SENDER}>\r\n"
        f"To: Bench Recipient <{BENCH_RCPT}>\r\n"
        "Subject: Pillarbox load test message\r\n"
        "Date: Thu, 01 Jan 2026 12:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
    ).encode()
    # Message-ID line (added per message) is about 40 octets.
    budget = max(size - len(headers) - 40, 2)
    lines: list[bytes] = []
    used = 0
    while used < budget:
        line = _body_line(rng, min(BODY_LINE_WIDTH, budget - used - 2), len(lines))
        lines.append(line)
        used += len(line) + 2
    body = b"".join(_stuff(line) + b"\r\n" for line in lines)
    return MessageTemplate(size=size, rest=headers + body)


def _body_line(rng: random.Random, width: int, index: int) -> bytes:
    words: list[str] = []
    length = 0
    while length < width:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    text = " ".join(words)[: max(width, 1)].rstrip() or "x"
    if index % DOT_LINE_EVERY == DOT_LINE_EVERY - 1:
        text = "." + text[1:]
    return text.encode()


def _stuff(line: bytes) -> bytes:
    # RFC 5321 §4.5.2: a line that starts with "." gets one more "." on the wire.
    return b"." + line if line.startswith(b".") else line


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float = STARTUP_TIMEOUT, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts connections on 127.0.0.1:port, or raise RuntimeError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s")


def proc_status_kb(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS), or None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM of a process (Linux clear_refs "5"); False if not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def process_tree(root: int) -> list[int]:
    """`root` and every process under it (a server's workers, Dovecot's children), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])  # proc(5): field 4
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU time of every process under `roots`, threads and reaped children included."""
    total = 0
    for root in roots:
        for pid in process_tree(root):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                # proc(5) fields 14-17: utime, stime, and cutime + cstime of reaped
                # children (Dovecot's pop3/imap processes end at QUIT/LOGOUT).
                total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def tree_peak_rss_kb(pid: int) -> int | None:
    """The sum of VmHWM over a process and its descendants, or None if unreadable."""
    peaks = [proc_status_kb(member, "VmHWM") for member in process_tree(pid)]
    known = [peak for peak in peaks if peak is not None]
    return sum(known) if known else None


def reset_tree_peak_rss(pid: int) -> bool:
    """Reset VmHWM of a process and its descendants; False if not permitted."""
    results = [reset_peak_rss(member) for member in process_tree(pid)]  # reset every one
    return all(results)


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path`, from /proc/mounts ("?" if unknown)."""
    best, kind = "", "?"
    target = str(path.resolve())
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))
