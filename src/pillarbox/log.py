"""One structured line per event: `ts level event key=value ...` on stderr.

Values are quoted when they contain spaces; secrets are never passed here (callers log
account names and outcomes, never passwords or SASL payloads). Records are formatted and
written by a background thread, so the event loop only enqueues them.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import logging.handlers
import queue
import sys
from typing import Final

LOGGER: Final = logging.getLogger("pillarbox")


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def format_fields(event: str, fields: dict[str, object]) -> str:
    parts = [event]
    parts.extend(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
    return " ".join(parts)


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one event line, e.g. event("smtp.accept", peer="127.0.0.1", size=2048)."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, "%s", _Lazy(name, fields))


class _Lazy:
    """Formats the event's fields only when the writer thread renders the record."""

    __slots__ = ("fields", "name")

    def __init__(self, name: str, fields: dict[str, object]) -> None:
        self.name = name
        self.fields = fields

    def __str__(self) -> str:
        return format_fields(self.name, self.fields)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = f"{stamp} {record.levelname.lower()} {record.getMessage()}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class _QueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread unformatted."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info:  # a traceback is rendered now, while it still exists
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def setup(level: int = logging.INFO) -> None:
    """Log to stderr from a background thread, so a slow terminal never stalls sessions."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    atexit.register(listener.stop)
    LOGGER.handlers[:] = [_QueueHandler(records)]
    LOGGER.setLevel(level)
    LOGGER.propagate = False
