"""The IMAP4rev1 connection states (RFC 3501 §3) as data.

`Selected` holds the selected mailbox's view, so "FETCH before SELECT" cannot be expressed;
`session.ALLOWED` says which commands each state accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.imap.selected import SelectedMailbox
from pillarbox.store import api


@dataclass(frozen=True, slots=True)
class NotAuthenticated:
    pass


@dataclass(frozen=True, slots=True)
class Authenticated:
    account: api.Account


@dataclass(frozen=True, slots=True)
class Selected:
    account: api.Account
    view: SelectedMailbox


@dataclass(frozen=True, slots=True)
class LoggedOut:
    pass


State = NotAuthenticated | Authenticated | Selected | LoggedOut
