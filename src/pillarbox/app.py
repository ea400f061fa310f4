"""Wiring: build the store, services and listeners from the config and run them.

`serve` owns the top-level TaskGroup. SIGTERM/SIGINT set the shutdown event: listeners
stop accepting, idle sessions are told 421/-ERR/BYE, a transaction in flight finishes,
then the store commits what is pending and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
from dataclasses import dataclass
from typing import Final

from pillarbox import log
from pillarbox.auth.authenticator import Authenticator
from pillarbox.auth.passwords import VerifyCache
from pillarbox.auth.throttle import LoginThrottle, ThrottlePolicy
from pillarbox.config import Config
from pillarbox.delivery.etrn import EtrnService
from pillarbox.delivery.worker import DeliveryWorker
from pillarbox.directory.cache import CachedLookups
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


def _smtp_listeners(
    runtime: Runtime, tasks: asyncio.TaskGroup, worker: DeliveryWorker | None = None
) -> list[Listener]:
    config = runtime.config.smtp
    service = SmtpService(
        runtime.config,
        runtime.store,
        runtime.directory,
        runtime.authenticator,
        runtime.tls,
        runtime.shutdown,
    )
    if worker is not None:  # ETRN (RFC 1985) wakes the worker; it also sends success DSNs
        service.etrn = EtrnService(runtime.config, runtime.store, worker.router, worker.wake)
        service.notifier = worker.notifier
    counter = ConnectionCounter(
        ConnectionLimits(config.max_connections_per_ip, config.max_connections)
    )
    plan = [
        (ListenerMode.MX, config.listen, None),
        (ListenerMode.SUBMISSION, config.submission, None),
        (ListenerMode.SUBMISSIONS, config.submissions, runtime.tls),
    ]
    listeners = []
    for mode, addresses, implicit_tls in plan:
        for address in addresses:
            listeners.append(
                Listener(
                    f"smtp-{mode.value}",
                    address,
                    service.handler(mode),
                    service.refuse,
                    counter,
                    tasks,
                    tls=implicit_tls,
                )
            )
    return listeners


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


async def run(config: Config, started: asyncio.Event | None = None) -> None:
    """Run every configured listener until the shutdown event is set."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.database_path)
    await store.open()
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.set)
    try:
        runtime = Runtime(
            config=config,
            store=store,
            tls=tls_context(config),
            directory=Directory(CachedLookups(store), postmaster=config.postmaster or None),
            authenticator=Authenticator(
                store,
                VerifyCache(),
                LoginThrottle(ThrottlePolicy(failure_delay=config.auth.failure_delay)),
            ),
            shutdown=shutdown,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as tasks:
                worker = _start_delivery(runtime, tasks)
                listeners = _smtp_listeners(runtime, tasks, worker)
                listeners += _pop3_listeners(runtime, tasks)
                listeners += _imap_listeners(runtime, tasks)
                for listener in listeners:
                    await listener.start()
                log.event("ready", hostname=config.hostname, listeners=len(listeners))
                if started is not None:
                    started.set()
                await shutdown.wait()
                log.event("shutdown", phase="stop-accepting")
                for listener in listeners:
                    listener.close()
                # Sessions finish their transactions; whatever still runs then is cut.
                deadline.reschedule(loop.time() + SHUTDOWN_GRACE)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await store.close()
        log.event("shutdown", phase="done")


def serve(config: Config) -> int:
    """`pillarbox serve`: run until SIGTERM/SIGINT; returns the exit code."""
    log.setup()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(run(config))
        else:
            uvloop.run(run(config))
    except OSError as error:
        log.event("fatal", error=str(error))
        return 1
    return 0
