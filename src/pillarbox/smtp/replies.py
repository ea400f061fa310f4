"""SMTP replies: the value type, its wire format, and the replies the engine decides itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

# RFC 5321 §4.2: a reply code is three digits, first digit 2-5.
MIN_REPLY_CODE: Final = 200
MAX_REPLY_CODE: Final = 599
# Sendmail's VERB mode writes progress lines "050 <rcpt>... Sent" before the real reply.
VERBOSE_CODE: Final = 50

# RFC 3463 §2: class.subject.detail; class is 2, 4 or 5, subject and detail up to 3 digits.
_STATUS_RE: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
# Reply text never carries line breaks (a client-supplied string must not inject a reply line).
_LINE_BREAKS: Final = re.compile(r"[\r\n]")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply; a tuple ``text`` is sent as a multi-line reply (RFC 5321 §4.2.1)."""

    code: int
    status: str | None
    text: str | tuple[str, ...]
    # The wire form, made once: most replies are constants sent again and again.
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not MIN_REPLY_CODE <= self.code <= MAX_REPLY_CODE and self.code != VERBOSE_CODE:
            raise ValueError(f"reply code out of range: {self.code}")
        if self.status is not None and not _STATUS_RE.fullmatch(self.status):
            raise ValueError(f"malformed enhanced status code: {self.status!r}")
        if isinstance(self.text, tuple) and not self.text:
            raise ValueError("a multi-line reply needs at least one line")
        object.__setattr__(self, "wire", _format(self))

    @property
    def lines(self) -> tuple[str, ...]:
        """The reply text as a tuple of lines."""
        return (self.text,) if isinstance(self.text, str) else self.text

    @property
    def positive(self) -> bool:
        """True for 2xx and 3xx replies."""
        return self.code < 400


def format_reply(reply: Reply) -> bytes:
    """The reply's wire form (see `_format`)."""
    return reply.wire


def _format(reply: Reply) -> bytes:
    """Serialize a reply: ``250-first``/``250 last`` lines, each with the enhanced status.

    RFC 5321 §4.2.1: every line but the last has a hyphen after the code.
    RFC 2034 §3: the enhanced status code prefixes the text of each line.
    RFC 4954 §4: a reply with empty text still has its space ("334 ").
    """
    lines = reply.lines
    last = len(lines) - 1
    out: list[bytes] = []
    for index, line in enumerate(lines):
        separator = " " if index == last else "-"
        text = _LINE_BREAKS.sub(" ", line)
        if reply.status is not None:
            text = f"{reply.status} {text}" if text else reply.status
        out.append(f"{reply.code:03d}{separator}{text}\r\n".encode())
    return b"".join(out)


# -- replies decided by the engine (RFC 5321 §4.2.2, RFC 3463 §3) --------------------------

