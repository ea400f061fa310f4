"""SMTP worker processes (`smtp.processes` > 1): more cores for mail intake.

One Python process runs one event loop and, because of the GIL, uses about one core.
With `smtp.processes = N` the main process binds the SMTP sockets itself and starts N
worker processes (`python -m pillarbox.workers FD`) that accept on them; the kernel hands
each connection to one worker. A worker has its own event loop, store connections and
group-commit writer; the writers of all processes take turns through the store's write
lock file. The main process keeps IMAP, POP3 and the queue worker, and restarts a worker
that dies.

Each worker talks to the main process over a socket pair (the "channel"):

  main -> worker   one length-prefixed pickle (`Setup`: the config and which inherited
                   descriptors are which listening sockets), then nothing; end of file
                   means the main process is gone, and the worker shuts down gracefully.
  worker -> main   JSON lines: {"ready": 1} once it accepts; {"changes": [[account,
                   mailbox, modseq], ...]} after each commit, so that IMAP IDLE hears of
                   mail a worker stored as of mail stored in-process; {"wake": 1} when
                   ETRN made queue entries due.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox import log
from pillarbox.config import Config, ListenAddress
from pillarbox.smtp.session import ListenerMode, use_session_prefix
from pillarbox.store.api import AccountId, Change, MailboxId, ModSeq

# How long a worker may take from its start to accepting connections.
START_TIMEOUT: Final = 30.0
# A worker that died is started again after this pause (no tight crash loop).
RESTART_DELAY: Final = 1.0
# Bound on one channel line (one commit's change notices); longer ends the channel.
MAX_LINE: Final = 1 << 20
# The setup message's length prefix: 4 octets, network order.
_LENGTH: Final = struct.Struct("!I")

Changes = list[tuple[AccountId, Change]]


@dataclass(frozen=True, slots=True)
class SmtpSocket:
    """One SMTP listening address; `sock` is set when it was bound for worker processes."""

    mode: ListenerMode
    address: ListenAddress
    sock: socket.socket | None


@dataclass(frozen=True, slots=True)
class Setup:
    """What a worker is told at start: its number, the config, its sockets' descriptors."""

    index: int
    config: Config
    sockets: tuple[tuple[ListenerMode, ListenAddress, int], ...]


class WorkerError(RuntimeError):
    """A worker process could not be started."""


def smtp_plan(config: Config) -> list[tuple[ListenerMode, ListenAddress]]:
    """Every configured SMTP address with its listener mode."""
    plan = [
        (ListenerMode.MX, config.smtp.listen),
        (ListenerMode.SUBMISSION, config.smtp.submission),
        (ListenerMode.SUBMISSIONS, config.smtp.submissions),  # implicit TLS (RFC 8314)
    ]
    return [(mode, address) for mode, addresses in plan for address in addresses]


def bind_smtp_sockets(config: Config) -> list[SmtpSocket]:
    """Bind and listen on every configured SMTP address, for the workers to inherit."""
    bound: list[SmtpSocket] = []
    try:
        for mode, address in smtp_plan(config):
            family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
            sock = socket.create_server(
                (address.host, address.port), family=family, backlog=socket.SOMAXCONN
            )
            sock.setblocking(False)
            bound.append(SmtpSocket(mode, address, sock))
            port = sock.getsockname()[1]
            log.event("listen", service=f"smtp-{mode.value}", address=f"{address.host}:{port}")
    except OSError:
        for done in bound:
            assert done.sock is not None
            done.sock.close()
        raise
    return bound


