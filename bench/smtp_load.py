"""SMTP load benchmark: Pillarbox side by side with Postfix (durable, Maildir) and smtp-sink.

N concurrent sessions each send M messages of S octets over one connection (MAIL, RCPT and
DATA pipelined, RFC 2920), and the script prints accepted messages/s, MB/s and the p50/p99
latency of a transaction (MAIL sent .. 250 after the final dot). With no arguments
(`make bench`) it runs sessions {1, 20} x sizes {2 KB, 100 KB} against each target, all in
one run on 127.0.0.1, and prints Pillarbox's rate as a multiple of Postfix's:

  pillarbox  `pillarbox serve` on a private data_dir; a 250 means committed and fsynced.
  postfix    a private Postfix instance (own config, queue and Maildir in a temp dir); its
             smtpd fsyncs the queue file before 250, the "durable" reference.
  sink       Postfix's smtp-sink, which stores nothing: the ceiling for the client and TCP.

Pillarbox runs with `smtp.processes` = --processes (default: one per CPU, as Postfix runs
as many smtpd processes as it has clients). Peak RSS (VmHWM, reset before each scenario)
is the sum over the Pillarbox process and its SMTP workers, so that "memory flat as
sessions grow" can be read off the table. Use --target HOST:PORT to load a server that is
already running (loopback only).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from _common import (
    LOOPBACK,
    cpu_count,
    filesystem_type,
    make_message,
    percentile,
    reset_tree_peak_rss,
    tree_peak_rss_kb,
)
from _loadgen import LoadPlan, LoadResult, run_load
from _pillarbox import PillarboxServer
from _postfix import PostfixInstance, SmtpSink

TARGETS: Final = ("pillarbox", "postfix", "sink")
DEFAULT_SESSIONS: Final = (1, 20)
DEFAULT_SIZES: Final = ("2K", "100K")
# Each scenario stops starting transactions after this many seconds (bounded run time).
DEFAULT_DURATION: Final = 10.0
# Messages per scenario when --messages is not given, split over the sessions.
DEFAULT_TOTAL_SMALL: Final = 5000
DEFAULT_TOTAL_LARGE: Final = 1000
LARGE_MESSAGE: Final = 16 * 1024
MAX_MESSAGES_PER_SESSION: Final = 1_000_000
# Unmeasured messages sent first, so every server has its processes and caches warm.
WARMUP_MESSAGES: Final = 20
# How long to wait for Postfix to move accepted mail into the Maildir after a scenario.
DEFAULT_DRAIN_TIMEOUT: Final = 120.0
# The durable-rate goal from the issue: Pillarbox at least 3x Postfix in the same run.
GOAL_RATIO: Final = 3.0
_UNITS: Final = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024 * 1024, "MB": 1024 * 1024}


@dataclass(frozen=True, slots=True)
class Running:
    """A started target: where to connect, whose memory to read, what to do after a scenario."""

    name: str
    host: str
    port: int
    pid: int | None = None
    after: Callable[[int], str] | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """One measured scenario."""

    target: str
    sessions: int
    size: int
    result: LoadResult
    peak_rss_kb: int | None
    note: str


def parse_size(text: str) -> int:
    """ "2K", "100KB", "1M" or a plain octet count."""
    stripped = text.strip().upper()
    digits = stripped.rstrip("KMB")
    unit = stripped[len(digits) :]
    if not digits.isdigit() or unit not in _UNITS or int(digits) <= 0:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 2K, 100K, 1M)")
    return int(digits) * _UNITS[unit]


def parse_target(text: str) -> tuple[str, int]:
    """HOST:PORT on a loopback address only (this benchmark never leaves the machine)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"bad target {text!r} (use 127.0.0.1:2525)")
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address")
    return host, int(port)