# RFC 5321 §4.2.2 500: syntax error, command unrecognized; RFC 3463 X.5.2 syntax error.
UNKNOWN_COMMAND: Final = Reply(500, "5.5.2", "Command unrecognized")
# RFC 5321 §4.5.3.1.4 (command line) and RFC 4954 §4 (AUTH line): 500 with X.5.6.
LINE_TOO_LONG: Final = Reply(500, "5.5.6", "Line too long")
AUTH_LINE_TOO_LONG: Final = Reply(500, "5.5.6", "Authentication exchange line too long")
# RFC 5321 §2.3.8: lines end with CRLF; bare CR or LF is refused (anti-smuggling).
BARE_NEWLINE_COMMAND: Final = Reply(500, "5.5.2", "Bare CR or LF in command line")
# Not UTF-8 or a control character where the grammar has none.
INVALID_CHARACTERS: Final = Reply(500, "5.5.2", "Invalid characters in command")
# RFC 5321 §4.2.2 501: syntax error in parameters or arguments.
SYNTAX_ERROR: Final = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
SYNTAX_HELO: Final = Reply(501, "5.5.4", "Syntax: HELO/EHLO hostname")
SYNTAX_MAIL: Final = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
SYNTAX_RCPT: Final = Reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
SYNTAX_NO_ARGUMENTS: Final = Reply(501, "5.5.4", "Syntax error: no arguments allowed")
SYNTAX_ARGUMENT_REQUIRED: Final = Reply(501, "5.5.4", "Syntax error: argument required")
SYNTAX_BDAT: Final = Reply(501, "5.5.4", "Syntax: BDAT size [LAST]")
SYNTAX_AUTH: Final = Reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
# RFC 3463 X.1.7 / X.1.3: bad sender / destination mailbox address syntax.
BAD_SENDER_SYNTAX: Final = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX: Final = Reply(501, "5.1.3", "Bad recipient address syntax")
# RFC 3461 §5.1: invalid value or repeated DSN parameter -> 501 "syntax error in parameter".
BAD_PARAMETER: Final = Reply(501, "5.5.4", "Syntax error in parameter")
# RFC 4954 §4: undecodable BASE64 -> 501 with X.5.2.
BAD_BASE64: Final = Reply(501, "5.5.2", "Invalid base64 data")
# RFC 5321 §4.2.2 502: command not implemented; §F.1-F.6 (TURN, SEND, SOML, SAML) obsolete.
NOT_IMPLEMENTED: Final = Reply(502, "5.5.1", "Command not implemented")
# RFC 5321 §4.2.2 503: bad sequence of commands.
BAD_SEQUENCE: Final = Reply(503, "5.5.1", "Bad sequence of commands")
HELO_FIRST: Final = Reply(503, "5.5.1", "Send HELO/EHLO first")
EHLO_FIRST: Final = Reply(503, "5.5.1", "Send EHLO first")
MAIL_FIRST: Final = Reply(503, "5.5.1", "Need MAIL command first")
NESTED_MAIL: Final = Reply(503, "5.5.1", "Nested MAIL command")
NO_VALID_RECIPIENTS: Final = Reply(503, "5.5.1", "No valid recipients")
IN_TRANSACTION: Final = Reply(503, "5.5.1", "Mail transaction in progress")
# RFC 4954 §4: AUTH is not permitted during a mail transaction, nor after success.
ALREADY_AUTHENTICATED: Final = Reply(503, "5.5.1", "Already authenticated")
# RFC 3030 §3: DATA after BDAT, and BDAT after a failed chunk, are answered 503.
DATA_AFTER_BDAT: Final = Reply(503, "5.5.1", "DATA not permitted after BDAT")
BDAT_FAILED: Final = Reply(503, "5.5.1", "Previous BDAT failed, send RSET")
# RFC 3030 §2: BINARYMIME cannot be used with DATA -> 503.
BINARYMIME_NEEDS_BDAT: Final = Reply(503, "5.5.1", "BODY=BINARYMIME requires BDAT")
# RFC 5321 §3.1: after a 554 greeting, every command but QUIT gets 503.
NO_SERVICE: Final = Reply(503, "5.5.1", "No SMTP service here, send QUIT")
# RFC 5321 §4.2.2 555 (and RFC 1869): MAIL/RCPT parameter not recognized or not implemented.
UNKNOWN_PARAMETER: Final = Reply(
    555, "5.5.4", "MAIL FROM/RCPT TO parameters not recognized or not implemented"
)
# RFC 1870 §6.1 and RFC 3463 X.3.4: message too big for system.
MESSAGE_TOO_BIG: Final = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
# RFC 5321 §2.3.8 and §4.1.1.4: bare CR/LF in message data (SMTP smuggling defence).
BARE_NEWLINE: Final = Reply(550, "5.5.2", "Message contains bare CR or LF")
# RFC 6531 §3.5: non-ASCII address without SMTPUTF8 -> 550 (MAIL) / 553 (RCPT) with X.6.7.
NON_ASCII_SENDER: Final = Reply(
    550, "5.6.7", "Non-ASCII addresses not permitted for that sender/recipient"
)
NON_ASCII_RECIPIENT: Final = Reply(
    553, "5.6.7", "Non-ASCII addresses not permitted for that sender/recipient"
)
# RFC 5321 §3.8: 421 closes the connection; X.7.0 for policy limits.
TOO_MANY_ERRORS: Final = Reply(421, "4.7.0", "Too many errors, closing connection")
TOO_MANY_COMMANDS: Final = Reply(421, "4.7.0", "Too many commands, closing connection")
# Web requests sent to an SMTP port (cross-protocol attacks) end the connection.
FORBIDDEN_COMMAND: Final = Reply(421, "4.7.0", "This is an SMTP server, closing connection")

# -- replies the session commonly sends --------------------------------------------------

OK: Final = Reply(250, "2.0.0", "OK")
SENDER_OK: Final = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK: Final = Reply(250, "2.1.5", "Recipient OK")
START_DATA: Final = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
CLOSING: Final = Reply(221, "2.0.0", "Bye")
READY_TO_START_TLS: Final = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_SUCCEEDED: Final = Reply(235, "2.7.0", "Authentication successful")
AUTH_CANCELLED: Final = Reply(501, "5.0.0", "Authentication cancelled")
