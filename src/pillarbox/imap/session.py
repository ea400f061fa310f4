"""The IMAP4rev1 server session: commands in, responses out, decisions against the store.

One `ImapSession` per connection. The protocol state is data (RFC 3501 §3, `states.py`): a
value of `NotAuthenticated`, `Authenticated`, `Selected` (which holds the selected
mailbox's view, so "FETCH before SELECT" cannot be expressed) or `LoggedOut`. The
handlers of the not-authenticated state live in `logins.py`, those of mailboxes and
messages in `mailboxes.py` and `messages.py`. `ALLOWED` says which
commands each state accepts and `HANDLERS` maps every command type to its handler; a test
proves the two agree. Handlers return the responses to send, the tagged completion last.
Failures raise `Refused` (or a store error) and are turned into NO in one place, `execute`.
"""

from __future__ import annotations

import bisect
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

from pillarbox import log
from pillarbox.auth import sasl
from pillarbox.imap import commands as cmd
from pillarbox.imap import engine as wire
from pillarbox.imap import logins, mailboxes, messages
from pillarbox.imap import responses as rsp
from pillarbox.imap.changelog import ChangeReads
from pillarbox.imap.fetch import MessageSource, flag_list
from pillarbox.imap.idle import IdleHub
from pillarbox.imap.mailboxes import Refused
from pillarbox.imap.rendered import RenderCache
from pillarbox.imap.selected import (
    Exists,
    Expunged,
    FlagsChanged,
    Listing,
    Recent,
    RecentClaims,
    SelectedMailbox,
    UidIndex,
    Update,
    select_responses,
)
from pillarbox.imap.states import Authenticated, LoggedOut, NotAuthenticated, Selected, State
from pillarbox.store import api

# RFC 3501 §5.4: an idle client is logged out after at least 30 minutes.
AUTOLOGOUT: Final = 30 * 60.0
# Before login a client gets less patience (no RFC minimum applies there).
PREAUTH_TIMEOUT: Final = 60.0
# BAD commands a connection may send before BYE (abuse).
MAX_BAD_COMMANDS: Final = 20

BASE_CAPABILITIES: Final = (
    "IMAP4rev1",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "CONDSTORE",
    "ESEARCH",  # RFC 4731: SEARCH RETURN (MIN MAX ALL COUNT), checked against §3.1
    "LIST-EXTENDED",  # RFC 5258: selection/return options, patterns list, CHILDINFO
    "LIST-STATUS",  # RFC 5819: LIST ... RETURN (STATUS (...))
)
SERVER_ID: Final = (("name", "Pillarbox"), ("vendor", "Pillarbox"))


ALLOWED: Final[dict[type[State], frozenset[type[cmd.Command]]]] = {
    NotAuthenticated: cmd.NOT_AUTHENTICATED,
    Authenticated: cmd.AUTHENTICATED,
    Selected: cmd.SELECTED,
    LoggedOut: frozenset(),
}

# RFC 3501 §7.4.1: no EXPUNGE while answering these (they name messages by number).
NO_EXPUNGE_DURING: Final = (cmd.Fetch, cmd.Store, cmd.Search)


def expunge_allowed(command: cmd.Command) -> bool:
    return not (isinstance(command, NO_EXPUNGE_DURING) and not command.uid)


class SessionContext:
    """What a session needs from its service (kept small so tests can build one)."""

    def __init__(self, service: Any) -> None:
        self.store: api.Store = service.store
        self.authenticator = service.authenticator
        self.hostname: str = service.config.hostname
        self.allow_plaintext_on_loopback: bool = service.config.auth.allow_plaintext_on_loopback
        self.tls_available: bool = service.tls is not None
        self.max_message_size: int = service.max_message_size
        self.literal_capability: str = service.engine_config.literal_capability
        self.uid_index = UidIndex()
        self.recent_claims = RecentClaims()
        self.change_reads = ChangeReads(self.store)
        self.rendered = RenderCache()
        self.idle_hub = IdleHub(self.change_reads)


Handler = Callable[["ImapSession", str, Any], Awaitable[list[rsp.Response]]]