def positive(text: str) -> int:
    value = int(text)
    if not 0 < value <= MAX_MESSAGES_PER_SESSION:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_MESSAGES_PER_SESSION}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smtp_load.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Default: sessions 1 20, sizes 2K 100K, targets pillarbox postfix sink.",
    )
    parser.add_argument(
        "--target",
        type=parse_target,
        metavar="HOST:PORT",
        help="load an already running server (loopback only) instead",
    )
    parser.add_argument("--pid", type=int, help="with --target: process whose peak RSS to report")
    parser.add_argument(
        "--only", action="append", choices=TARGETS, help="run only this target (repeatable)"
    )
    parser.add_argument(
        "--sessions",
        type=positive,
        nargs="+",
        default=list(DEFAULT_SESSIONS),
        metavar="N",
        help="concurrent sessions per scenario (default: 1 20)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        nargs="+",
        metavar="S",
        default=[parse_size(s) for s in DEFAULT_SIZES],
        help="message sizes, e.g. 2K 100K (default: 2K 100K)",
    )
    parser.add_argument(
        "--messages",
        type=positive,
        metavar="M",
        help=f"messages per session (default: {DEFAULT_TOTAL_SMALL} per "
        f"scenario for small, {DEFAULT_TOTAL_LARGE} for large messages, "
        "split over the sessions)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help="stop starting transactions after this long (default: "
        f"{DEFAULT_DURATION:g}; 0 = no time limit)",
    )
    parser.add_argument(
        "--processes",
        type=positive,
        default=cpu_count(),
        metavar="N",
        help="Pillarbox's smtp.processes (default: the CPU count, here %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the servers keep their data (default: the temp dir)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for Postfix to fill the Maildir after each "
        f"scenario (default: {DEFAULT_DRAIN_TIMEOUT:g})",
    )
    return parser


def messages_per_session(args: argparse.Namespace, sessions: int, size: int) -> int:
    if args.messages is not None:
        return int(args.messages)
    total = DEFAULT_TOTAL_LARGE if size >= LARGE_MESSAGE else DEFAULT_TOTAL_SMALL
    return max(1, total // sessions)


@contextmanager
def start_pillarbox(args: argparse.Namespace) -> Iterator[Running]:
    with PillarboxServer(workdir=args.workdir, processes=args.processes) as server:
        yield Running("pillarbox", LOOPBACK, server.port, server.pid)
        print(f"  pillarbox mailbox list: {server.mailbox_summary() or '(no output)'}")


@contextmanager
def start_postfix(args: argparse.Namespace) -> Iterator[Running]:
    with PostfixInstance(workdir=args.workdir) as postfix:

        def drained(total: int) -> str:
            stored = postfix.wait_delivered(total, args.drain_timeout)
            return f"Maildir holds {stored} of {total} accepted so far"

        yield Running("postfix", LOOPBACK, postfix.port, None, drained)


@contextmanager
def start_sink(args: argparse.Namespace) -> Iterator[Running]:
    with SmtpSink() as sink:
        yield Running("smtp-sink", LOOPBACK, sink.port)


@contextmanager
def existing_target(args: argparse.Namespace) -> Iterator[Running]:
    host, port = args.target
    yield Running("target", host, port, args.pid)


STARTERS: Final[dict[str, Callable[[argparse.Namespace], AbstractContextManager[Running]]]] = {
    "pillarbox": start_pillarbox,
    "postfix": start_postfix,
    "sink": start_sink,
}


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the server uses it too), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def measure(runner: asyncio.Runner, plan: LoadPlan) -> LoadResult:
    return runner.run(run_load(plan))


def run_target(runner: asyncio.Runner, args: argparse.Namespace, target: Running) -> list[Row]:
    """Warm up, then run every (size, sessions) scenario against one started target."""
    rows: list[Row] = []
    warm = make_message(min(args.size))
    warmup = measure(runner, LoadPlan(target.host, target.port, 1, WARMUP_MESSAGES, warm))
    if warmup.accepted == 0:
        detail = warmup.errors[0] if warmup.errors else "every message was rejected"
        print(f"  {target.name}: warm-up failed ({detail}); skipped", flush=True)
        return rows
    total = warmup.accepted
    if target.after is not None:
        target.after(total)
    for size in args.size:
        template = make_message(size)
        for sessions in args.sessions:
            count = messages_per_session(args, sessions, size)
            duration = args.duration if args.duration > 0 else None
            plan = LoadPlan(target.host, target.port, sessions, count, template, duration)
            rss_reset = target.pid is not None and reset_tree_peak_rss(target.pid)
            result = measure(runner, plan)
            peak = None if target.pid is None else tree_peak_rss_kb(target.pid)
            total += result.accepted
            note = "" if rss_reset or target.pid is None else "peak RSS since start"
            if target.after is not None:
                note = target.after(total)
            row = Row(target.name, sessions, size, result, peak, note)
            print(format_row(row), flush=True)
            rows.append(row)
    return rows


HEADER: Final = (
    f"{'target':<10} {'sess':>4} {'size':>6} {'msgs':>6} {'msg/s':>8} {'MB/s':>7} "
    f"{'p50 ms':>7} {'p99 ms':>7} {'fail':>5} {'client':>6} {'peak RSS':>9}  note"
)


def format_row(row: Row) -> str:
    res = row.result
    rate = res.accepted / res.elapsed if res.elapsed > 0 else 0.0
    mbps = res.payload_bytes / res.elapsed / 1e6 if res.elapsed > 0 else 0.0
    p50 = percentile(list(res.latencies), 0.50) * 1000
    p99 = percentile(list(res.latencies), 0.99) * 1000
    failed = res.rejected + len(res.errors)
    rss = "-" if row.peak_rss_kb is None else f"{row.peak_rss_kb / 1024:.1f} MB"
    note = row.note
    if res.errors:
        note = f"{note} {res.errors[0][:60]}".strip()
    return (
        f"{row.target:<10} {row.sessions:>4} {format_size(row.size):>6} {res.accepted:>6} "
        f"{rate:>8.0f} {mbps:>7.1f} {p50:>7.2f} {p99:>7.2f} {failed:>5} "
        f"{res.client_cpu:>6.0%} {rss:>9}  {note}"
    )


def format_size(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)}M"
    if size % 1024 == 0:
        return f"{size // 1024}K"
    return str(size)


