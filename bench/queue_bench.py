"""Outbound queue benchmark: Pillarbox's queue worker side by side with Postfix's.

N messages (default 10,000, 2 KB each) for rcpt@remote.bench are queued first, while
nothing delivers them; then delivery starts and the script times how long the queue takes
to drain into Postfix's smtp-sink on a loopback port (which accepts and discards), and
prints messages/second and how many connections were used.

  pillarbox  the DeliveryWorker on a private SQLite store, in this process (uvloop when
             installed), with `delivery.smarthost` pointing at the sink: connection reuse,
             pipelining, one store commit per result (group-committed across lanes).
  postfix    a private Postfix instance with `relayhost = [127.0.0.1]:PORT`; the messages
             are injected over SMTP with `defer_transports = smtp`, then released with
             `postfix reload` + `postqueue -f` (its smtp client caches connections).

Run: `.venv/bin/python bench/queue_bench.py [--messages N] [--size 2K] [--target
pillarbox,postfix]`. Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from _common import LOOPBACK, make_message
from _postfix import POSTFIX, PostfixInstance, SmtpSink, postfix_available
from pillarbox.config import Config, DeliveryConfig
from pillarbox.delivery.worker import DeliveryWorker
from pillarbox.directory.resolver import Directory
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore

REMOTE_RCPT: Final = "rcpt@remote.bench"
SENDER: Final = "sender@client.test"
# Messages stored concurrently while queueing (group commit batches them).
QUEUE_CONCURRENCY: Final = 200
# SMTP sessions injecting into Postfix at once.
INJECT_SESSIONS: Final = 8
# How long a run may take before it is reported as incomplete.
DRAIN_TIMEOUT: Final = 600.0
POSTQUEUE: Final = "/usr/sbin/postqueue"
POSTCONF: Final = "/usr/sbin/postconf"


def message(size: int, index: int) -> bytes:
    template = make_message(size)
    first, rest = template.wire(0, index)
    body = first + rest
    return body.replace(b"\r\n..", b"\r\n.")  # stored form: not dot-stuffed


# -- pillarbox ------------------------------------------------------------------------------


async def _queue(store: SqliteStore, count: int, size: int) -> None:
    envelope = api.Envelope(SENDER)
    remote = (api.DsnRecipient(REMOTE_RCPT),)

    async def one(index: int) -> None:
        body = b"Return-Path: <%s>\r\n" % SENDER.encode() + message(size, index)
        await store.deliver(api.Delivery(body, envelope, remote=remote))

    for start in range(0, count, QUEUE_CONCURRENCY):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + QUEUE_CONCURRENCY))))


async def _pillarbox(count: int, size: int, sink_port: int, workdir: Path) -> tuple[float, int]:
    store = SqliteStore(workdir / "pillarbox.sqlite3")
    await store.open()
    try:
        await _queue(store, count, size)
        config = Config(
            hostname="pillarbox.bench",
            data_dir=workdir,
            delivery=DeliveryConfig(smarthost=f"{LOOPBACK}:{sink_port}"),
        )
        worker = DeliveryWorker(config, store, Directory(store))
        started = time.perf_counter()
        while await worker.run_once():
            if time.perf_counter() - started > DRAIN_TIMEOUT:
                break
        elapsed = time.perf_counter() - started
        left = len(await store.list_queue())
    finally:
        await store.close()
    return elapsed, count - left


def run_pillarbox(count: int, size: int, sink_port: int) -> tuple[float, int]:
    workdir = Path(tempfile.mkdtemp(prefix="pillarbox-queue-bench-"))
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(_pillarbox(count, size, sink_port, workdir))
        return uvloop.run(_pillarbox(count, size, sink_port, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- postfix --------------------------------------------------------------------------------


class RelayingPostfix(PostfixInstance):
    """The bench Postfix, relaying everything to the sink, deferring until released."""

    sink_port: int = 0

    def _write_config(self, base: Path) -> None:
        PostfixInstance._write_config(self, base)
        with (base / "conf" / "main.cf").open("a") as main_cf:
            main_cf.write(
                f"relayhost = [{LOOPBACK}]:{RelayingPostfix.sink_port}\n"
                "defer_transports = smtp\n"
                "smtp_tls_security_level = none\n"
                "smtpd_tls_security_level = none\n"
            )

    def queued(self) -> int:
        assert self.base is not None
        total = 0
        for name in ("maildrop", "incoming", "active", "deferred", "hold"):
            folder = self.base / "queue" / name
            if folder.is_dir():
                total += sum(len(files) for _, _, files in _walk(folder))
        return total

    def command(self, *args: str) -> None:
        assert self.base is not None
        conf = str(self.base / "conf")
        subprocess.run([args[0], "-c", conf, *args[1:]], check=True, capture_output=True)


def _walk(folder: Path) -> list[tuple[str, list[str], list[str]]]:
    import os

    return list(os.walk(folder))


def _inject(port: int, count: int, size: int, session: int) -> None:
    with smtplib.SMTP(LOOPBACK, port, timeout=60) as client:
        for index in range(session, count, INJECT_SESSIONS):
            client.sendmail(SENDER, [REMOTE_RCPT], message(size, index))


def run_postfix(count: int, size: int, sink_port: int) -> tuple[float, int]:
    RelayingPostfix.sink_port = sink_port
    with RelayingPostfix() as postfix:
        with ThreadPoolExecutor(INJECT_SESSIONS) as pool:
            list(pool.map(lambda s: _inject(postfix.port, count, size, s), range(INJECT_SESSIONS)))
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while postfix.queued() < count and time.monotonic() < deadline:
            time.sleep(0.2)
        postfix.command(POSTCONF, "-e", "defer_transports =")
        postfix.command(POSTFIX, "reload")
        started = time.perf_counter()
        postfix.command(POSTQUEUE, "-f")
        while postfix.queued() and time.perf_counter() - started < DRAIN_TIMEOUT:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        return elapsed, count - postfix.queued()


# -- main -----------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024 * 1024}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", default="2K")
    parser.add_argument("--target", default="pillarbox,postfix")
    args = parser.parse_args()
    size = parse_size(args.size)
    targets = args.target.split(",")
    runners = {"pillarbox": run_pillarbox, "postfix": run_postfix}
    rates: dict[str, float] = {}
    print(f"queue drain: {args.messages} messages of {args.size} to smtp-sink on {LOOPBACK}")
    with SmtpSink() as sink:
        for target in targets:
            if target == "postfix" and (reason := postfix_available()):
                print(f"  postfix    skipped: {reason}")
                continue
            with contextlib.suppress(KeyboardInterrupt):
                elapsed, delivered = runners[target](args.messages, size, sink.port)
                rates[target] = delivered / elapsed if elapsed else 0.0
                print(
                    f"  {target:<10} {delivered:>6} delivered in {elapsed:7.2f} s"
                    f"  = {rates[target]:8.0f} msg/s"
                )
    if "pillarbox" in rates and rates.get("postfix"):
        print(f"  pillarbox / postfix = {rates['pillarbox'] / rates['postfix']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