class ImapSession:
    """One IMAP connection's decisions; the driver feeds it commands and engine events."""

    def __init__(self, context: SessionContext, peer_ip: str, tls: bool, loopback: bool) -> None:
        self.context = context
        self.store = context.store
        self.peer_ip = peer_ip
        self.tls = tls
        self.loopback = loopback
        self.session_id = secrets.token_hex(6)
        self.state: State = NotAuthenticated()
        self.tls_requested = False
        self.condstore = False  # RFC 7162 §3.1: enabled by ENABLE, SELECT (CONDSTORE), ...
        self.idling: str | None = None  # the tag of the IDLE in progress
        self.feed: api.ChangeFeed | None = None
        self.source = MessageSource(context.store)
        self.auth_failures = 0
        self.bad_commands = 0
        self.sasl_exchange: sasl.SaslExchange | None = None  # AUTHENTICATE in progress
        self.sasl_tag = ""
        self._last_selected: tuple[str, api.Mailbox] | None = None

    # -- facts ---------------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        return PREAUTH_TIMEOUT if isinstance(self.state, NotAuthenticated) else AUTOLOGOUT

    @property
    def closed(self) -> bool:
        return isinstance(self.state, LoggedOut)

    @property
    def auth_allowed(self) -> bool:
        """RFC 3501 §6.2.3 / DESIGN.md: credentials only over TLS, or on loopback if allowed."""
        return self.tls or (self.loopback and self.context.allow_plaintext_on_loopback)

    @property
    def view(self) -> SelectedMailbox | None:
        return self.state.view if isinstance(self.state, Selected) else None

    @property
    def account(self) -> api.Account:
        assert isinstance(self.state, Authenticated | Selected)
        return self.state.account

    def capabilities(self) -> list[str]:
        caps = [*BASE_CAPABILITIES, self.context.literal_capability]
        if isinstance(self.state, NotAuthenticated):
            if not self.tls and self.context.tls_available:
                caps.append("STARTTLS")
            if self.auth_allowed:
                caps += [f"AUTH={m}" for m in sasl.MECHANISMS]
            else:
                caps.append("LOGINDISABLED")  # RFC 3501 §6.2.3
        return caps

    def greeting(self) -> list[rsp.Response]:
        log.event("imap.connect", id=self.session_id, peer=self.peer_ip, tls=self.tls)
        code = rsp.capability_code(self.capabilities())
        return [rsp.UntaggedStatus(rsp.Status.OK, "Pillarbox IMAP4rev1 ready", code)]

    # -- engine events -----------------------------------------------------------------------

    async def handle(self, event: wire.Event) -> list[rsp.Response]:
        """The responses to one engine event (the driver's entry point)."""
        return await EVENT_HANDLERS[type(event)](self, event)

    async def on_command(self, event: wire.Command) -> list[rsp.Response]:
        return await self.execute(event.tag, event.command)

    async def on_parse_error(self, event: wire.ParseError) -> list[rsp.Response]:
        if isinstance(event.response, rsp.UntaggedStatus) and (
            event.response.status is rsp.Status.BYE
        ):
            self.state = LoggedOut()
            return [event.response]
        self.bad_commands += 1
        if self.bad_commands > MAX_BAD_COMMANDS:
            self.state = LoggedOut()
            return [rsp.UntaggedStatus(rsp.Status.BYE, "Too many invalid commands")]
        if self.idling is not None:
            self.idling = None  # RFC 2177 §3: a line other than DONE also ends IDLE
        return [event.response]

    async def on_literal_pending(self, event: wire.LiteralPending) -> list[rsp.Response]:
        return [event.response]

    async def on_authenticate_response(
        self, event: wire.AuthenticateResponse
    ) -> list[rsp.Response]:
        return await logins.on_sasl_line(self, event.line)

    async def on_done_event(self, event: wire.Done) -> list[rsp.Response]:
        return await self.on_done()

    async def on_connection_closed(self, event: wire.ConnectionClosed) -> list[rsp.Response]:
        self.state = LoggedOut()
        return []

    # -- running commands --------------------------------------------------------------------

    async def execute(self, tag: str, command: cmd.Command) -> list[rsp.Response]:
        """Run one command; the one place where failures become NO responses."""
        if type(command) not in ALLOWED[type(self.state)]:
            return [rsp.Tagged(tag, rsp.Status.BAD, self._wrong_state_text(command))]
        try:
            out = await HANDLERS[type(command)](self, tag, command)
        except Refused as refusal:
            out = [rsp.Tagged(tag, refusal.status, refusal.text, refusal.code)]
        except api.QuotaExceeded:
            out = [rsp.Tagged(tag, rsp.Status.NO, "Quota exceeded", rsp.OVERQUOTA)]
        except api.NotFound:
            out = [rsp.Tagged(tag, rsp.Status.NO, "No such mailbox or message", rsp.NONEXISTENT)]
        except api.AlreadyExists:
            out = [rsp.Tagged(tag, rsp.Status.NO, "Already exists", rsp.ALREADYEXISTS)]
        except api.StoreError as error:
            log.event("imap.store_error", id=self.session_id, error=repr(error))
            out = [rsp.Tagged(tag, rsp.Status.NO, "Temporary server failure", rsp.UNAVAILABLE)]
        except Exception:  # a bug: the client gets NO, the log gets the traceback
            log.exception("imap.error", id=self.session_id, command=type(command).__name__)
            out = [rsp.Tagged(tag, rsp.Status.NO, "Internal server error", rsp.SERVERBUG)]
        if self.view is not None and not self.closed and self.idling is None:
            out[-1:-1] = await self.pending_updates(expunge_allowed(command))
        return out

    def _wrong_state_text(self, command: cmd.Command) -> str:
        if isinstance(self.state, NotAuthenticated):
            return "Not authenticated"
        if isinstance(self.state, Authenticated) and type(command) in cmd.SELECTED:
            return "No mailbox selected"
        return "Command not valid in this state"

    async def pending_updates(self, allow_expunge: bool, poll: bool = False) -> list[rsp.Response]:
        """The news about the selected mailbox the client may get now (RFC 3501 §7.4.1)."""
        view = self.view
        if view is None:
            return []
        self._drain_feed(view)
        try:
            if view.dirty or poll:
                await view.refresh(self.context.change_reads, self.context.recent_claims, poll)
            elif view.claim_due:
                await view.settle_claim(self.store)
        except api.NotFound:
            # The mailbox was deleted under us: nothing sensible remains (Dovecot: BYE).
            self.state = LoggedOut()
            return [rsp.UntaggedStatus(rsp.Status.BYE, "Selected mailbox was deleted")]
        return [self.update_response(update) for update in view.updates(allow_expunge)]

    def idle_updates_now(self) -> list[rsp.Response] | None:
        """IDLE news from memory alone (RFC 2177 §3), or None when the store must be asked
        first (then `idle_updates` answers)."""
        view = self.view
        if view is None:
            return []
        self._drain_feed(view)
        reads, claims = self.context.change_reads, self.context.recent_claims
        if view.dirty and not view.refresh_now(reads, claims):
            return None
        if view.claim_due:
            return None
        return [self.update_response(update) for update in view.updates(allow_expunge=True)]

    def note_change(self, change: api.Change) -> None:
        """The driver took a change from the feed while idling."""
        self.context.change_reads.offer(change)
        view = self.view
        if view is not None and change.mailbox_id == view.mailbox_id:
            view.heard(change.modseq)

    def has_news(self) -> bool:
        """The selected mailbox changed since the last updates (its feed said so)."""
        view = self.view
        if view is None:
            return False
        self._drain_feed(view)
        return view.dirty

    def _drain_feed(self, view: SelectedMailbox) -> None:
        feed = self.feed
        if feed is None:
            return
        offer = self.context.change_reads.offer
        while (change := feed.get_nowait()) is not None:
            offer(change)
            if change.mailbox_id == view.mailbox_id:
                view.heard(change.modseq)

    def update_response(self, update: Update) -> rsp.Response:
        if isinstance(update, Expunged):
            return rsp.expunge(update.seq)
        if isinstance(update, Exists):
            return rsp.exists(update.count)
        if isinstance(update, Recent):
            return rsp.recent(update.count)
        assert isinstance(update, FlagsChanged)
        view = self.view
        recent = view is not None and view.is_recent(update.uid)
        items = [(b"UID", b"%d" % update.uid), (b"FLAGS", flag_list(update.flags, recent))]
        if self.condstore:
            items.append((b"MODSEQ", b"(%d)" % update.modseq))  # RFC 7162 §3.2.4
        return rsp.FetchData(update.seq, tuple(items))

    async def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
            self.feed = None
        log.event("imap.disconnect", id=self.session_id)

    # -- any state (RFC 3501 §6.1) -----------------------------------------------------------

    async def on_capability(self, tag: str, command: cmd.Capability) -> list[rsp.Response]:
        return [rsp.capability(self.capabilities()), ok(tag, "CAPABILITY completed")]

    async def on_noop(self, tag: str, command: cmd.Noop | cmd.Check) -> list[rsp.Response]:
        updates = await self.pending_updates(allow_expunge=True, poll=True)
        return [*updates, ok(tag, f"{type(command).__name__.upper()} completed")]

    async def on_logout(self, tag: str, command: cmd.Logout) -> list[rsp.Response]:
        self.state = LoggedOut()
        bye = rsp.UntaggedStatus(rsp.Status.BYE, "Logging out")
        return [bye, ok(tag, "LOGOUT completed")]

    async def on_id(self, tag: str, command: cmd.Id) -> list[rsp.Response]:
        return [rsp.id_response(SERVER_ID), ok(tag, "ID completed")]  # RFC 2971 §3.1

    def tls_started(self) -> None:
        # RFC 3501 §6.2.1: the client must discard what it knew; we forget nothing else.
        self.tls_requested = False
        self.tls = True

    # -- authenticated (§6.3) ----------------------------------------------------------------

    async def on_select(self, tag: str, command: cmd.Select | cmd.Examine) -> list[rsp.Response]:
        # RFC 3501 §6.3.1: a SELECT first leaves the selected state, even if it then fails.
        self.state = Authenticated(self.account)
        read_only = isinstance(command, cmd.Examine)
        snap, listing = await self._open(command.mailbox)
        box = snap.mailbox
        if command.condstore:
            self.condstore = True  # RFC 7162 §3.1.8
        uids = listing.uids
        last = api.Uid(uids[-1] if uids else 0)
        claims = self.context.recent_claims
        if read_only:
            mark = snap.recent_mark  # RFC 3501 §6.3.2: EXAMINE leaves \Recent alone
        elif last <= snap.recent_mark:
            mark = snap.recent_mark  # all claimed already (the snapshot read says so)
        else:
            mark = await claims.claim(self.store, box.id, box.uidvalidity, last)
        # UIDs ascend, so the recent ones are a tail of the list (RFC 3501 §2.3.2).
        recent = uids[bisect.bisect_right(uids, mark) :]
        view = SelectedMailbox(snap, read_only, recent, listing)
        self.state = Selected(self.account, view)
        return select_responses(tag, view, snap, command)

    async def _open(self, name: str) -> tuple[api.MailboxSnapshot, Listing]:
        """The snapshot and UIDs of mailbox `name`. The mailbox this session last selected
        under that name is tried without a lookup: its snapshot says if it is still that
        mailbox (same account, name and UIDVALIDITY), else the name is looked up."""
        context, last = self.context, self._last_selected
        if last is not None and last[0] == name:
            known = last[1]
            with contextlib.suppress(api.NotFound):
                snap, listing = await context.uid_index.select(
                    self.store, known, context.change_reads
                )
                now = snap.mailbox
                if (now.account_id, now.name, now.uidvalidity) == (
                    self.account.id,
                    known.name,
                    known.uidvalidity,
                ):
                    return snap, listing
        box = await mailboxes.find(self.store, self.account.id, name)
        self._last_selected = (name, box)
        return await context.uid_index.select(self.store, box, context.change_reads)

    async def on_mailbox_command(self, tag: str, command: Any) -> list[rsp.Response]:
        """CREATE, DELETE, RENAME, [UN]SUBSCRIBE, LIST, LSUB, STATUS, NAMESPACE (§6.3)."""
        handler, verb = mailboxes.HANDLERS[type(command)]
        view = self.view
        if isinstance(command, cmd.Delete) and view is not None and view.name == command.mailbox:
            self.state = Authenticated(self.account)  # deleting the selected mailbox closes it
        found = await handler(self.store, self.account.id, command)
        return [*found, ok(tag, f"{verb} completed")]

    async def on_enable(self, tag: str, command: cmd.Enable) -> list[rsp.Response]:
        enabled = [name for name in command.capabilities if name == "CONDSTORE"]
        if enabled:
            self.condstore = True  # RFC 7162 §3.1: ENABLE CONDSTORE
        return [rsp.enabled(enabled), ok(tag, "ENABLE completed")]

    async def on_idle(self, tag: str, command: cmd.Idle) -> list[rsp.Response]:
        updates = await self.pending_updates(allow_expunge=True, poll=True)
        self.idling = tag  # RFC 2177 §3: updates may now come at any time until DONE
        return [*updates, rsp.Continuation("idling")]

    async def idle_updates(self) -> list[rsp.Response]:
        """Called by the driver when the change feed has news while idling."""
        return await self.pending_updates(allow_expunge=True)

    async def on_done(self) -> list[rsp.Response]:
        tag, self.idling = self.idling, None
        if tag is None:
            return [rsp.UntaggedStatus(rsp.Status.BAD, "DONE without IDLE")]
        return [ok(tag, "IDLE terminated")]

    # -- selected (§6.4): closing the mailbox -------------------------------------------------

    async def on_close(self, tag: str, command: cmd.Close | cmd.Unselect) -> list[rsp.Response]:
        view = self.view
        assert view is not None
        if isinstance(command, cmd.Close) and not view.read_only:
            # RFC 3501 §6.4.2: expunge \Deleted silently (no untagged EXPUNGE).
            await messages.expunge_deleted(self.store, view, None)
        self.state = Authenticated(self.account)
        return [ok(tag, f"{type(command).__name__.upper()} completed")]

    async def on_message_command(self, tag: str, command: Any) -> list[rsp.Response]:
        view = self.view
        return await messages.HANDLERS[type(command)](self, view, tag, command)