def rate(row: Row) -> float:
    return row.result.accepted / row.result.elapsed if row.result.elapsed > 0 else 0.0


def print_ratios(rows: list[Row]) -> None:
    """Pillarbox's rate as a multiple of Postfix's durable rate, per scenario."""
    by_key = {(r.target, r.sessions, r.size): r for r in rows}
    lines = []
    for row in rows:
        if row.target != "pillarbox":
            continue
        postfix = by_key.get(("postfix", row.sessions, row.size))
        if postfix is None or rate(postfix) == 0:
            continue
        ratio = rate(row) / rate(postfix)
        verdict = "meets" if ratio >= GOAL_RATIO else "below"
        lines.append(
            f"  {row.sessions:>2} sessions x {format_size(row.size):>4}: pillarbox "
            f"{rate(row):.0f} msg/s = {ratio:.2f}x postfix ({rate(postfix):.0f} msg/s); "
            f"{verdict} the {GOAL_RATIO:g}x goal"
        )
    if lines:
        print("\nPillarbox / Postfix (durable):")
        print("\n".join(lines))


def print_context(args: argparse.Namespace) -> None:
    workdir = args.workdir.resolve()
    print(
        f"smtp_load: {cpu_count()} CPUs, Python {platform.python_version()}, "
        f"pillarbox smtp.processes = {args.processes}, "
        f"workdir {workdir} ({filesystem_type(workdir)}), client loop "
        f"{type(new_loop()).__module__.split('.')[0]}"
    )
    if filesystem_type(workdir) == "tmpfs":
        print("  warning: workdir is on tmpfs, where fsync costs nothing", flush=True)
    print("msg/s = messages answered 250 per second; latency = MAIL sent .. 250 after the dot;")
    print("client = CPU used by this load generator (near 100% means it is the bottleneck)\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print_context(args)
    print(HEADER, flush=True)
    rows: list[Row] = []
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            if args.target is not None:
                with existing_target(args) as target:
                    rows += run_target(runner, args, target)
                return 0 if rows else 1
            for name in args.only or TARGETS:
                try:
                    with STARTERS[name](args) as target:
                        rows += run_target(runner, args, target)
                except RuntimeError as exc:
                    print(f"  {name}: skipped: {exc}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    print_ratios(rows)
    return 0 if rows else 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
