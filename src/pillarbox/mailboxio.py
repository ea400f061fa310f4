"""Reading mbox files and Maildirs, writing mbox: for `pillarbox mailbox import/export`.

mbox follows the mboxrd convention (RFC 4155 and qmail's mbox(5)): a message starts at a
line "From " after a blank line; body lines matching `>*From ` carry one extra '>' on disk.
Messages are stored with CRLF line ends, as everything Pillarbox keeps.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Maildir info flags (https://cr.yp.to/proto/maildir.html) -> IMAP system flags.
MAILDIR_FLAGS: Final = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
# mbox Status / X-Status header letters (as written by mutt and Thunderbird).
MBOX_STATUS_FLAGS: Final = {"R": "\\Seen", "A": "\\Answered", "F": "\\Flagged", "D": "\\Deleted"}

_FROM_LINE = re.compile(rb"^From (\S+)\s+(.*)$")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_NEEDS_QUOTE = re.compile(rb"^(>*From )", re.MULTILINE)
_LINE_END = re.compile(rb"\r?\n")
_STATUS = re.compile(rb"^(X-)?Status:[ \t]*([A-Za-z]*)[ \t]*\r?\n", re.MULTILINE | re.IGNORECASE)


class MailboxFormatError(Exception):
    """The path is neither an mbox file nor a Maildir."""


@dataclass(frozen=True, slots=True)
class ImportedMessage:
    body: bytes  # CRLF line ends
    flags: frozenset[str]
    internaldate: dt.datetime | None


def to_crlf(data: bytes) -> bytes:
    """Normalise every line end (LF or CRLF) to CRLF."""
    return _LINE_END.sub(b"\r\n", data)


def read_messages(path: Path) -> Iterator[ImportedMessage]:
    """Messages of an mbox file or a Maildir (cur/ and new/), oldest first."""
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise MailboxFormatError(f"{path}: a directory but not a Maildir (no cur/ or new/)")
        return _read_maildir(path)
    if not path.is_file():
        raise MailboxFormatError(f"{path}: no such file or directory")
    with path.open("rb") as handle:
        head = handle.read(5)
    if head and head != b"From ":
        raise MailboxFormatError(f"{path}: not an mbox file (does not start with 'From ')")
    return _read_mbox(path)


def _read_maildir(path: Path) -> Iterator[ImportedMessage]:
    files = [f for sub in ("new", "cur") if (path / sub).is_dir() for f in (path / sub).iterdir()]
    files = [f for f in files if f.is_file() and not f.name.startswith(".")]
    files.sort(key=lambda f: (f.stat().st_mtime, f.name))
    for file in files:
        _, _, info = file.name.partition(":2,")
        flags = frozenset(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS)
        stamp = dt.datetime.fromtimestamp(file.stat().st_mtime, dt.UTC)
        yield ImportedMessage(to_crlf(file.read_bytes()), flags, stamp)


def _read_mbox(path: Path) -> Iterator[ImportedMessage]:
    lines: list[bytes] = []
    from_line = b""
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and (not lines or lines[-1].strip() == b""):
                if from_line:
                    yield _mbox_message(from_line, lines)
                from_line, lines = line, []
            else:
                lines.append(line)
    if from_line:
        yield _mbox_message(from_line, lines)


def _mbox_message(from_line: bytes, lines: list[bytes]) -> ImportedMessage:
    if lines and lines[-1].strip() == b"":
        lines = lines[:-1]  # the blank separator line belongs to the mbox, not the message
    raw = _QUOTED_FROM.sub(rb"\1", b"".join(lines).replace(b"\r\n", b"\n"))
    header_end = raw.find(b"\n\n")
    head = raw if header_end < 0 else raw[: header_end + 1]
    flags: set[str] = set()
    for match in _STATUS.finditer(head):
        flags.update(MBOX_STATUS_FLAGS[c] for c in match.group(2).decode().upper() if c in "RAFD")
    if header_end >= 0:
        raw = _STATUS.sub(b"", head) + raw[header_end + 1 :]
    return ImportedMessage(to_crlf(raw), frozenset(flags), _from_line_date(from_line))


def _from_line_date(line: bytes) -> dt.datetime | None:
    match = _FROM_LINE.match(line.rstrip(b"\r\n"))
    if match is None:
        return None
    text = match.group(2).decode("ascii", "replace")
    try:
        stamp = dt.datetime.strptime(" ".join(text.split()[:5]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return stamp.replace(tzinfo=dt.UTC)


def mbox_record(body: bytes, internaldate: dt.datetime, flags: frozenset[str]) -> bytes:
    """One mboxrd record: From_ line, Status header, quoted body with LF ends, blank line."""
    sender = b"MAILER-DAEMON"
    match = re.search(rb"^Return-Path:[ \t]*<([^>\r\n]*)>", body, re.MULTILINE | re.IGNORECASE)
    if match and match.group(1):
        sender = match.group(1).replace(b" ", b"_")
    stamp = internaldate.astimezone(dt.UTC).strftime("%a %b %d %H:%M:%S %Y").encode()
    text = body.replace(b"\r\n", b"\n")
    status = "".join(c for c, f in MBOX_STATUS_FLAGS.items() if f in flags)
    if status:
        text = f"Status: {status}\n".encode() + text
    text = _NEEDS_QUOTE.sub(rb">\1", text)
    if not text.endswith(b"\n"):
        text += b"\n"
    return b"From " + sender + b" " + stamp + b"\n" + text + b"\n"
