"""The in-process change feed, shared by backends: committed changes fan out per account.

A backend calls `ChangeHub.publish` in the event loop's thread after a commit; every open
`QueueFeed` of the account gets the changes in commit order (IMAP IDLE and NOOP read them).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Final

from pillarbox.store.api import AccountId, Change

# A feed nobody reads (a stuck IDLE session) must not grow without bound; when full the
# oldest change is dropped, which is safe because a Change only says "look again at
# this mailbox from this MODSEQ" and a later change of the same mailbox says more.
MAX_PENDING_CHANGES: Final = 1024


class QueueFeed:
    """One subscriber's feed; `get` waits for the next change.

    A deque and one waiting future rather than an `asyncio.Queue`: every IMAP command drains
    its session's feed, and a queue's `get_nowait` raises (and the caller catches) an
    exception each time the feed runs dry. One reader at a time waits in `get` (the IDLE
    hub's task for the account); sessions only take what is there.
    """

    def __init__(self, hub: ChangeHub, account_id: AccountId) -> None:
        self._hub = hub
        self.account_id = account_id
        self._changes: deque[Change] = deque(maxlen=MAX_PENDING_CHANGES)  # drops the oldest
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    async def get(self) -> Change:
        while not self._changes:
            if self._waiter is not None:
                raise RuntimeError("another task is already waiting on this feed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._changes.popleft()

    def get_nowait(self) -> Change | None:
        """The next change if one is waiting (for IMAP NOOP), else None."""
        return self._changes.popleft() if self._changes else None

    def put(self, change: Change) -> None:
        self._changes.append(change)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
