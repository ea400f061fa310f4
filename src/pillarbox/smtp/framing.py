"""Message data framing for the SMTP server engine (pure).

DATA (RFC 5321 §4.1.1.4, §4.5.2): the body ends only at CRLF "." CRLF, stuffing dots are
removed, and a bare CR or LF refuses the message (SMTP smuggling, RFC 5321 §2.3.8) or, in
"normalize" mode, a bare LF becomes CRLF.  BDAT (RFC 3030 §2): chunks are length-framed;
for 7BIT/8BITMIME bodies the same bare CR/LF rule applies across chunk boundaries.

Scanning uses ``bytes.find``/``count`` only: no Python loop per octet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pillarbox.smtp import replies
from pillarbox.smtp.replies import Reply

# RFC 5321 §4.1.1.4: data ends with CRLF "." CRLF, and only that.
END_OF_DATA: Final = b"\r\n.\r\n"
# Octets kept when discarding, so that a terminator split across reads is still found.
_KEEP_FOR_END: Final = len(END_OF_DATA) - 1
# The reader works on a buffer that starts with this line end (see DataReader).
LINE_START: Final = b"\r\n"
_BARE_LF_RE: Final = re.compile(rb"(?<!\r)\n")


@dataclass(slots=True)
class DataReader:
    """Scans one DATA body held in the engine's buffer.

    The buffer must start with ``LINE_START`` followed by the body octets, so that one
    search finds ".CRLF" on the first line too.  ``scan``: where the end search resumes;
    ``checked``: how far bare CR/LF were checked; ``dots``: "CRLF." seen (stuffing dots)
    up to ``dots_to``, counted only once the raw size passes the limit (only then do they
    matter, and a message far below it is not scanned for them twice).
    """

    max_size: int  # 0 = unlimited
    normalize: bool  # bare LF -> CRLF instead of refusing
    scan: int = 0
    checked: int = 0
    dots: int = 0
    dots_to: int = 0
    saw_bare_lf: bool = False
    refusal: Reply | None = None

    def read(self, buf: bytearray) -> bytes | Reply | None:
        """The body (consumed from ``buf``), a refusal once its data is consumed, or None."""
        if self.refusal is not None:
            return self._skip(buf, self.refusal)
        end = buf.find(END_OF_DATA, self.scan)
        limit = end + 2 if end >= 0 else len(buf)
        self.refusal = self._check(buf, limit)
        if self.refusal is not None:
            return self._skip(buf, self.refusal)
        if end < 0:
            self.scan = max(0, len(buf) - _KEEP_FOR_END)
            return None
        raw = bytes(memoryview(buf)[:limit])  # one copy (a bytearray slice makes two)
        del buf[: end + len(END_OF_DATA)]
        if self.saw_bare_lf:
            raw = _BARE_LF_RE.sub(b"\r\n", raw)  # "normalize": bare LF becomes CRLF
        body = raw.replace(b"\r\n.", b"\r\n")[len(LINE_START) :]  # RFC 5321 §4.5.2
        if self.max_size and len(body) > self.max_size:
            return replies.MESSAGE_TOO_BIG
        return body

    def _check(self, buf: bytearray, limit: int) -> Reply | None:
        """Check buf[checked:limit] for bare CR/LF, and the unstuffed size so far."""
        start = self.checked
        stop = limit - 1 if limit > start and buf[limit - 1] == 0x0D else limit
        if stop <= start:
            return None
        # Neither end of [start, stop) splits a CRLF, so counts find bare CR/LF at C speed.
        crlf = buf.count(b"\r\n", start, stop)
        if buf.count(b"\r", start, stop) != crlf:
            return replies.BARE_NEWLINE  # RFC 5321 §2.3.8: bare CR
        if buf.count(b"\n", start, stop) != crlf:
            if not self.normalize:
                return replies.BARE_NEWLINE  # RFC 5321 §2.3.8: bare LF
            self.saw_bare_lf = True
        self.checked = stop
        if self.max_size and stop - len(LINE_START) > self.max_size:
            # A "CRLF." starting at dots_to-2 or -1 was not complete at the last count.
            self.dots += buf.count(b"\r\n.", max(0, self.dots_to - 2), stop)
            self.dots_to = stop
            if stop - len(LINE_START) - self.dots > self.max_size:
                return replies.MESSAGE_TOO_BIG  # RFC 1870 §6.3
        return None

    @staticmethod
    def _skip(buf: bytearray, refusal: Reply) -> Reply | None:
        """Consume refused data up to the real CRLF.CRLF, storing nothing."""
        end = buf.find(END_OF_DATA)
        if end < 0:
            del buf[: max(0, len(buf) - _KEEP_FOR_END)]
            return None
        del buf[: end + len(END_OF_DATA)]
        return refusal


@dataclass(frozen=True, slots=True)
class ChunkCheck:
    """The outcome of checking one BDAT chunk's line ends."""

    data: bytes | Reply  # the (possibly normalized) chunk, or the refusal
    pending_cr: bool  # the chunk ended with a CR that the next chunk's LF may complete


def check_chunk(chunk: bytes, *, pending_cr: bool, last: bool, normalize: bool) -> ChunkCheck:
    """Apply the bare CR/LF rule to one 7BIT/8BITMIME BDAT chunk (RFC 5321 §2.3.8).

    RFC 3030 §2 requires canonical CRLF text in BDAT chunks of non-BINARYMIME bodies, so
    the SMTP smuggling rule applies as in DATA; a CRLF may be split across two chunks.
    """
    head = b"\r" if pending_cr else b""
    text = head + chunk
    carry = not last and text.endswith(b"\r")
    if carry:
        text = text[:-1]
    crlf = text.count(b"\r\n")
    bare_lf = text.count(b"\n") != crlf
    if text.count(b"\r") != crlf or (bare_lf and not normalize):
        return ChunkCheck(replies.BARE_NEWLINE, False)
    if bare_lf:  # "normalize" (the chunk holds an LF, so a carried CR is its own)
        chunk = _BARE_LF_RE.sub(b"\r\n", text)[len(head) :] + (b"\r" if carry else b"")
    return ChunkCheck(chunk, carry)
