"""`pillarbox sendmail`: sendmail(8) for programs that send mail through the local server.

The message is read from standard input and written into the store directly, through the
same path an SMTP session takes (the directory resolves each recipient; local ones get
the message in their INBOX, remote ones go into the queue that `pillarbox serve` delivers).
No listener is needed and no relay permission: whoever may run this command may already
read the store. Exit codes follow sysexits(3), as sendmail's do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import getpass
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from pillarbox.config import Config
from pillarbox.directory.model import LocalMailbox, Unknown, targets_of
from pillarbox.directory.resolver import Directory
from pillarbox.mime.address import mailboxes
from pillarbox.mime.headers import HeaderField, split_fields
from pillarbox.smtp import trace
from pillarbox.store import api
from pillarbox.store.sqlite import SqliteStore

# sysexits(3)
EX_OK: Final = 0
EX_USAGE: Final = 64
EX_DATAERR: Final = 65
EX_NOUSER: Final = 67
EX_SOFTWARE: Final = 70
EX_TEMPFAIL: Final = 75

_LINE_END_RE: Final = re.compile(rb"\r\n|\r|\n")
_HEADER_END_RE: Final = re.compile(rb"\r\n\r\n")
_RECIPIENT_FIELDS: Final = (b"to", b"cc", b"bcc")  # sendmail -t


class SendmailError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Submission:
    sender: str
    recipients: tuple[str, ...]
    body: bytes  # CRLF line ends, Bcc removed, missing From/Date/Message-ID added


def read_message(stream: BinaryIO, *, ignore_dots: bool) -> bytes:
    """Read stdin with CRLF line ends; without -i a line holding only "." ends it."""
    data = _LINE_END_RE.sub(b"\r\n", stream.read())
    if not ignore_dots:
        if data.startswith(b".\r\n") or data == b".":
            return b""
        end = data.find(b"\r\n.\r\n")
        if end >= 0:
            data = data[: end + 2]
        elif data.endswith(b"\r\n."):
            data = data[:-1]
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _header(data: bytes) -> tuple[list[HeaderField], int]:
    """The header fields and where the body starts (its blank line); none if not a header."""
    match = _HEADER_END_RE.search(data)
    end = match.start() + 2 if match else len(data)
    fields = split_fields(data, 0, end)
    if not fields or not fields[0].name:  # text without a header: all of it is body
        return [], 0
    return fields, end


def prepare(
    data: bytes, recipients: Sequence[str], sender: str, config: Config, *, from_headers: bool
) -> Submission:
    """-t: add To/Cc/Bcc addresses and drop Bcc; add the header fields a submission needs."""
    fields, end = _header(data)
    wanted = list(recipients)
    if from_headers:
        for field in fields:
            if field.name in _RECIPIENT_FIELDS:
                wanted += [a.addr_spec for a in mailboxes(field.value) if a.host]
    # Bcc never goes out (RFC 5322 §3.6.3).
    kept = b"".join(data[f.start : f.end] for f in fields if f.name != b"bcc")
    names = {f.name for f in fields}
    added = b""
    if b"from" not in names:
        added += f"From: <{sender}>\r\n".encode()
    if b"date" not in names:  # RFC 5322 §3.6: Date and From are required
        added += f"Date: {email.utils.format_datetime(dt.datetime.now(dt.UTC))}\r\n".encode()
    if b"message-id" not in names:
        added += f"Message-ID: <{secrets.token_hex(12)}@{config.hostname}>\r\n".encode()
    rest = data[end:] if fields else data
    body = added + kept + (rest if rest.startswith(b"\r\n") else b"\r\n" + rest)
    unique = tuple(dict.fromkeys(r.strip() for r in wanted if r.strip()))
    return Submission(sender, unique, body)


async def submit(config: Config, submission: Submission) -> None:
    """Resolve the recipients and store the message in one transaction, like SMTP does."""
    store = SqliteStore(config.database_path)
    await store.open()
    try:
        directory = Directory(store, postmaster=config.postmaster or None)
        local: dict[api.AccountId, api.LocalTarget] = {}
        remote: dict[str, api.DsnRecipient] = {}
        for address in submission.recipients:
            resolution = await directory.resolve_recipient(address)
            if isinstance(resolution, Unknown):
                raise SendmailError(f"{address}: {resolution.reason}", EX_NOUSER)
            for target in targets_of(resolution):
                if isinstance(target, LocalMailbox):
                    local.setdefault(target.account_id, api.LocalTarget(target.account_id))
                else:
                    remote.setdefault(target.address, api.DsnRecipient(target.address))
        body = trace.return_path_header(submission.sender) + _received(config) + submission.body
        eight_bit = not submission.body.isascii()
        envelope = api.Envelope(submission.sender, body="8BITMIME" if eight_bit else "7BIT")
        delivery = api.Delivery(body, envelope, tuple(local.values()), tuple(remote.values()))
        await store.deliver(delivery)
    finally:
        await store.close()


def _received(config: Config) -> bytes:
    user = getpass.getuser()
    stamp = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    return (
        f"Received: by {config.hostname} (Pillarbox sendmail, uid {user})\r\n\t"
        f"id {secrets.token_hex(8).upper()}; {stamp}\r\n"
    ).encode()


def default_sender(config: Config) -> str:
    return f"{getpass.getuser()}@{config.hostname}"


def run(
    config: Config,
    recipients: Sequence[str],
    *,
    sender: str | None,
    from_headers: bool,
    ignore_dots: bool,
    stdin: BinaryIO | None = None,
) -> int:
    """The whole command; returns a sysexits(3) code and prints errors to stderr."""
    try:
        data = read_message(stdin or sys.stdin.buffer, ignore_dots=ignore_dots)
        submission = prepare(
            data, recipients, sender or default_sender(config), config, from_headers=from_headers
        )
        if not submission.recipients:
            raise SendmailError("no recipient addresses", EX_USAGE)
        if config.smtp.max_message_size and len(submission.body) > config.smtp.max_message_size:
            raise SendmailError("message too big", EX_DATAERR)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(submit(config, submission))
    except SendmailError as error:
        print(f"sendmail: {error}", file=sys.stderr)
        return error.code
    except api.StoreError as error:
        print(f"sendmail: cannot store the message, try again: {error}", file=sys.stderr)
        return EX_TEMPFAIL
    return EX_OK
