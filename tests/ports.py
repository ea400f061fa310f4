"""Loopback ports for servers the tests start, chosen so that nothing else takes them.

A port from `bind(("127.0.0.1", 0))` lies in the kernel's ephemeral range, and once the
probe socket closes the kernel may hand the same port to any outgoing connection — fatal
for a test that kills a server and starts it again on its old ports. So ports come from
below the ephemeral range instead, and each pytest-xdist worker draws from its own slice,
so two workers never pick the same one.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

FLOOR = 20000  # lowest port handed out; below it live the usual well-known services


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_slice() -> range:
    ceiling = max(_ephemeral_low(), FLOOR + 2000)
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    width = (ceiling - FLOOR) // max(count, 1)
    start = FLOOR + index * width
    return range(start, start + width)


_SLICE = _worker_slice()
_START = random.randrange(len(_SLICE))  # a fresh run does not reuse the last run's ports first
_NEXT = itertools.cycle([*_SLICE[_START:], *_SLICE[:_START]])


def free_port() -> int:
    """A loopback TCP port outside the ephemeral range, free now and private to this worker."""
    for _ in range(len(_SLICE)):
        port = next(_NEXT)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_SLICE.start}-{_SLICE.stop - 1}")
