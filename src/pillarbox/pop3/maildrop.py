"""The maildrop as one POP3 session sees it (RFC 1939 §5-§6), pure and in memory.

Message numbers 1..n are fixed at login for the whole session. DELE only marks a message;
marked messages vanish from STAT/LIST/UIDL and are refused by every command, RSET unmarks
them, and `deletions()` lists what the UPDATE state must remove. Failures raise
`MaildropError` carrying the RFC 1939 reply, so the session answers with `error.response`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pillarbox.pop3 import replies
from pillarbox.pop3.replies import Err

# RFC 1939 §7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
MAX_UID_LENGTH: Final = 70
_UID: Final = re.compile(rf"[\x21-\x7e]{{1,{MAX_UID_LENGTH}}}")


class MaildropError(Exception):
    """A refused maildrop operation; `response` is the -ERR to send."""

    def __init__(self, response: Err) -> None:
        super().__init__(response.text)
        self.response = response


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the session: its UIDL string and its size in octets (RFC 1939 §11:
    counted with CRLF line ends, before byte-stuffing)."""

    uid: str
    size: int


class Maildrop:
    """Session view of a maildrop; numbers are 1-based indexes into `entries`."""

    __slots__ = ("_deleted", "_entries", "_live_size")

    def __init__(self, entries: Iterable[tuple[str, int]]) -> None:
        self._entries: tuple[Entry, ...] = tuple(Entry(uid, size) for uid, size in entries)
        for entry in self._entries:
            if not _UID.fullmatch(entry.uid):
                raise ValueError(f"invalid UIDL string {entry.uid!r}")
            if entry.size < 0:
                raise ValueError("message size must not be negative")
        if len({entry.uid for entry in self._entries}) != len(self._entries):
            raise ValueError("UIDL strings must be unique")  # RFC 1939 §7
        self._deleted: set[int] = set()
        self._live_size = sum(entry.size for entry in self._entries)

    def __len__(self) -> int:
        """Messages at login, deleted ones included (the highest message number)."""
        return len(self._entries)

    def _live(self, number: int) -> Entry:
        # RFC 1939 §5: numbers out of range and messages marked deleted are refused alike.
        if not 1 <= number <= len(self._entries) or number in self._deleted:
            raise MaildropError(replies.NO_SUCH_MESSAGE)
        return self._entries[number - 1]

    def stat(self) -> tuple[int, int]:
        """(count, octets) of the messages not marked deleted (RFC 1939 §5 STAT)."""
        return len(self._entries) - len(self._deleted), self._live_size

    def size(self, number: int) -> int:
        """Size of message `number` (LIST msg)."""
        return self._live(number).size

    def uid(self, number: int) -> str:
        """UIDL string of message `number` (UIDL msg)."""
        return self._live(number).uid

    def sizes(self) -> list[tuple[int, int]]:
        """(number, size) of every message not marked deleted, in order (LIST)."""
        return [(n, e.size) for n, e in enumerate(self._entries, 1) if n not in self._deleted]

    def uids(self) -> list[tuple[int, str]]:
        """(number, uid) of every message not marked deleted, in order (UIDL)."""
        return [(n, e.uid) for n, e in enumerate(self._entries, 1) if n not in self._deleted]

    def check(self, number: int) -> None:
        """Raise unless `number` names a message not marked deleted (RETR, TOP)."""
        self._live(number)

    def mark_deleted(self, number: int) -> None:
        """RFC 1939 §5 DELE: mark, refusing a message already marked."""
        if number in self._deleted:
            raise MaildropError(replies.already_deleted(number))
        entry = self._live(number)
        self._deleted.add(number)
        self._live_size -= entry.size

    def reset(self) -> None:
        """RFC 1939 §5 RSET: unmark every message."""
        self._deleted.clear()
        self._live_size = sum(entry.size for entry in self._entries)

    def deletions(self) -> list[int]:
        """Numbers marked deleted, ascending: what the UPDATE state removes (RFC 1939 §6)."""
        return sorted(self._deleted)

    def deleted_uids(self) -> list[str]:
        """UIDL strings of the messages marked deleted, in number order."""
        return [self._entries[n - 1].uid for n in self.deletions()]
