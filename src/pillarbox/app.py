"""Wiring: build the store, services and listeners from the config and run them.

`serve` owns the top-level TaskGroup. SIGTERM/SIGINT set the shutdown event: listeners
stop accepting, idle sessions are told 421/-ERR/BYE, a transaction in flight finishes,
then the store commits what is pending and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import ssl
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from pillarbox import log, workers
from pillarbox.auth.authenticator import Authenticator
from pillarbox.auth.passwords import VerifyCache
from pillarbox.auth.throttle import LoginThrottle, ThrottlePolicy
from pillarbox.config import Config
from pillarbox.delivery.bounce import Notifier
from pillarbox.delivery.etrn import EtrnService
from pillarbox.delivery.routing import Router
from pillarbox.delivery.worker import DeliveryWorker
from pillarbox.directory.cache import DEFAULT_TTL, CachedLookups
from pillarbox.directory.resolver import Directory
from pillarbox.imap.service import ImapService, connection_limits
from pillarbox.net.listener import ConnectionCounter, ConnectionLimits, Listener
from pillarbox.net.tls import ensure_self_signed, server_context
from pillarbox.pop3.session import Pop3Service
from pillarbox.smtp.session import ListenerMode, SmtpService
from pillarbox.store.sqlite import SqliteStore

# Store reads and commits run on threads that hold the GIL while they turn rows into
# records; with CPython's default 5 ms switch interval the event loop can wait that long
# for each of them (IMAP throughput halved under 8 clients), while 0.5 ms cost SMTP intake
# a third of its rate in GIL hand-offs (bench/smtp_load.py). 2 ms serves both.
GIL_SWITCH_INTERVAL: Final = 0.002
# How long a graceful shutdown waits for transactions in flight before cutting them.
SHUTDOWN_GRACE: Final = 30.0


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every service shares."""

    config: Config
    store: SqliteStore
    tls: ssl.SSLContext
    directory: Directory
    authenticator: Authenticator
    shutdown: asyncio.Event


def tls_context(config: Config) -> ssl.SSLContext:
    if config.tls.certificate:
        from pathlib import Path

        return server_context(Path(config.tls.certificate), Path(config.tls.key))
    cert, key = ensure_self_signed(config.data_dir, config.hostname)
    return server_context(cert, key)


def _start_delivery(runtime: Runtime, tasks: asyncio.TaskGroup) -> DeliveryWorker:
    """Run the outbound queue worker until shutdown."""
    worker = DeliveryWorker(runtime.config, runtime.store, runtime.directory)
    tasks.create_task(worker.run(runtime.shutdown), name="delivery")
    return worker


def _smtp_service(
    runtime: Runtime, etrn: EtrnService | None, notifier: Notifier | None
) -> SmtpService:
    service = SmtpService(
        runtime.config,
        runtime.store,
        runtime.directory,
        runtime.authenticator,
        runtime.tls,
        runtime.shutdown,
    )
    # ETRN (RFC 1985) wakes the queue worker; the notifier sends NOTIFY=SUCCESS DSNs.
    service.etrn = etrn
    service.notifier = notifier
    return service


def _smtp_listeners(
    runtime: Runtime,
    tasks: asyncio.TaskGroup,
    service: SmtpService,
    sockets: Sequence[workers.SmtpSocket] | None = None,
) -> list[Listener]:
    """A listener per configured SMTP address, or per socket a worker process was given."""
    config = runtime.config.smtp
    counter = ConnectionCounter(
        ConnectionLimits(config.max_connections_per_ip, config.max_connections)
    )
    if sockets is None:
        sockets = [
            workers.SmtpSocket(mode, address, None)
            for mode, address in workers.smtp_plan(runtime.config)
        ]
    return [
        Listener(
            f"smtp-{plan.mode.value}",
            plan.address,
            service.handler(plan.mode),
            service.refuse,
            counter,
            tasks,
            tls=runtime.tls if plan.mode is ListenerMode.SUBMISSIONS else None,
            sock=plan.sock,
        )
        for plan in sockets
    ]


def _imap_listeners(runtime: Runtime, tasks: asyncio.TaskGroup) -> list[Listener]:
    config = runtime.config.imap
    service = ImapService(
        runtime.config, runtime.store, runtime.authenticator, runtime.tls, runtime.shutdown
    )
    counter = ConnectionCounter(connection_limits(runtime.config))
    plan = [("imap", config.listen, None), ("imaps", config.listen_tls, runtime.tls)]
    return [
        Listener(
            name,
            address,
            service.handler(implicit_tls is not None),
            service.refuse,
            counter,
            tasks,
            tls=implicit_tls,
        )
        for name, addresses, implicit_tls in plan
        for address in addresses
    ]


