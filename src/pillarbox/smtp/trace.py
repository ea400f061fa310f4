"""Trace headers: Received (RFC 5321 §4.4, RFC 3848) and Return-Path, and loop detection."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
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
    moment = now or dt.datetime.now(dt.UTC)
    helo = _UNSAFE.sub("?", info.helo) or "unknown"
    lines = [f"Received: from {helo} ([{info.peer_ip}])"]
    lines.append(f"\tby {info.hostname} (Pillarbox) with {with_keyword(info)} id {info.queue_id}")
    if info.tls and info.tls_version:
        lines[-1] += f"\r\n\t(using {info.tls_version} with cipher {info.tls_cipher})"
    if info.recipient:
        lines.append(f"\tfor <{_UNSAFE.sub('?', info.recipient)}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{email.utils.format_datetime(moment)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path_header(sender: str) -> bytes:
    """RFC 5321 §4.4: the final-delivery server records the reverse-path."""
    return f"Return-Path: <{sender}>\r\n".encode()


def count_received(body: bytes) -> int:
    """How many Received fields the message header carries (RFC 5321 §6.3 loop detection)."""
    match = _HEADER_END.search(body)
    header = body if match is None else body[: match.start() + 2]
    return len(_RECEIVED.findall(header))
