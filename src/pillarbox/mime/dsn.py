"""Delivery status notifications: multipart/report; report-type=delivery-status.

RFC 3464 (the message/delivery-status fields), RFC 6522 (multipart/report) and RFC 3461 §6
(RET=FULL returns the message, RET=HDRS only its header, as text/rfc822-headers). Every value
that came from the outside (addresses, ENVID, ORCPT, remote replies) is cleaned of CR, LF and
other controls before it is written, so nothing can inject a header field or a MIME part.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Final

from pillarbox.mime.encode import fold
from pillarbox.mime.parts import parse

_EIGHT_BIT_RE: Final = re.compile(rb"[\x80-\xff]")


class DsnAction(enum.Enum):
    """RFC 3464 §2.3.3: the Action field."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


class ReturnContent(enum.Enum):
    """RFC 3461 §4.3 RET: the whole message or only its header."""

    FULL = "FULL"
    HEADERS = "HDRS"


@dataclass(frozen=True, slots=True)
class DsnRecipientStatus:
    """One per-recipient block (RFC 3464 §2.3)."""

    final_recipient: str  # the address, written as "rfc822; addr" (RFC 3464 §2.3.2)
    action: DsnAction
    status: str  # RFC 3463 enhanced status code, e.g. "5.1.1"
    original_recipient: str | None = None  # ORCPT as "addr-type; addr" (RFC 3461 §4.2)
    remote_mta: str | None = None  # host name of the MTA that answered
    diagnostic_code: str | None = None  # the remote SMTP reply text
    last_attempt_date: datetime | None = None
    will_retry_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DsnReport:
    """What the reporting MTA knows about one message (RFC 3464 §2.2)."""

    reporting_mta: str  # our host name
    to: str  # the original envelope sender, who receives the report
    recipients: tuple[DsnRecipientStatus, ...]
    date: datetime
    message_id: str  # without angle brackets
    envid: str | None = None  # ENVID from MAIL FROM (RFC 3461 §4.4), already xtext-decoded
    arrival_date: datetime | None = None
    ret: ReturnContent = ReturnContent.HEADERS
    postmaster: str = "MAILER-DAEMON"


# RFC 3464 §2: fields are US-ASCII; controls (CR and LF above all) must never pass through.
_UNSAFE_RE: Final = re.compile(r"[\x00-\x1f\x7f]+")
_NON_ASCII_RE: Final = re.compile(r"[^\x00-\x7f]")
_STATUS_RE: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
# Our bound on how much of a remote reply is quoted in Diagnostic-Code.
MAX_DIAGNOSTIC: Final = 900

SUBJECTS: Final = {
    DsnAction.FAILED: "Undelivered Mail Returned to Sender",
    DsnAction.DELAYED: "Delayed Mail (still being retried)",
    DsnAction.DELIVERED: "Successful Mail Delivery Report",
    DsnAction.RELAYED: "Mail Relayed to a Non-DSN System",
    DsnAction.EXPANDED: "Mail Delivery Report (expanded)",
}
EXPLANATIONS: Final = {
    DsnAction.FAILED: "could not be delivered to the following recipients",
    DsnAction.DELAYED: "has not yet been delivered to the following recipients; "
    "delivery will be retried",
    DsnAction.DELIVERED: "was delivered to the following recipients",
    DsnAction.RELAYED: "was relayed to a system that does not send delivery reports",
    DsnAction.EXPANDED: "was delivered to a list and expanded",
}


def clean(value: str) -> str:
    """One line of US-ASCII: controls become a space, other non-ASCII becomes "?"."""
    return _NON_ASCII_RE.sub("?", _UNSAFE_RE.sub(" ", value)).strip()


def _field(name: str, value: str) -> bytes:
    return fold(name.encode("ascii"), clean(value).encode("ascii"))


def _typed(value: str, default_type: str) -> str:
    """``type; value`` (RFC 3464 §2.3.1): add the type when the caller gave a bare address."""
    return value if ";" in value else f"{default_type}; {value}"


