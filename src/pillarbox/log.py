"""One structured line per event: `ts level event key=value ...` on stderr.

Values are quoted when they contain spaces; secrets are never passed here (callers log
account names and outcomes, never passwords or SASL payloads).
"""

from __future__ import annotations

import datetime as dt
import logging
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
        LOGGER.log(level, format_fields(name, fields))


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = f"{stamp} {record.levelname.lower()} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False
