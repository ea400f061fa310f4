"""Trace headers: Received (RFC 5321 §4.4, RFC 3848) and Return-Path, and loop detection."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from dataclasses import dataclass

_RECEIVED = re.compile(rb"^Received[ \t]*:", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r\n\r\n")
_UNSAFE = re.compile(r"[^\x21-\x7e]")  # anything but visible ASCII in a trace token


@dataclass(frozen=True, slots=True)
class TraceInfo:
    helo: str
    peer_ip: str
    hostname: str  # ours
    queue_id: str
    esmtp: bool
    tls: bool
    authenticated: bool
    smtputf8: bool
    recipient: str | None  # the "for" clause: only when there is a single recipient
    tls_version: str | None = None
    tls_cipher: str | None = None


def with_keyword(info: TraceInfo) -> str:
    """RFC 3848 §2 / RFC 6531 §3.7.3: the protocol keyword of the "with" clause."""
    if not info.esmtp:
        return "SMTP"
    base = "UTF8SMTP" if info.smtputf8 else "ESMTP"
    suffix = ("S" if info.tls else "") + ("A" if info.authenticated else "")
    return base + suffix


def received_header(info: TraceInfo, now: dt.datetime | None = None) -> bytes:
    """A Received field for the top of the message, folded, CRLF-terminated."""
    helo = _UNSAFE.sub("?", info.helo) or "unknown"
    lines = [f"Received: from {helo} ([{info.peer_ip}])"]
    lines.append(f"\tby {info.hostname} (Pillarbox) with {with_keyword(info)} id {info.queue_id}")
    if info.tls and info.tls_version:
        lines[-1] += f"\r\n\t(using {info.tls_version} with cipher {info.tls_cipher})"
    if info.recipient:
        lines.append(f"\tfor <{_UNSAFE.sub('?', info.recipient)}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{_date_now() if now is None else _date(now)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _date(moment: dt.datetime) -> str:
    """RFC 5322 §3.3 date-time, as the Received field's last part (RFC 5321 §4.4)."""
    return email.utils.format_datetime(moment)


_last_date: list[tuple[int, str]] = [(0, "")]  # the second last formatted, and its text


def _date_now() -> str:
    """The current date-time, formatted once per second however many messages arrive."""
    second = int(time.time())
    if _last_date[0][0] != second:
        _last_date[0] = (second, _date(dt.datetime.fromtimestamp(second, dt.UTC)))
    return _last_date[0][1]


def return_path_header(sender: str) -> bytes:
    """RFC 5321 §4.4: the final-delivery server records the reverse-path."""
    return f"Return-Path: <{sender}>\r\n".encode()


def count_received(body: bytes) -> int:
    """How many Received fields the message header carries (RFC 5321 §6.3 loop detection)."""
    match = _HEADER_END.search(body)
    header = body if match is None else body[: match.start() + 2]
    return len(_RECEIVED.findall(header))
