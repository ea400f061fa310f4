"""FETCH values that depend only on a message's bytes, kept between commands and sessions.

A mail client asks for the same header fields of the newest messages again and again (at
every SELECT, in every open window). ENVELOPE, BODYSTRUCTURE and BODY[section] depend only
on the message's bytes, which never change once stored (DESIGN.md), so one rendering serves
every later FETCH of any session, without loading the body or walking its header again.

Values are keyed by mailbox, UIDVALIDITY and UID (RFC 3501 §2.3.1.1: that triple never
names other content), what a FETCH knows before it reads anything. Flags, MODSEQ and the
like are per entry and never cached here.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from pillarbox.store.api import MailboxId, Uid

# Octets of rendered values kept for all sessions of a service: the header fields of the
# newest few thousand messages of the busiest mailboxes (~300 octets each).
RENDER_CACHE_OCTETS: Final = 16 * 1024 * 1024
# Larger values (whole bodies) are answered from the store each time: they would push out
# hundreds of small values for one message.
RENDER_VALUE_MAX: Final = 16 * 1024
# What an entry costs beside its value (key tuple, dict slot, bytes header): the budget
# then bounds memory even for many tiny values.
ENTRY_OVERHEAD: Final = 200

# (mailbox, UIDVALIDITY, UID): one message's content for as long as it exists.
ContentKey = tuple[MailboxId, int, Uid]


class RenderCache:
    """An LRU of rendered content values, bounded in octets.

    One record holds the values of all content items of one FETCH shape (`shape`, a
    string naming the items, see `fetch.Plan`) for one message: one lookup per message.
    """

    def __init__(self, budget: int = RENDER_CACHE_OCTETS) -> None:
        self._budget = budget
        self._used = 0
        self._values: OrderedDict[tuple[ContentKey, str], list[bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: ContentKey, shape: str) -> list[bytes] | None:
        """The values of the shape's content items for this message, if kept."""
        record = (key, shape)
        values = self._values.get(record)
        if values is not None:
            self._values.move_to_end(record)
        return values

    def put(self, key: ContentKey, shape: str, values: list[bytes]) -> None:
        size = sum(len(value) for value in values)
        record = (key, shape)
        if size > RENDER_VALUE_MAX or record in self._values:
            return
        self._values[record] = values
        self._used += size + ENTRY_OVERHEAD
        while self._used > self._budget and self._values:
            _, dropped = self._values.popitem(last=False)
            self._used -= sum(len(value) for value in dropped) + ENTRY_OVERHEAD
