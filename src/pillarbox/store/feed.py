"""The in-process change feed, shared by backends: committed changes fan out per account.

A backend calls `ChangeHub.publish` in the event loop's thread after a commit; every open
`QueueFeed` of the account gets the changes in commit order (IMAP IDLE and NOOP read them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from pillarbox.store.api import AccountId, Change

# A feed nobody reads (a stuck IDLE session) must not grow without bound; when full the
# oldest change is dropped, which is safe because a Change only says "look again at
# this mailbox from this MODSEQ" and a later change of the same mailbox says more.
MAX_PENDING_CHANGES: Final = 1024


class QueueFeed:
    """One subscriber's feed; `get` waits for the next change."""

    def __init__(self, hub: ChangeHub, account_id: AccountId) -> None:
        self._hub = hub
        self.account_id = account_id
        self._queue: asyncio.Queue[Change] = asyncio.Queue(MAX_PENDING_CHANGES)
        self.closed = False

    async def get(self) -> Change:
        return await self._queue.get()

    def get_nowait(self) -> Change | None:
        """The next change if one is waiting (for IMAP NOOP), else None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def put(self, change: Change) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(change)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._hub.unsubscribe(self)


class ChangeHub:
    """Subscribers by account."""

    def __init__(self) -> None:
        self._feeds: dict[AccountId, set[QueueFeed]] = {}

    def subscribe(self, account_id: AccountId) -> QueueFeed:
        feed = QueueFeed(self, account_id)
        self._feeds.setdefault(account_id, set()).add(feed)
        return feed

    def unsubscribe(self, feed: QueueFeed) -> None:
        feeds = self._feeds.get(feed.account_id)
        if feeds is not None:
            feeds.discard(feed)
            if not feeds:
                del self._feeds[feed.account_id]

    def publish(self, changes: Iterable[tuple[AccountId, Change]]) -> None:
        for account_id, change in changes:
            for feed in self._feeds.get(account_id, ()):
                feed.put(change)
