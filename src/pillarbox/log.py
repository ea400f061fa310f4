"""One structured line per event: `ts level event key=value ...` on stderr.

Values are quoted when they contain spaces; secrets are never passed here (callers log
account names and outcomes, never passwords or SASL payloads). The event loop only puts
a tuple on a queue; a background thread formats whatever has piled up and writes it with
one call, so a busy server pays one write per burst of events rather than one per line,
and a slow terminal never stalls a session.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
import traceback
from typing import Final, TextIO

DEBUG: Final = logging.DEBUG
INFO: Final = logging.INFO
WARNING: Final = logging.WARNING
ERROR: Final = logging.ERROR

_LEVEL_NAMES: Final = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}
# At most this many lines go into one write, so one burst cannot hold the memory of many.
_MAX_BURST: Final = 1024

# (time, level, event name, fields, traceback text or None); None stops the writer.
_Record = tuple[float, int, str, dict[str, object], str | None]


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def format_fields(event: str, fields: dict[str, object]) -> str:
    parts = [event]
    parts.extend(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
    return " ".join(parts)


def format_record(record: _Record) -> str:
    created, level, name, fields, trace = record
    seconds = int(created)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    micros = int((created - seconds) * 1_000_000)
    line = f"{stamp}.{micros:06d}Z {_LEVEL_NAMES.get(level, 'info')} {format_fields(name, fields)}"
    return line if trace is None else f"{line}\n{trace.rstrip()}"


class _Writer:
    """The background thread that turns queued records into lines on a text stream."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.records: queue.SimpleQueue[_Record | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="pillarbox-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self.records.put(None)
        self._thread.join()

    def _main(self) -> None:
        running = True
        while running:
            burst = [self.records.get()]
            while len(burst) < _MAX_BURST:
                try:
                    burst.append(self.records.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for record in burst:
                if record is None:
                    running = False
                    break
                lines.append(format_record(record))
            if lines:
                self._write("\n".join(lines) + "\n")

    def _write(self, text: str) -> None:
        try:
            self._out.write(text)
            self._out.flush()
        except (OSError, ValueError):  # stderr closed or broken: logging must not kill us
            pass


class _State:
    """Where records go: until setup() only warnings and errors are shown (CLI commands,
    tests) and written directly; `serve` logs INFO through the writer thread."""

    level = WARNING
    writer: _Writer | None = None


def event(name: str, level: int = INFO, **fields: object) -> None:
    """Log one event line, e.g. event("smtp.accept", peer="127.0.0.1", size=2048)."""
    if level >= _State.level:
        _emit((time.time(), level, name, fields, None))


def exception(name: str, **fields: object) -> None:
    """Log an event at error level with the traceback of the exception being handled."""
    if _State.level <= ERROR:
        _emit((time.time(), ERROR, name, fields, traceback.format_exc()))


def _emit(record: _Record) -> None:
    writer = _State.writer
    if writer is not None:
        writer.records.put(record)
    else:
        sys.stderr.write(format_record(record) + "\n")


def setup(level: int = INFO) -> None:
    """Log to stderr from a background thread; lines still queued are written at exit."""
    _State.level = level
    if _State.writer is None:
        _State.writer = _Writer(sys.stderr)
        _State.writer.start()
        atexit.register(_State.writer.stop)