def ok(tag: str, text: str, code: rsp.Code | None = None) -> rsp.Tagged:
    return rsp.Tagged(tag, rsp.Status.OK, text, code)


def no(tag: str, text: str, code: rsp.Code | None = None) -> rsp.Tagged:
    return rsp.Tagged(tag, rsp.Status.NO, text, code)


HANDLERS: Final[dict[type[cmd.Command], Handler]] = {
    cmd.Capability: ImapSession.on_capability,
    cmd.Noop: ImapSession.on_noop,
    cmd.Check: ImapSession.on_noop,
    cmd.Logout: ImapSession.on_logout,
    cmd.Id: ImapSession.on_id,
    cmd.StartTls: logins.on_starttls,
    cmd.Login: logins.on_login,
    cmd.Authenticate: logins.on_authenticate,
    cmd.Select: ImapSession.on_select,
    cmd.Examine: ImapSession.on_select,
    cmd.Create: ImapSession.on_mailbox_command,
    cmd.Delete: ImapSession.on_mailbox_command,
    cmd.Rename: ImapSession.on_mailbox_command,
    cmd.Subscribe: ImapSession.on_mailbox_command,
    cmd.Unsubscribe: ImapSession.on_mailbox_command,
    cmd.List: ImapSession.on_mailbox_command,
    cmd.Lsub: ImapSession.on_mailbox_command,
    cmd.Status: ImapSession.on_mailbox_command,
    cmd.Namespace: ImapSession.on_mailbox_command,
    cmd.Enable: ImapSession.on_enable,
    cmd.Idle: ImapSession.on_idle,
    cmd.Close: ImapSession.on_close,
    cmd.Unselect: ImapSession.on_close,
    cmd.Append: ImapSession.on_message_command,
    cmd.Expunge: ImapSession.on_message_command,
    cmd.UidExpunge: ImapSession.on_message_command,
    cmd.Search: ImapSession.on_message_command,
    cmd.Fetch: ImapSession.on_message_command,
    cmd.Store: ImapSession.on_message_command,
    cmd.Copy: ImapSession.on_message_command,
    cmd.Move: ImapSession.on_message_command,
}


EventHandler = Callable[[ImapSession, Any], Awaitable[list[rsp.Response]]]

EVENT_HANDLERS: Final[dict[type, EventHandler]] = {
    wire.Command: ImapSession.on_command,
    wire.ParseError: ImapSession.on_parse_error,
    wire.LiteralPending: ImapSession.on_literal_pending,
    wire.AuthenticateResponse: ImapSession.on_authenticate_response,
    wire.Done: ImapSession.on_done_event,
    wire.ConnectionClosed: ImapSession.on_connection_closed,
}
