"""IMAP benchmark: Pillarbox side by side with Dovecot (dovecot-imapd) on the same mail.

For each mailbox size (default 1,000 and 100,000 messages of ~3 KB, 95% read) both servers
get the same messages in INBOX, then:

  select   one client SELECTs the mailbox repeatedly: median and p99 (goal: < 100 ms at
           100,000 messages);
  mix      N concurrent clients (default 8) run a realistic mix for S seconds (SELECT,
           FETCH headers of the newest 50, FETCH a body, STORE flags, SEARCH UNSEEN,
           APPEND, EXPUNGE, IDLE): operations/second, p99 latency per operation, and
           operations per CPU-second of the server's processes (goal: within 2x of
           Dovecot per core);
  idle     K connections log in, SELECT and IDLE (default 1,000 and 10,000; Dovecot, one
           process per connection, only up to --dovecot-idle): server memory (PSS) per
           idle connection (goal: 10,000 under 500 MB), and how fast an APPEND reaches
           an idler as EXISTS (goal: 100 ms).

  pillarbox  `pillarbox serve` on a private data_dir, filled through the store API
             (concurrent deliveries, parse cache included, as SMTP delivery does).
  dovecot    a throw-away Dovecot (own config, base_dir and Maildir in a temp dir), imap
             only, on a loopback port; plaintext login allowed there.

Run: `.venv/bin/python bench/imap_bench.py [--sizes 1000,100000] [--clients 8]
[--seconds 10] [--idle 1000,10000] [--dovecot-idle 1000] [--target pillarbox,dovecot]`.
Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import pwd
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from _common import (
    BENCH_DOMAIN,
    BENCH_PASSWORD,
    LOOPBACK,
    free_port,
    percentile,
    process_tree,
    tree_cpu_seconds,
    wait_for_port,
)
from _imapload import MIX, Client, Worker, run_mix, tidy
from pillarbox.auth.passwords import hash_password
from pillarbox.mime.cache import dump_tree
from pillarbox.mime.parts import parse
from pillarbox.store.api import Delivery, Envelope, LocalTarget
from pillarbox.store.sqlite import SqliteStore

PILLARBOX: Final = Path(sys.executable).parent / "pillarbox"
DOVECOT: Final = Path("/usr/sbin/dovecot")
DOVEADM: Final = "/usr/bin/doveadm"
# Dovecot's mailbox format: "mdbox" (what Dovecot recommends for big mailboxes; Maildir with
# 100,000 files slows every change down to seconds) or "maildir" (set IMAP_BENCH_DOVECOT).
DOVECOT_FORMAT: Final = os.environ.get("IMAP_BENCH_DOVECOT", "mdbox")
USER: Final = f"imap@{BENCH_DOMAIN}"
TARGETS: Final = ("pillarbox", "dovecot")
FILL_BATCH: Final = 500  # concurrent deliveries per group commit while filling
SELECT_REPEATS: Final = 20
SEEN_FRACTION: Final = 0.95
# Idle connections opened at once. The first login of a burst runs argon2 in every
# connection at the same time (the verify cache fills only when one finishes), so the
# burst is kept small and one login warms the cache before it.
LOGIN_CONCURRENCY: Final = 50
STOP_TIMEOUT: Final = 20.0

_PILLARBOX_CONFIG: Final = """\
hostname = "{domain}"
data_dir = "{data}"
[smtp]
listen = []
submission = []
submissions = []
[pop3]
listen = []
listen_tls = []
[imap]
listen = ["{host}:{port}"]
listen_tls = []
# Every bench connection comes from 127.0.0.1: the idle run opens up to 10,000 of them
# plus a writer, above the per-address default.
max_connections_per_ip = 20000
"""

_DOVECOT_CONFIG: Final = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
info_log_path = {tmp}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = {location}
default_process_limit = 12000
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
protocol imap {{
  mail_max_userip_connections = 12000
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
  service_count = 0
  process_min_avail = 2
}}
service imap {{
  process_limit = 12000
}}
service anvil {{
  chroot =
  client_limit = 30000
}}
"""


# -- the mail ------------------------------------------------------------------------------


