"""The maildrop as one POP3 session sees it (RFC 1939 §5-§6), pure and in memory.

Message numbers 1..n are fixed at login for the whole session. DELE only marks a message;
marked messages vanish from STAT/LIST/UIDL and are refused by every command, RSET unmarks
them, and `deletions()` lists what the UPDATE state must remove. Failures raise
`MaildropError` carrying the RFC 1939 reply, so the session answers with `error.response`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


class Maildrop:
    """Session view of a maildrop; numbers are 1-based indexes into the entries given."""

    __slots__ = ("_deleted", "_live_size", "_sizes", "_uids")

    def __init__(self, entries: Iterable[tuple[str, int]]) -> None:
        """`entries`: (UIDL string, size in octets) of each message in number order; the
        size is counted with CRLF line ends, before byte-stuffing (RFC 1939 §11)."""
        pairs = tuple(entries)
        self._uids: tuple[str, ...] = tuple(uid for uid, _ in pairs)
        self._sizes: tuple[int, ...] = tuple(size for _, size in pairs)
        if not all(map(_UID.fullmatch, self._uids)):
            bad = next(uid for uid in self._uids if not _UID.fullmatch(uid))
            raise ValueError(f"invalid UIDL string {bad!r}")
        if self._sizes and min(self._sizes) < 0:
            raise ValueError("message size must not be negative")
        if len(set(self._uids)) != len(self._uids):
            raise ValueError("UIDL strings must be unique")  # RFC 1939 §7
        self._deleted: set[int] = set()
        self._live_size = sum(self._sizes)

    def __len__(self) -> int:
        """Messages at login, deleted ones included (the highest message number)."""
        return len(self._uids)

    def _live(self, number: int) -> int:
        """The index of message `number`, refusing numbers out of range and messages
        marked deleted alike (RFC 1939 §5)."""
        if not 1 <= number <= len(self._uids) or number in self._deleted:
            raise MaildropError(replies.NO_SUCH_MESSAGE)
        return number - 1

    def stat(self) -> tuple[int, int]:
        """(count, octets) of the messages not marked deleted (RFC 1939 §5 STAT)."""
        return len(self._uids) - len(self._deleted), self._live_size

    def size(self, number: int) -> int:
        """Size of message `number` (LIST msg)."""
        return self._sizes[self._live(number)]

    def uid(self, number: int) -> str:
        """UIDL string of message `number` (UIDL msg)."""
        return self._uids[self._live(number)]

    def sizes(self) -> list[tuple[int, int]]:
        """(number, size) of every message not marked deleted, in order (LIST)."""
        deleted = self._deleted
        return [(n, size) for n, size in enumerate(self._sizes, 1) if n not in deleted]

    def uids(self) -> list[tuple[int, str]]:
        """(number, uid) of every message not marked deleted, in order (UIDL)."""
        deleted = self._deleted
        return [(n, uid) for n, uid in enumerate(self._uids, 1) if n not in deleted]

    def check(self, number: int) -> None:
        """Raise unless `number` names a message not marked deleted (RETR, TOP)."""
        self._live(number)

    def mark_deleted(self, number: int) -> None:
        """RFC 1939 §5 DELE: mark, refusing a message already marked."""
        if number in self._deleted:
            raise MaildropError(replies.already_deleted(number))
        index = self._live(number)
        self._deleted.add(number)
        self._live_size -= self._sizes[index]

    def reset(self) -> None:
        """RFC 1939 §5 RSET: unmark every message."""
        self._deleted.clear()
        self._live_size = sum(self._sizes)

    def deletions(self) -> list[int]:
        """Numbers marked deleted, ascending: what the UPDATE state removes (RFC 1939 §6)."""
        return sorted(self._deleted)

    def deleted_uids(self) -> list[str]:
        """UIDL strings of the messages marked deleted, in number order."""
        return [self._uids[n - 1] for n in self.deletions()]