def _recipient_block(rcpt: DsnRecipientStatus) -> bytes:
    status = rcpt.status if _STATUS_RE.fullmatch(rcpt.status) else "5.0.0"
    lines = []
    if rcpt.original_recipient:
        lines.append(_field("Original-Recipient", _typed(rcpt.original_recipient, "rfc822")))
    lines.append(_field("Final-Recipient", _typed(rcpt.final_recipient, "rfc822")))
    lines.append(_field("Action", rcpt.action.value))
    lines.append(_field("Status", status))
    if rcpt.remote_mta:
        lines.append(_field("Remote-MTA", _typed(rcpt.remote_mta, "dns")))
    if rcpt.diagnostic_code:
        diagnostic = _typed(clean(rcpt.diagnostic_code)[:MAX_DIAGNOSTIC], "smtp")
        lines.append(_field("Diagnostic-Code", diagnostic))
    if rcpt.last_attempt_date:
        lines.append(_field("Last-Attempt-Date", format_datetime(rcpt.last_attempt_date)))
    if rcpt.will_retry_until:
        lines.append(_field("Will-Retry-Until", format_datetime(rcpt.will_retry_until)))
    return b"".join(lines)


def delivery_status(report: DsnReport) -> bytes:
    """The message/delivery-status body: per-message fields, then a block per recipient."""
    head = [_field("Reporting-MTA", _typed(report.reporting_mta, "dns"))]
    if report.envid:
        head.append(_field("Original-Envelope-Id", report.envid))
    if report.arrival_date:
        head.append(_field("Arrival-Date", format_datetime(report.arrival_date)))
    blocks = [b"".join(head)] + [_recipient_block(r) for r in report.recipients]
    return b"\r\n".join(blocks)


def _human_text(report: DsnReport, action: DsnAction) -> bytes:
    lines = [
        f"This is the mail system at host {clean(report.reporting_mta)}.",
        "",
        f"Your message {EXPLANATIONS[action]}:",
        "",
    ]
    for rcpt in report.recipients:
        detail = clean(rcpt.diagnostic_code or rcpt.status)[:MAX_DIAGNOSTIC]
        lines.append(f"<{clean(rcpt.final_recipient)}>: {detail}")
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def _main_action(report: DsnReport) -> DsnAction:
    actions = {r.action for r in report.recipients}
    for action in (DsnAction.FAILED, DsnAction.DELAYED, DsnAction.RELAYED, DsnAction.EXPANDED):
        if action in actions:
            return action
    return DsnAction.DELIVERED


def _returned_part(report: DsnReport, original: bytes) -> bytes:
    """RFC 3461 §6.2: the message (RET=FULL) or only its header (RET=HDRS, RFC 6522 §4)."""
    tree = parse(original)
    header = original[tree.header_start : tree.body_start]
    # RFC 6533 §6.3, §6.4: a header with UTF-8 needs the message/global* types.
    utf8_header = _EIGHT_BIT_RE.search(header) is not None
    if report.ret is ReturnContent.FULL:
        cte = b"8bit" if _EIGHT_BIT_RE.search(original) else b"7bit"
        ctype = b"message/global" if utf8_header else b"message/rfc822"
        head = b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: " + cte + b"\r\n"
        return head + b"\r\n" + original
    ctype = b"message/global-headers" if utf8_header else b"text/rfc822-headers"
    return b"Content-Type: " + ctype + b"\r\n\r\n" + header


def _boundary(original: bytes) -> bytes:
    while True:  # RFC 2046 §5.1.1: the boundary must not occur in the encapsulated parts
        boundary = b"=_pillarbox_report_" + secrets.token_hex(12).encode("ascii")
        if boundary not in original:
            return boundary


def compose_dsn(report: DsnReport, original: bytes) -> bytes:
    """A complete DSN message (RFC 3464 / RFC 6522) about ``original`` (its stored bytes)."""
    action = _main_action(report)
    boundary = _boundary(original)
    sender = f"{clean(report.postmaster)}@{clean(report.reporting_mta)}"
    headers = b"".join(
        (
            _field("From", f"Mail Delivery System <{sender}>"),
            _field("To", f"<{report.to}>"),
            _field("Subject", SUBJECTS[action]),
            _field("Date", format_datetime(report.date)),
            _field("Message-ID", f"<{report.message_id}>"),
            _field("Auto-Submitted", "auto-replied"),  # RFC 3834 §5
            b"MIME-Version: 1.0\r\n",
            b'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="'
            + boundary
            + b'"\r\n',
        )
    )
    delim = b"--" + boundary
    parts = (
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Description: Notification\r\n\r\n" + _human_text(report, action),
        b"Content-Type: message/delivery-status\r\n"
        b"Content-Description: Delivery report\r\n\r\n" + delivery_status(report),
        _returned_part(report, original),
    )
    body = b"".join(delim + b"\r\n" + part + b"\r\n" for part in parts) + delim + b"--\r\n"
    return headers + b"\r\n" + body