def _pop3_listeners(runtime: Runtime, tasks: asyncio.TaskGroup) -> list[Listener]:
    config = runtime.config.pop3
    service = Pop3Service(
        runtime.config, runtime.store, runtime.authenticator, runtime.tls, runtime.shutdown
    )
    counter = ConnectionCounter(
        ConnectionLimits(config.max_connections_per_ip, config.max_connections)
    )
    plan = [("pop3", config.listen, None), ("pop3s", config.listen_tls, runtime.tls)]
    return [
        Listener(
            name,
            address,
            service.handler(implicit_tls is not None),
            service.refuse,
            counter,
            tasks,
            tls=implicit_tls,
        )
        for name, addresses, implicit_tls in plan
        for address in addresses
    ]


def _runtime(config: Config, store: SqliteStore, shutdown: asyncio.Event) -> Runtime:
    return Runtime(
        config=config,
        store=store,
        tls=tls_context(config),
        directory=Directory(
            CachedLookups(store),
            postmaster=config.postmaster or None,
            resolution_ttl=DEFAULT_TTL,
        ),
        authenticator=Authenticator(
            store,
            VerifyCache(),
            LoginThrottle(ThrottlePolicy(failure_delay=config.auth.failure_delay)),
        ),
        shutdown=shutdown,
    )


@contextlib.contextmanager
def _signals(shutdown: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set the shutdown event while the block runs."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.set)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def run(config: Config, started: asyncio.Event | None = None) -> None:
    """Run every configured listener until the shutdown event is set."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.database_path)
    await store.open()
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    pool: workers.WorkerPool | None = None
    try:
        with _signals(shutdown), contextlib.suppress(TimeoutError):
            runtime = _runtime(config, store, shutdown)
            async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as tasks:
                worker = _start_delivery(runtime, tasks)
                listeners = _pop3_listeners(runtime, tasks) + _imap_listeners(runtime, tasks)
                if config.smtp.processes > 1:
                    pool = workers.WorkerPool(config, store.publish, worker.wake)
                    await pool.start(tasks)
                else:
                    etrn = EtrnService(config, store, worker.router, worker.wake)
                    service = _smtp_service(runtime, etrn, worker.notifier)
                    listeners = _smtp_listeners(runtime, tasks, service) + listeners
                for listener in listeners:
                    await listener.start()
                # What startup made (modules, config, services) lives as long as the
                # process: no collection needs to scan it again.
                gc.freeze()
                log.event("ready", hostname=config.hostname, listeners=len(listeners))
                if started is not None:
                    started.set()
                await shutdown.wait()
                log.event("shutdown", phase="stop-accepting")
                for listener in listeners:
                    listener.close()
                if pool is not None:
                    tasks.create_task(pool.stop(SHUTDOWN_GRACE))
                # Sessions finish their transactions; whatever still runs then is cut.
                deadline.reschedule(loop.time() + SHUTDOWN_GRACE)
    finally:
        if pool is not None:
            pool.kill()
        await store.close()
        log.event("shutdown", phase="done")


async def run_smtp_worker(config: Config, channel: workers.WorkerChannel) -> None:
    """An SMTP worker process (smtp.processes > 1): accept on the sockets it was given
    until SIGTERM or until the main process goes away."""
    await channel.open()
    store = SqliteStore(config.database_path, on_commit=channel.send_changes)
    await store.open()
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        with _signals(shutdown), contextlib.suppress(TimeoutError):
            runtime = _runtime(config, store, shutdown)
            async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as tasks:
                etrn = EtrnService(
                    config, store, Router(config.delivery, config.hostname), channel.send_wake
                )
                notifier = Notifier(store, runtime.directory, config.hostname)
                service = _smtp_service(runtime, etrn, notifier)
                listeners = _smtp_listeners(runtime, tasks, service, channel.sockets)
                for listener in listeners:
                    await listener.start()
                gc.freeze()  # as in run
                channel.send_ready()
                watcher = tasks.create_task(channel.wait_closed(shutdown))
                await shutdown.wait()
                watcher.cancel()
                for listener in listeners:
                    listener.close()
                deadline.reschedule(loop.time() + SHUTDOWN_GRACE)
    finally:
        await store.close()
        channel.close()


def serve(config: Config) -> int:
    """`pillarbox serve`: run until SIGTERM/SIGINT; returns the exit code."""
    log.setup()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    failures: list[BaseException] = []
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(run(config))
        else:
            uvloop.run(run(config))
    except* (OSError, workers.WorkerError) as group:  # a port taken, a worker that failed
        failures.extend(group.exceptions)
    for failure in failures:
        log.event("fatal", error=str(failure))
    return 1 if failures else 0