def corpus(count: int) -> list[tuple[bytes, bool]]:
    """`count` messages of ~3 KB and whether each is read (same for both servers)."""
    rng = random.Random(count)
    words = ("mailbox", "server", "client", "folder", "message", "flag", "search", "idle")
    out = []
    for n in range(1, count + 1):
        body = "\r\n".join(
            " ".join(rng.choice(words) for _ in range(12)) for _ in range(40)
        ).encode()
        head = (
            f"From: Sender {n % 97} <s{n % 97}@remote.test>\r\nTo: <{USER}>\r\n"
            f"Subject: Bench message {n} {rng.choice(words)}\r\n"
            f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{n}.bench@remote.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        ).encode()
        out.append((head + body + b"\r\n", rng.random() < SEEN_FRACTION))
    return out


def small_message() -> bytes:
    return (
        f"From: <bench@remote.test>\r\nTo: <{USER}>\r\nSubject: appended\r\n\r\n"
        + "An appended message.\r\n" * 20
    ).encode()


# -- the servers ---------------------------------------------------------------------------


async def fill_pillarbox(data: Path, messages: list[tuple[bytes, bool]]) -> None:
    store = SqliteStore(data / "pillarbox.sqlite3")
    await store.open()
    try:
        await store.add_domain(BENCH_DOMAIN)
        account = await store.add_account(USER, hash_password(BENCH_PASSWORD))
        when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        for start in range(0, len(messages), FILL_BATCH):
            batch = messages[start : start + FILL_BATCH]
            await asyncio.gather(
                *(
                    store.deliver(
                        Delivery(
                            body=body,
                            envelope=Envelope(sender=""),
                            local=(
                                LocalTarget(
                                    account.id, flags=frozenset({"\\Seen"} if seen else ())
                                ),
                            ),
                            received_at=when,
                            parsed=dump_tree(parse(body)),
                        )
                    )
                    for body, seen in batch
                )
            )
    finally:
        await store.close()


@contextlib.contextmanager
def pillarbox(messages: list[tuple[bytes, bool]], work: Path) -> Iterator[tuple[int, list[int]]]:
    port = free_port()
    config = work / "pillarbox.toml"
    data = work / "data"
    data.mkdir()
    config.write_text(
        _PILLARBOX_CONFIG.format(domain=BENCH_DOMAIN, data=data, host=LOOPBACK, port=port)
    )
    asyncio.run(fill_pillarbox(data, messages))
    with (work / "serve.log").open("wb") as log:
        profile = os.environ.get("IMAP_BENCH_PROFILE")  # a path: run the server under cProfile
        prefix = (
            [sys.executable, "-m", "cProfile", "-o", profile, str(PILLARBOX)]
            if profile
            else [str(PILLARBOX)]
        )
        proc = subprocess.Popen([*prefix, "--config", str(config), "serve"], stdout=log, stderr=log)
        try:
            wait_for_port(port, proc=proc)
            yield port, [proc.pid]
        finally:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def fill_maildir(path: Path, messages: list[tuple[bytes, bool]], owner: pwd.struct_passwd) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time()) - len(messages)
    for n, (body, seen) in enumerate(messages, 1):
        name = f"{stamp + n}.M{n}P1.bench:2,{'S' if seen else ''}"
        (path / "cur" / name).write_bytes(body)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, owner.pw_uid, owner.pw_gid)
    os.chown(path, owner.pw_uid, owner.pw_gid)


