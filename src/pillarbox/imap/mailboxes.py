"""Mailbox commands: LIST/LSUB matching, CREATE, DELETE, RENAME, SUBSCRIBE, STATUS.

Names arrive decoded from modified UTF-7 (the parser did it). Here they are checked
(`check_name`): hierarchy separator "/", no empty level, no control characters, no
wildcards, bounded length and depth. Names never reach a file system: the store keeps them
as row values. Levels that exist only because a child does ("a" when only "a/b" exists)
are listed with \\Noselect, as RFC 3501 §6.3.8 asks for hierarchy levels.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pillarbox.imap import commands as cmd
from pillarbox.imap import responses as rsp
from pillarbox.store import api
from pillarbox.store.api import INBOX, AccountId, Mailbox, Store

SEPARATOR: Final = "/"
# Our own bounds (RFC 3501 sets none): Dovecot's defaults are in the same range.
MAX_NAME_LENGTH: Final = 255  # characters of a whole name
MAX_DEPTH: Final = 16  # hierarchy levels
# RFC 6154 §2: the special-use attributes we keep (\All and \Flagged are virtual views).
SPECIAL_USES: Final = frozenset({"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"})
# RFC 5258 §6 list-select-base-opt that we implement: what CHILDINFO can name (RFC 6154
# makes SPECIAL-USE an independent option, so it never appears there).
CHILDINFO_OPTIONS: Final = ("SUBSCRIBED",)
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


class Refused(Exception):
    """A command that fails with NO (or BAD): the session turns it into a tagged reply."""

    def __init__(
        self, text: str, code: rsp.Code | None = None, status: rsp.Status = rsp.Status.NO
    ) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.status = status


NO_SUCH_MAILBOX: Final = "Mailbox does not exist"
Responses = list[rsp.Response]


def check_name(name: str) -> str:
    """A valid mailbox name, INBOX canonical (RFC 3501 §5.1); raises Refused."""
    if not name or _CONTROL_RE.search(name) or "*" in name or "%" in name:
        raise Refused("Invalid mailbox name", rsp.CANNOT)
    levels = name.split(SEPARATOR)
    if any(not level for level in levels) or len(levels) > MAX_DEPTH:
        raise Refused("Invalid mailbox name: empty or too many hierarchy levels", rsp.CANNOT)
    if len(name) > MAX_NAME_LENGTH:
        raise Refused("Mailbox name too long", rsp.LIMIT)
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return SEPARATOR.join(levels)


# -- LIST / LSUB matching (RFC 3501 §6.3.8, §6.3.9) ---------------------------------------


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """`*` matches anything, `%` anything but the separator; INBOX case-insensitively."""
    full = reference + pattern
    if full[:5].upper() == INBOX and (len(full) == 5 or full[5] in (SEPARATOR, "*", "%")):
        full = INBOX + full[5:]
    pieces = []
    for char in full:
        if char == "*":
            pieces.append(".*")
        elif char == "%":
            pieces.append("[^/]*")
        else:
            pieces.append(re.escape(char))
    return re.compile("".join(pieces), re.DOTALL)


@dataclass(frozen=True, slots=True)
class Node:
    """A name in the hierarchy: a mailbox, a level that only its children make, or a
    subscribed name with neither (RFC 3501 §6.3.6: subscriptions outlive mailboxes)."""

    name: str
    mailbox: Mailbox | None
    has_children: bool
    subscribed: bool = False


def hierarchy(mailboxes: Iterable[Mailbox], dangling: Iterable[str] = ()) -> dict[str, Node]:
    """The names of `mailboxes` and their levels, plus the subscribed names in `dangling`
    that have no mailbox (only LIST (SUBSCRIBED) shows those, RFC 5258 §3.1)."""
    boxes = {box.name: box for box in mailboxes}
    parents: set[str] = set()
    for name in boxes:
        levels = name.split(SEPARATOR)
        for depth in range(1, len(levels)):
            parents.add(SEPARATOR.join(levels[:depth]))
    extra = set(dangling)
    nodes: dict[str, Node] = {}
    for name in sorted(boxes.keys() | parents | extra):
        box = boxes.get(name)
        subscribed = box.subscribed if box is not None else name in extra
        nodes[name] = Node(name, box, name in parents, subscribed)
    return nodes


def attributes(node: Node, subscribed_flag: bool = False) -> list[str]:
    """RFC 3501 §7.2.2 name attributes, RFC 3348 CHILDREN, RFC 6154 special use."""
    attrs: list[str] = []
    if node.mailbox is None:
        # RFC 5258 §3: a subscribed name with no mailbox and no children does not exist.
        attrs.append("\\Noselect" if node.has_children else "\\NonExistent")
    attrs.append("\\HasChildren" if node.has_children else "\\HasNoChildren")
    if node.mailbox is not None and node.mailbox.special_use:
        attrs.append(node.mailbox.special_use)
    if subscribed_flag and node.subscribed:
        attrs.append("\\Subscribed")  # RFC 5258 §3.1, §3.2
    return attrs


def meets_selection(node: Node, selection: frozenset[str]) -> bool:
    """RFC 5258 §3: a name must satisfy every selection option (REMOTE adds nothing here:
    there are no remote mailboxes; RECURSIVEMATCH only adds parents, see `_parents`)."""
    box = node.mailbox
    if "SUBSCRIBED" in selection and not node.subscribed:  # RFC 5258 §3.1
        return False
    # RFC 6154 §5.2: the SPECIAL-USE selection option lists only special-use mailboxes.
    return "SPECIAL-USE" not in selection or bool(box and box.special_use)


def _parents(
    nodes: dict[str, Node], selection: frozenset[str], matched: set[str]
) -> tuple[set[str], set[str]]:
    """RFC 5258 §3.1 RECURSIVEMATCH: names with a descendant that meets the selection
    criteria (they get CHILDINFO), and those with such a descendant that no pattern
    matches (only these are listed when they do not meet the criteria themselves)."""
    with_child: set[str] = set()
    with_unlisted_child: set[str] = set()
    for name, node in nodes.items():
        if not meets_selection(node, selection):
            continue
        levels = name.split(SEPARATOR)
        for depth in range(1, len(levels)):
            parent = SEPARATOR.join(levels[:depth])
            with_child.add(parent)
            if name not in matched:
                with_unlisted_child.add(parent)
    return with_child, with_unlisted_child


def _childinfo(selection: frozenset[str]) -> tuple[str, ...]:
    # RFC 5258 §3.5, §6 childinfo-extended-item: the base selection options in force.
    return tuple(option for option in CHILDINFO_OPTIONS if option in selection)


async def on_list(store: Store, account_id: AccountId, command: cmd.List) -> Responses:
    if not command.extended and command.patterns == ("",):
        # RFC 3501 §6.3.8: an empty pattern asks for the separator and the root. RFC 5258
        # §3: an extended LIST must not; there an empty pattern is ignored (below).
        return [rsp.list_entry(["\\Noselect"], SEPARATOR, "")]
    regexes = [pattern_regex(command.reference, p) for p in command.patterns if p]
    if not regexes:
        return []
    boxes = await store.list_mailboxes(account_id)
    dangling: list[str] = []
    if "SUBSCRIBED" in command.selection:  # RFC 5258 §3.1: subscribed names, existing or not
        names = {box.name for box in boxes}
        subscribed = await store.list_subscriptions(account_id)
        dangling = [name for name in subscribed if name not in names]
    nodes = hierarchy(boxes, dangling)
    # RFC 5258 §3: a name matching several patterns is listed once (one pass over names).
    matched = {name for name in nodes if any(rx.fullmatch(name) for rx in regexes)}
    selection = command.selection
    with_child: set[str] = set()
    with_unlisted_child: set[str] = set()
    if "RECURSIVEMATCH" in selection:
        with_child, with_unlisted_child = _parents(nodes, selection, matched)
    out: list[rsp.Response] = []
    for name in sorted(matched):
        selected = meets_selection(nodes[name], selection)
        # RFC 5258 §3.3 rule 2, §3.5: a name failing the criteria is listed only for a
        # descendant that meets them and is not itself listed (redundant CHILDINFO is not).
        if selected or name in with_unlisted_child:
            childinfo = _childinfo(selection) if name in with_child else ()
            out += await _list_entry(store, command, nodes[name], selected, childinfo)
    return out


async def _list_entry(
    store: Store, command: cmd.List, node: Node, selected: bool, childinfo: tuple[str, ...]
) -> Responses:
    """One LIST response, then (RFC 5819 §2) the STATUS of a selectable mailbox that meets
    the selection criteria; a mailbox gone meanwhile is listed \\NonExistent, without STATUS."""
    status: rsp.Untagged | None = None
    if command.status_items and selected and node.mailbox is not None:
        try:
            status = await status_response(store, node.mailbox, command.status_items)
        except api.NotFound:
            node = Node(node.name, None, node.has_children, node.subscribed)
    # RFC 5258 §3.1: the SUBSCRIBED selection option implies the SUBSCRIBED return option.
    show_subscribed = "SUBSCRIBED" in command.returns or "SUBSCRIBED" in command.selection
    attrs = attributes(node, show_subscribed)
    entry = rsp.list_entry(attrs, SEPARATOR, node.name, childinfo=childinfo)
    return [entry] if status is None else [entry, status]


async def on_lsub(store: Store, account_id: AccountId, command: cmd.Lsub) -> Responses:
    if command.pattern == "":
        return [rsp.list_entry(["\\Noselect"], SEPARATOR, "", kind=b"LSUB")]
    rx = pattern_regex(command.reference, command.pattern)
    # RFC 3501 §6.3.9: every subscribed name, whether or not its mailbox exists.
    subscribed = await store.list_subscriptions(account_id)
    out: list[rsp.Response] = []
    seen: set[str] = set()
    for name in subscribed:
        if rx.fullmatch(name):
            out.append(rsp.list_entry([], SEPARATOR, name, kind=b"LSUB"))
            seen.add(name)
            continue
        # RFC 3501 §6.3.9: with "%", a level above a subscribed name shows as \Noselect.
        levels = name.split(SEPARATOR)
        for depth in range(1, len(levels)):
            parent = SEPARATOR.join(levels[:depth])
            if parent not in seen and parent not in subscribed and rx.fullmatch(parent):
                seen.add(parent)
                out.append(rsp.list_entry(["\\Noselect"], SEPARATOR, parent, kind=b"LSUB"))
    return out


# -- STATUS (RFC 3501 §6.3.10, RFC 7162 §3.1.6, RFC 8438) ----------------------------------


async def status_values(store: Store, box: Mailbox, items: Sequence[str]) -> list[tuple[str, int]]:
    needs_snapshot = any(item in ("UNSEEN", "RECENT") for item in items)
    snap = await store.mailbox_snapshot(box.id, with_uids=False) if needs_snapshot else None
    if snap is not None:
        box = snap.mailbox
    values = {
        "MESSAGES": box.messages,
        "UIDNEXT": int(box.uidnext),
        "UIDVALIDITY": box.uidvalidity,
        "HIGHESTMODSEQ": int(box.highestmodseq),
        "SIZE": box.size,
        "UNSEEN": snap.unseen if snap else 0,
        "RECENT": snap.recent if snap else 0,
    }
    return [(item, values[item]) for item in items]


async def status_response(store: Store, box: Mailbox, items: Sequence[str]) -> rsp.Untagged:
    return rsp.status(box.name, await status_values(store, box, items))


async def find(store: Store, account_id: AccountId, name: str) -> Mailbox:
    """The mailbox called `name`; Refused with [NONEXISTENT] (RFC 5530) if none."""
    try:
        return await store.get_mailbox(account_id, check_name(name))
    except api.NotFound:
        raise Refused(NO_SUCH_MAILBOX, rsp.NONEXISTENT) from None


async def find_target(store: Store, account_id: AccountId, name: str) -> Mailbox:
    """A COPY/MOVE/APPEND destination: [TRYCREATE] when missing (RFC 3501 §6.3.11)."""
    try:
        return await store.get_mailbox(account_id, check_name(name))
    except api.NotFound:
        raise Refused("Mailbox does not exist", rsp.TRYCREATE) from None


# -- CREATE / DELETE / RENAME / SUBSCRIBE ----------------------------------------------------


def _special_use(uses: tuple[str, ...]) -> str | None:
    """RFC 6154 §3 CREATE (USE (...)): one attribute we support, else NO [USEATTR]."""
    if not uses:
        return None
    canonical = {use.lower(): use for use in SPECIAL_USES}
    chosen = [canonical.get(use.lower()) for use in uses]
    if len(chosen) != 1 or chosen[0] is None:
        raise Refused("Unsupported special-use attribute", rsp.USEATTR)
    return chosen[0]


async def _create_superiors(store: Store, account_id: AccountId, name: str) -> None:
    """RFC 3501 §6.3.3: create the superior levels a new name needs."""
    levels = name.split(SEPARATOR)
    for depth in range(1, len(levels)):
        parent = SEPARATOR.join(levels[:depth])
        try:
            await store.create_mailbox(account_id, parent)
        except api.AlreadyExists:
            continue


async def on_create(store: Store, account_id: AccountId, command: cmd.Create) -> Responses:
    # RFC 3501 §6.3.3: a trailing separator only says the name will have inferiors.
    name = check_name(command.mailbox.removesuffix(SEPARATOR))
    use = _special_use(command.special_use)
    if name == INBOX:
        raise Refused("INBOX always exists", rsp.ALREADYEXISTS)
    await _create_superiors(store, account_id, name)
    try:
        await store.create_mailbox(account_id, name, use)
    except api.AlreadyExists:
        raise Refused("Mailbox already exists", rsp.ALREADYEXISTS) from None
    return []


async def on_delete(store: Store, account_id: AccountId, command: cmd.Delete) -> Responses:
    name = check_name(command.mailbox)
    if name == INBOX:
        raise Refused("INBOX cannot be deleted", rsp.CANNOT)  # RFC 3501 §6.3.4
    try:
        box = await store.get_mailbox(account_id, name)
    except api.NotFound:
        nodes = hierarchy(await store.list_mailboxes(account_id))
        if name in nodes:
            # RFC 3501 §6.3.4: a \Noselect name with inferiors cannot be deleted.
            raise Refused("Mailbox has inferior hierarchical names", rsp.INUSE) from None
        raise Refused(NO_SUCH_MAILBOX, rsp.NONEXISTENT) from None
    await store.delete_mailbox(box.id)
    return []


async def on_rename(store: Store, account_id: AccountId, command: cmd.Rename) -> Responses:
    old = await find(store, account_id, command.old)
    new = check_name(command.new)
    if new == INBOX:
        raise Refused("Cannot rename to INBOX", rsp.ALREADYEXISTS)
    if new == old.name:
        raise Refused("Mailbox already exists", rsp.ALREADYEXISTS)
    await _create_superiors(store, account_id, new)
    try:
        await store.rename_mailbox(old.id, new)
    except api.AlreadyExists:
        raise Refused("Mailbox already exists", rsp.ALREADYEXISTS) from None
    return []


async def on_subscribe(store: Store, account_id: AccountId, command: cmd.Subscribe) -> Responses:
    # RFC 3501 §6.3.6: a name may be subscribed before (or after) its mailbox exists.
    await store.set_subscription(account_id, check_name(command.mailbox), True)
    return []


async def on_unsubscribe(
    store: Store, account_id: AccountId, command: cmd.Unsubscribe
) -> Responses:
    # RFC 3501 §6.3.7: OK only if the name was subscribed and now is not.
    if not await store.set_subscription(account_id, check_name(command.mailbox), False):
        raise Refused("Mailbox is not subscribed", rsp.NONEXISTENT)
    return []


async def on_status(store: Store, account_id: AccountId, command: cmd.Status) -> Responses:
    box = await find(store, account_id, command.mailbox)
    return [await status_response(store, box, command.items)]


async def on_namespace(store: Store, account_id: AccountId, command: cmd.Namespace) -> Responses:
    # RFC 2342 §5: one personal namespace, no prefix, "/" as separator.
    return [rsp.namespace([("", SEPARATOR)])]


MailboxHandler = Callable[[Store, AccountId, Any], Awaitable[Responses]]

# Commands of the authenticated state that only touch mailboxes: handler and verb.
HANDLERS: Final[dict[type[cmd.Command], tuple[MailboxHandler, str]]] = {
    cmd.Create: (on_create, "CREATE"),
    cmd.Delete: (on_delete, "DELETE"),
    cmd.Rename: (on_rename, "RENAME"),
    cmd.Subscribe: (on_subscribe, "SUBSCRIBE"),
    cmd.Unsubscribe: (on_unsubscribe, "UNSUBSCRIBE"),
    cmd.List: (on_list, "LIST"),
    cmd.Lsub: (on_lsub, "LSUB"),
    cmd.Status: (on_status, "STATUS"),
    cmd.Namespace: (on_namespace, "NAMESPACE"),
}