class WorkerPool:
    """The main process's side: start the workers, relay what they report, stop them."""

    def __init__(
        self, config: Config, publish: Callable[[Changes], None], wake: Callable[[], None]
    ) -> None:
        self._config = config
        self._publish = publish
        self._wake = wake
        self._sockets: list[SmtpSocket] = []
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    async def start(self, tasks: asyncio.TaskGroup) -> None:
        """Bind the SMTP sockets and start every worker; returns when all accept."""
        self._sockets = bind_smtp_sockets(self._config)
        count = self._config.smtp.processes
        try:
            await asyncio.gather(*(self._spawn(index, tasks) for index in range(1, count + 1)))
        except (RuntimeError, TimeoutError, OSError) as error:
            self.kill()
            raise WorkerError(f"SMTP workers did not start: {error}") from error

    async def _spawn(self, index: int, tasks: asyncio.TaskGroup) -> None:
        ours, theirs = socket.socketpair()
        inherited = [theirs.fileno()] + [s.sock.fileno() for s in self._sockets if s.sock]
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pillarbox.workers",
                str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=inherited,
            )
        finally:
            theirs.close()
        self._processes[index] = process
        reader, writer = await asyncio.open_connection(sock=ours, limit=MAX_LINE)
        setup = Setup(
            index,
            self._config,
            tuple((s.mode, s.address, s.sock.fileno()) for s in self._sockets if s.sock),
        )
        payload = pickle.dumps(setup)
        writer.write(_LENGTH.pack(len(payload)) + payload)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tasks.create_task(self._relay(index, process, reader, writer, ready, tasks))
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await ready
        except TimeoutError:
            process.kill()  # its relay task sees it end
            raise
        log.event("smtp.worker", index=index, pid=process.pid, state="ready")

    async def _relay(
        self,
        index: int,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ready: asyncio.Future[None],
        tasks: asyncio.TaskGroup,
    ) -> None:
        """Pass on what the worker reports until it ends; restart it unless stopping."""
        try:
            while line := await reader.readline():
                self._handle(json.loads(line), ready)
        except (ValueError, ConnectionError):  # a garbled line or a reset: the worker is bad
            process.kill()
        finally:
            writer.close()
        code = await process.wait()
        if not ready.done():
            ready.set_exception(RuntimeError(f"SMTP worker {index} exited with {code}"))
        if self._stopping:
            return
        log.event("smtp.worker", index=index, pid=process.pid, state="exited", code=code)
        await asyncio.sleep(RESTART_DELAY)
        if not self._stopping:
            try:
                await self._spawn(index, tasks)
            except (RuntimeError, TimeoutError, OSError) as error:  # the others carry on
                log.event("smtp.worker", index=index, state="failed", error=str(error))

    def _handle(self, message: dict[str, object], ready: asyncio.Future[None]) -> None:
        changes = message.get("changes")
        if isinstance(changes, list):
            self._publish([(AccountId(a), Change(MailboxId(m), ModSeq(s))) for a, m, s in changes])
        if message.get("wake"):
            self._wake()
        if message.get("ready") and not ready.done():
            ready.set_result(None)

    async def stop(self, grace: float) -> None:
        """Stop accepting, let the workers finish their transactions, then end them."""
        self._stopping = True
        for bound in self._sockets:
            if bound.sock is not None:
                bound.sock.close()  # the workers hold their own copies until they stop
        for process in self._processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        waits = [process.wait() for process in self._processes.values()]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.gather(*waits)
        self.kill()

    def kill(self) -> None:
        """End every worker still running (the last resort of a shutdown)."""
        self._stopping = True
        for process in self._processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        for bound in self._sockets:
            if bound.sock is not None:
                bound.sock.close()


class WorkerChannel:
    """The worker's side: its sockets, and the reports it sends to the main process."""

    def __init__(self, sock: socket.socket, setup: Setup) -> None:
        self._sock = sock
        self.sockets = [
            SmtpSocket(mode, address, socket.socket(fileno=fd))
            for mode, address, fd in setup.sockets
        ]
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(sock=self._sock)

    def _send(self, message: dict[str, object]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def send_ready(self) -> None:
        self._send({"ready": 1})

    def send_wake(self) -> None:
        self._send({"wake": 1})

    def send_changes(self, changes: Changes) -> None:
        self._send({"changes": [[a, c.mailbox_id, c.modseq] for a, c in changes]})

    async def wait_closed(self, shutdown: asyncio.Event) -> None:
        """Return (setting `shutdown`) when the main process closes the channel or dies."""
        assert self._reader is not None
        with contextlib.suppress(ConnectionError):
            while await self._reader.read(4096):
                pass
        shutdown.set()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for bound in self.sockets:
            if bound.sock is not None:
                bound.sock.close()


def _read_setup(sock: socket.socket) -> Setup:
    header = _read_exactly(sock, _LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    setup = pickle.loads(_read_exactly(sock, length))  # noqa: S301 - our own parent wrote it
    if not isinstance(setup, Setup):
        raise TypeError("the channel did not start with a worker setup")
    return setup


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the main process closed the channel during setup")
        data += chunk
    return bytes(data)


def main() -> int:
    """Entry point of a worker process: `python -m pillarbox.workers CHANNEL_FD`."""
    from pillarbox import app  # the top layer; imported here, where it is run

    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(True)
    setup = _read_setup(sock)
    sock.setblocking(False)
    log.setup()
    sys.setswitchinterval(app.GIL_SWITCH_INTERVAL)
    use_session_prefix(f"w{setup.index}s")
    channel = WorkerChannel(sock, setup)
    try:
        import uvloop
    except ImportError:
        asyncio.run(app.run_smtp_worker(setup.config, channel))
    else:
        uvloop.run(app.run_smtp_worker(setup.config, channel))
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy's: the Setup the main
    # process pickled is pillarbox.workers.Setup, and app uses pillarbox.workers.
    from pillarbox.workers import main as worker_main

    sys.exit(worker_main())
