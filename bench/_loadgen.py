"""A lean asyncio SMTP load generator: N sessions, each sending M messages on one connection.

It speaks raw bytes through an asyncio.Protocol (no smtplib, no StreamReader) so the client
costs far less CPU per message than the servers it measures. With PIPELINING advertised, each
transaction is two round trips (RFC 2920 §3.1): MAIL+RCPT+DATA in one write, then the body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final, cast

from _common import BENCH_RCPT, BENCH_SENDER, MessageTemplate

# Every network wait of the client is bounded.
REPLY_TIMEOUT: Final = 60.0
# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; anything much longer is a fault.
MAX_REPLY_BUFFER: Final = 64 * 1024
EHLO_NAME: Final = b"loadgen.client.test"


class SmtpReplyError(Exception):
    """The server answered with an unexpected reply code."""


class _ReplyProtocol(asyncio.Protocol):
    """Collects SMTP reply codes (the final line of each reply) as they arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.codes: list[int] = []
        self.lines: list[bytes] = []
        self.keep_lines = False
        self._buf = b""
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        start = 0
        while (end := buf.find(b"\r\n", start)) >= 0:
            line = buf[start:end]
            start = end + 2
            if self.keep_lines:
                self.lines.append(line)
            # RFC 5321 §4.2.1: "NNN-" continues a reply, "NNN " or "NNN" ends it.
            if len(line) < 4 or line[3:4] == b" ":
                self.codes.append(int(line[:3]))
        self._buf = buf[start:]
        if len(self._buf) > MAX_REPLY_BUFFER:
            self._fail(SmtpReplyError("reply line too long"))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        self._lost = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done() and len(self.codes) >= self._want:
            self._waiter.set_result(None)

    async def replies(self, count: int) -> list[int]:
        """Wait for `count` complete replies and return their codes."""
        if len(self.codes) < count:
            if self._lost is not None:
                raise self._lost
            self._want = count
            self._waiter = asyncio.get_running_loop().create_future()
            async with asyncio.timeout(REPLY_TIMEOUT):
                await self._waiter
            self._waiter = None
        codes, self.codes = self.codes[:count], self.codes[count:]
        return codes

    def send(self, *chunks: bytes) -> None:
        assert self.transport is not None
        self.transport.writelines(chunks)


@dataclass(slots=True)
class SessionTally:
    """What one session measured."""

    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _StartLine:
    """Sessions connect first, then all start sending at once when `go` is set."""

    expected: int
    arrived: int = 0
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_ready.set()


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """One scenario: where to send, how much, and when to stop."""

    host: str
    port: int
    sessions: int
    messages: int
    template: MessageTemplate
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Aggregate figures of one scenario."""

    accepted: int
    rejected: int
    errors: tuple[str, ...]
    elapsed: float
    latencies: tuple[float, ...]
    payload_bytes: int
    client_cpu: float


async def _greet(proto: _ReplyProtocol) -> None:
    if (await proto.replies(1))[0] != 220:
        raise SmtpReplyError("no 220 greeting")
    proto.keep_lines = True
    proto.send(b"EHLO " + EHLO_NAME + b"\r\n")
    if (await proto.replies(1))[0] != 250:
        raise SmtpReplyError("EHLO refused")
    proto.keep_lines = False


async def _open(plan: LoadPlan) -> tuple[_ReplyProtocol, bool]:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(REPLY_TIMEOUT):
        _, proto = await loop.create_connection(_ReplyProtocol, plan.host, plan.port)
    try:
        await _greet(proto)
    except BaseException:
        if proto.transport is not None:
            proto.transport.close()
        raise
    # RFC 2920 §2: pipeline only if the server advertises PIPELINING.
    pipelining = any(line[4:].upper().startswith(b"PIPELINING") for line in proto.lines)
    proto.lines.clear()
    return proto, pipelining


async def _transaction(
    proto: _ReplyProtocol, pipelining: bool, payload: tuple[bytes, bytes]
) -> bool:
    """One MAIL..DATA transaction; True if the message got its 250 after the final dot."""
    envelope = (
        b"MAIL FROM:<" + BENCH_SENDER.encode() + b">\r\n",
        b"RCPT TO:<" + BENCH_RCPT.encode() + b">\r\n",
        b"DATA\r\n",
    )
    if pipelining:
        proto.send(*envelope)
        codes = await proto.replies(3)
    else:
        codes = []
        for command in envelope:
            proto.send(command)
            codes += await proto.replies(1)
    if codes[2] != 354:
        # RFC 5321 §3.3: without 354 the body must not be sent; start over cleanly.
        proto.send(b"RSET\r\n")
        await proto.replies(1)
        return False
    proto.send(*payload, b".\r\n")
    return (await proto.replies(1))[0] == 250


async def _session(plan: LoadPlan, index: int, start: _StartLine, tally: SessionTally) -> None:
    try:
        proto, pipelining = await _open(plan)
    except (OSError, SmtpReplyError, TimeoutError) as exc:
        tally.errors.append(f"connect: {exc!r}")
        start.arrive()
        return
    start.arrive()
    await start.go.wait()
    deadline = None if plan.duration is None else time.perf_counter() + plan.duration
    clock = time.perf_counter
    try:
        for seq in range(plan.messages):
            if deadline is not None and clock() >= deadline:
                break
            started = clock()
            ok = await _transaction(proto, pipelining, plan.template.wire(index, seq))
            if ok:
                tally.accepted += 1
                tally.latencies.append(clock() - started)
            else:
                tally.rejected += 1
        proto.send(b"QUIT\r\n")
        await proto.replies(1)
    except (OSError, SmtpReplyError, TimeoutError) as exc:
        tally.errors.append(f"session {index}: {exc!r}")
    finally:
        if proto.transport is not None:
            proto.transport.close()


async def run_load(plan: LoadPlan) -> LoadResult:
    """Connect all sessions, then start them together and measure until the last one ends."""
    start = _StartLine(plan.sessions)
    tallies = [SessionTally() for _ in range(plan.sessions)]
    async with asyncio.TaskGroup() as group:
        for index, tally in enumerate(tallies):
            group.create_task(_session(plan, index, start, tally))
        await start.all_ready.wait()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        start.go.set()
    elapsed = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    latencies = sorted(lat for t in tallies for lat in t.latencies)
    accepted = sum(t.accepted for t in tallies)
    payload = sum(len(p) for p in plan.template.wire(0, 0))
    return LoadResult(
        accepted=accepted,
        rejected=sum(t.rejected for t in tallies),
        errors=tuple(err for t in tallies for err in t.errors),
        elapsed=elapsed,
        latencies=tuple(latencies),
        payload_bytes=accepted * payload,
        client_cpu=cpu / elapsed if elapsed > 0 else 0.0,
    )