@contextlib.contextmanager
def dovecot(messages: list[tuple[bytes, bool]], work: Path) -> Iterator[tuple[int, list[int]]]:
    """Dovecot with the messages in FORMAT (mdbox: its format for large mailboxes)."""
    if os.geteuid() == 0:
        mail_user = pwd.getpwnam("nobody")
        login_user, internal_user = "dovenull", "dovecot"
    else:
        mail_user = pwd.getpwuid(os.getuid())
        login_user = internal_user = mail_user.pw_name
    tmp = Path(tempfile.mkdtemp(prefix="pillarbox-imapbench-dovecot-"))
    tmp.chmod(0o711)
    try:
        for sub in ("run", "state", "mail", "home"):
            (tmp / sub).mkdir()
        for sub in ("mail", "home"):
            shutil.chown(tmp / sub, mail_user.pw_uid, mail_user.pw_gid)
        fill_maildir(tmp / "mail" / USER, messages, mail_user)
        port = free_port()
        config = tmp / "dovecot.conf"
        maildir = f"maildir:{tmp}/mail/%u"
        location = maildir if DOVECOT_FORMAT == "maildir" else f"mdbox:{tmp}/mdbox/%u"
        config.write_text(
            _DOVECOT_CONFIG.format(
                tmp=tmp, host=LOOPBACK, port=port, password=BENCH_PASSWORD, location=location,
                uid=mail_user.pw_uid, gid=mail_user.pw_gid,
                login_user=login_user, internal_user=internal_user,
            )
        )  # fmt: skip
        subprocess.run([str(DOVECOT), "-c", str(config)], check=True)
        try:
            wait_for_port(port)
            if DOVECOT_FORMAT != "maildir":  # doveadm needs the running auth service
                (tmp / "mdbox").mkdir()
                shutil.chown(tmp / "mdbox", mail_user.pw_uid, mail_user.pw_gid)
                source = maildir.replace("%u", USER)
                command = [DOVEADM, "-c", str(config), "import", "-u", USER, source, "", "ALL"]
                subprocess.run(command, check=True)
            yield port, [master_pid(config)]
        finally:
            subprocess.run([str(DOVECOT), "-c", str(config), "stop"], check=False)
            pidfile = tmp / "run" / "master.pid"
            deadline = time.monotonic() + STOP_TIMEOUT
            while pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def master_pid(config: Path) -> int:
    """The Dovecot master started with this config (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv and argv[0].endswith(b"dovecot") and str(config).encode() in argv:
                    return int(entry.name)
    raise RuntimeError("dovecot master process not found")


def memory_kb(roots: list[int]) -> int:
    """Proportional set size of every process under `roots` (shared pages split)."""
    total = 0
    for root in roots:
        for pid in process_tree(root):
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
    return total


# -- the measurements ----------------------------------------------------------------------


async def measure_select(port: int) -> tuple[float, float, float]:
    """(first SELECT after start, median, p99) in seconds."""
    client = await Client.connect(port)
    await client.command(f'LOGIN "{USER}" "{BENCH_PASSWORD}"')
    start = time.perf_counter()
    await client.command("SELECT INBOX")
    cold = time.perf_counter() - start
    times = []
    for _ in range(SELECT_REPEATS):
        start = time.perf_counter()
        await client.command("SELECT INBOX")
        times.append(time.perf_counter() - start)
    await client.command("LOGOUT")
    client.close()
    times.sort()
    return cold, statistics.median(times), percentile(times, 0.99)


async def measure_mix(
    port: int, clients: int, seconds: float, base: int, roots: list[int], only: frozenset[str]
) -> tuple[list[Worker], float]:
    """The workers (with their latencies) and the server CPU seconds the mix used."""
    workers = []
    for n in range(clients):
        client = await Client.connect(port)
        await client.login_select(USER, BENCH_PASSWORD)
        workers.append(Worker(client, random.Random(n), base, small_message()))
    deadline = time.perf_counter() + seconds
    # Read CPU while every connection is open: Dovecot's imap processes end at LOGOUT.
    before = tree_cpu_seconds(roots)
    await asyncio.gather(*(run_mix(worker, deadline, only) for worker in workers))
    used = tree_cpu_seconds(roots) - before
    await asyncio.gather(*(tidy(worker) for worker in workers))
    for worker in workers:
        await worker.client.command("LOGOUT")
        worker.client.close()
    return workers, used


async def measure_idle(port: int, count: int, roots: list[int]) -> tuple[float, float]:
    """(KB per idle connection, ms until an APPEND shows as EXISTS to an idler)."""
    warm = await Client.connect(port)
    await warm.login_select(USER, BENCH_PASSWORD)
    await warm.command("LOGOUT")
    warm.close()
    await asyncio.sleep(0.5)
    before = memory_kb(roots)
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def one() -> tuple[Client, bytes]:
        async with gate:
            client = await Client.connect(port)
            await client.login_select(USER, BENCH_PASSWORD)
            return client, await client.start_idle()

    idlers = await asyncio.gather(*(one() for _ in range(count)))
    await asyncio.sleep(1.0)
    after = memory_kb(roots)
    writer = await Client.connect(port)
    await writer.command(f'LOGIN "{USER}" "{BENCH_PASSWORD}"')
    watcher = idlers[-1][0]
    start = time.perf_counter()
    uid = await writer.append("INBOX", "\\Seen", small_message())
    while b"EXISTS" not in await watcher.line():
        pass
    push_ms = (time.perf_counter() - start) * 1000
    for client, _ in idlers:
        client.writer.write(b"DONE\r\n" + b"z LOGOUT\r\n")
        client.close()
    await writer.command("SELECT INBOX")
    await writer.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
    await writer.command(f"UID EXPUNGE {uid}")
    writer.close()
    return (after - before) / count, push_ms


def report_mix(name: str, workers: list[Worker], seconds: float, cpu: float) -> None:
    total = sum(len(v) for w in workers for v in w.latencies.values())
    every = sorted(x for w in workers for v in w.latencies.values() for x in v)
    per_cpu = total / cpu if cpu else 0.0
    print(
        f"  {name:9} mix: {total / seconds:8.0f} ops/s"
        f"  p99 {percentile(every, 0.99) * 1000:7.1f} ms"
        f"  server CPU {cpu:5.1f} s -> {per_cpu:7.0f} ops per CPU-second"
    )
    for op, _ in MIX:
        values = sorted(x for w in workers for x in w.latencies.get(op, []))
        if values:
            print(
                f"      {op:14} n={len(values):6}"
                f"  median {statistics.median(values) * 1000:7.2f} ms"
                f"  p99 {percentile(values, 0.99) * 1000:7.2f} ms"
            )


def run_target(target: str, size: int, args: argparse.Namespace, work: Path) -> None:
    messages = corpus(size)
    start = time.perf_counter()
    starter = pillarbox if target == "pillarbox" else dovecot
    with starter(messages, work) as (port, roots):
        print(f"  {target:9} filled {size} messages in {time.perf_counter() - start:.1f} s")
        cold, median, p99 = asyncio.run(measure_select(port))
        print(
            f"  {target:9} SELECT: first {cold * 1000:.1f} ms (after start),"
            f" then median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
        )
        mix = measure_mix(port, args.clients, args.seconds, size, roots, args.ops)
        workers, cpu = asyncio.run(mix)
        report_mix(target, workers, args.seconds, cpu)
        if size == min(args.sizes):
            limit = args.dovecot_idle if target == "dovecot" else max(args.idle, default=0)
            for count in (c for c in args.idle if c <= limit):
                per_conn, push = asyncio.run(measure_idle(port, count, roots))
                print(
                    f"  {target:9} idle {count:6} connections: {per_conn:7.1f} KB each "
                    f"({per_conn * count / 1024:7.1f} MB), APPEND -> EXISTS in {push:.1f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", default="1000,10000")
    parser.add_argument("--dovecot-idle", type=int, default=1000)
    parser.add_argument("--target", default=",".join(TARGETS))
    parser.add_argument(
        "--ops", default="", help="run only these operations of the mix (comma-separated)"
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.idle = [int(s) for s in args.idle.split(",") if s and int(s) > 0]
    args.ops = frozenset(s for s in args.ops.split(",") if s)
    unknown = args.ops - {name for name, _ in MIX}
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    targets = [t for t in args.target.split(",") if t]
    if "dovecot" in targets and not DOVECOT.exists():
        print("dovecot not installed (Debian dovecot-imapd): skipping it")
        targets.remove("dovecot")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers inherit it
    print(f"IMAP bench: {args.clients} clients, {args.seconds:.0f} s mix, {os.cpu_count()} CPUs")
    for size in args.sizes:
        print(f"mailbox of {size} messages")
        for target in targets:
            with tempfile.TemporaryDirectory(prefix="pillarbox-imapbench-") as work:
                run_target(target, size, args, Path(work))
    del soft


if __name__ == "__main__":
    main()
