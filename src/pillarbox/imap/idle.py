"""IDLE news for every idling session of an account, heard once and shared.

RFC 2177 §3: while a client idles, the server sends untagged EXISTS, EXPUNGE and FETCH as
the mailbox changes. Each session has its own change feed, but waiting on 10,000 feeds
means 10,000 waits to wake, re-arm and read, one after another, before the last idler
hears of a new message. Instead, an idling connection joins the `IdleHub` and waits only
for its client's bytes. One task per account with idlers waits on one feed: for each
change it reads the mailbox's changes once (the shared `ChangeReads` log), then wakes
exactly the idlers that have that mailbox selected: each takes its part of the log from
memory and its responses are written at once, while its driver waits for the client (so
the driver has nothing unsent and cannot be writing). Only what needs the store (a
\\Recent claim, news older than the log, a slow reader's back-pressure) wakes the driver
to do it the usual way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from pillarbox import log
from pillarbox.imap.changelog import ChangeReads
from pillarbox.imap.selected import SelectedMailbox
from pillarbox.store.api import AccountId, Change, ChangeFeed, StoreError


@dataclass(slots=True)
class _Idler:
    view: SelectedMailbox
    push: Callable[[], None]


@dataclass(slots=True)
class _Account:
    feed: ChangeFeed
    task: asyncio.Task[None] | None
    idlers: dict[object, _Idler]


class IdleHub:
    """The idling connections by account, and one feed-following task per such account."""

    def __init__(self, reads: ChangeReads) -> None:
        self._reads = reads
        self._accounts: dict[AccountId, _Account] = {}

    def join(
        self, key: object, account_id: AccountId, view: SelectedMailbox, push: Callable[[], None]
    ) -> None:
        """`key` idles on `view` until `leave`; `push` is called when `view` has news.

        The feed is subscribed here, before the caller waits: a change committed after the
        caller last looked at its own feed reaches the hub's feed as well.
        """
        account = self._accounts.get(account_id)
        if account is None:
            feed = self._reads.store.subscribe(account_id)
            account = _Account(feed, None, {})
            self._accounts[account_id] = account
            account.task = asyncio.get_running_loop().create_task(self._follow(account))
        account.idlers[key] = _Idler(view, push)

    def leave(self, key: object, account_id: AccountId) -> None:
        account = self._accounts.get(account_id)
        if account is None or account.idlers.pop(key, None) is None or account.idlers:
            return
        del self._accounts[account_id]
        account.feed.close()
        if account.task is not None:
            account.task.cancel()

    async def _follow(self, account: _Account) -> None:
        while True:
            change = await account.feed.get()
            try:
                await self._announce(account, change)
            except Exception:  # a bug must not end IDLE news for the whole account
                log.exception("imap.idle_hub", mailbox=change.mailbox_id)

    async def _announce(self, account: _Account, change: Change) -> None:
        self._reads.offer(change)
        watching = [i for i in account.idlers.values() if i.view.mailbox_id == change.mailbox_id]
        if not watching:
            return
        since = min(idler.view.modseq for idler in watching)
        # One read for all of them; a failure is left for each session to meet (and answer).
        with contextlib.suppress(StoreError):
            await self._reads.warm(change.mailbox_id, since, change.modseq)
        for key, idler in list(account.idlers.items()):
            view = idler.view
            if view.mailbox_id != change.mailbox_id or account.idlers.get(key) is not idler:
                continue
            view.heard(change.modseq)
            if view.dirty:
                try:
                    idler.push()
                except Exception:  # one connection's bug must not keep news from the rest
                    log.exception("imap.idle_push", mailbox=change.mailbox_id)
