"""IMAP4rev1 command grammar (RFC 3501 §6, §9 and the extensions' ABNF) to typed commands.

    parse_command([b'a1 SELECT "INBOX" (CONDSTORE)'])
        -> Parsed("a1", Select("INBOX", condstore=True))
    parse_command([b"a1 FROB"])
        -> Bad("a1", Tagged("a1", Status.BAD, "Unknown command FROB"))

`parse_command` is the one place where grammar errors become responses: a tagged BAD, an
untagged BAD when no tag could be read (RFC 3501 §7.1.3), or NO [BADCHARSET] for a SEARCH
charset we do not know (§6.4.4). It never raises.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pillarbox.imap import commands as c
from pillarbox.imap.lexer import MAX_NUMBER64, Lexer, SyntaxFailure
from pillarbox.imap.parse_items import SUPPORTED_CHARSETS, parse_fetch_items, parse_search
from pillarbox.imap.responses import Code, Status, Tagged, UntaggedStatus, badcharset

# RFC 3501 §9 tag: 1*<any ASTRING-CHAR except "+">.
TAG: Final = re.compile(rb"[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+")
_VERB: Final = re.compile(rb"[A-Za-z]+")
# RFC 2971 §3.3: at most 30 field-value pairs, fields 30 octets, values 1024 octets.
MAX_ID_PAIRS: Final = 30
MAX_ID_FIELD: Final = 30
MAX_ID_VALUE: Final = 1024
# RFC 4731 §3.1 ESEARCH return options.
ESEARCH_OPTIONS: Final = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
# RFC 5258 §3 selection options and return options we implement (RFC 6154 §5.1, §5.2).
LIST_SELECTION: Final = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN: Final = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
# RFC 5258 §6 list-select-base-opt: RECURSIVEMATCH (a list-select-mod-opt) needs one of
# these; REMOTE and SPECIAL-USE (RFC 6154 §6) are list-select-independent-opt.
LIST_SELECTION_BASE: Final = frozenset({"SUBSCRIBED"})
# A client sends the same few command lines again and again (its FETCH of the newest
# headers, SEARCH UNSEEN, NOOP); what follows the tag parses to the same frozen value, which
# every session may share. Lines with literals are not kept, nor commands that carry a
# password (nothing secret stays in memory longer than its command).
PARSED_LINES: Final = 1024
MAX_PARSED_LINE: Final = 512
_SECRET_COMMANDS: Final = (c.Login, c.Authenticate)
_parsed: dict[bytes, c.Command] = {}
# RFC 6154 §2 special-use attributes, canonical spelling by upper-case.
SPECIAL_USE: Final = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}


@dataclass(frozen=True, slots=True)
class Parsed:
    tag: str
    command: c.Command


@dataclass(frozen=True, slots=True)
class Bad:
    """A command that cannot run: `response` is what to send (tag None: no tag read)."""

    tag: str | None
    response: Tagged | UntaggedStatus


class _Refused(Exception):
    """A well-formed command refused with a NO (e.g. unknown SEARCH charset)."""

    def __init__(self, text: str, code: Code) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def parse_command(parts: list[bytes]) -> Parsed | Bad:
    """Parse one framed command (see `lexer`); never raises."""
    if len(parts) != 1:
        return _parse(parts)
    line = parts[0]
    tag, space, rest = line.partition(b" ")
    known = _parsed.get(rest) if space else None
    if known is not None and TAG.fullmatch(tag):
        return Parsed(tag.decode("ascii"), known)
    result = _parse(parts)
    if (
        isinstance(result, Parsed)
        and len(rest) <= MAX_PARSED_LINE
        and not isinstance(result.command, _SECRET_COMMANDS)
    ):
        if len(_parsed) >= PARSED_LINES:
            _parsed.clear()
        _parsed[rest] = result.command
    return result


def _parse(parts: list[bytes]) -> Parsed | Bad:
    lexer = Lexer(parts)
    found = lexer.match(TAG)
    if found is None or not lexer.skip(b" "):
        return Bad(None, UntaggedStatus(Status.BAD, "Missing or invalid tag"))
    tag = found.group().decode("ascii")
    try:
        return Parsed(tag, _parse_verb(lexer))
    except SyntaxFailure as failure:
        return Bad(tag, Tagged(tag, Status.BAD, str(failure.args[0])))
    except _Refused as refused:
        return Bad(tag, Tagged(tag, Status.NO, refused.text, refused.code))
    except RecursionError:  # pragma: no cover - depth limits make this unreachable
        return Bad(tag, Tagged(tag, Status.BAD, "Command too complex"))


def _parse_verb(lexer: Lexer) -> c.Command:
    found = lexer.match(_VERB)
    if found is None:
        raise SyntaxFailure("Missing command")
    verb = found.group().upper()
    if verb == b"UID":
        lexer.sp()
        sub = lexer.match(_VERB)
        parser = _UID_COMMANDS.get(sub.group().upper()) if sub else None
        if parser is None:
            raise SyntaxFailure("Unknown UID command")
    else:
        parser = _COMMANDS.get(verb)
        if parser is None:
            raise SyntaxFailure(f"Unknown command {verb.decode()[:20]}")
    command = parser(lexer)
    lexer.end()
    return command


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SyntaxFailure(f"{what} is not valid UTF-8") from None


def _options(lexer: Lexer) -> list[str]:
    """`"(" [atom *(SP atom)] ")"`, upper-cased."""
    lexer.expect(b"(")
    options: list[str] = []
    while not lexer.skip(b")"):
        if options:
            lexer.sp()
        options.append(lexer.atom("an option").decode("ascii").upper())
    return options


# --- commands without arguments ---------------------------------------------------


def _no_args(command: c.Command) -> Callable[[Lexer], c.Command]:
    return lambda _lexer: command


# --- not authenticated ----------------------------------------------------------


def _authenticate(lexer: Lexer) -> c.Authenticate:
    """RFC 3501 §6.2.2, RFC 4959 §3 initial response ("=" for empty)."""
    lexer.sp()
    mechanism = lexer.atom("a mechanism").decode("ascii").upper()
    if not lexer.skip(b" "):
        return c.Authenticate(mechanism)
    raw = lexer.rest_of_text()
    return c.Authenticate(mechanism, decode_sasl(raw))


def decode_sasl(raw: bytes) -> bytes:
    """RFC 4959 §3 / RFC 3501 §6.2.2 base64 client data ("=" means empty)."""
    if raw == b"=":
        return b""
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise SyntaxFailure("Invalid base64 data") from None


def _login(lexer: Lexer) -> c.Login:
    lexer.sp()
    user = _text(lexer.astring("a user name"), "The user name")
    lexer.sp()
    password = _text(lexer.astring("a password"), "The password")
    return c.Login(user, password)


# --- authenticated ----------------------------------------------------------------


def _select_params(lexer: Lexer) -> bool:
    """RFC 4466 §2.1 select-params; only RFC 7162 §3.1.8 CONDSTORE is known."""
    if not lexer.skip(b" "):
        return False
    options = _options(lexer)
    if any(option != "CONDSTORE" for option in options):
        raise SyntaxFailure("Unknown SELECT parameter")
    return bool(options)


def _select(lexer: Lexer) -> c.Select:
    lexer.sp()
    mailbox = lexer.mailbox()
    return c.Select(mailbox, _select_params(lexer))


def _examine(lexer: Lexer) -> c.Examine:
    lexer.sp()
    mailbox = lexer.mailbox()
    return c.Examine(mailbox, _select_params(lexer))


def _create(lexer: Lexer) -> c.Create:
    """RFC 3501 §6.3.3; RFC 6154 §3 `CREATE name (USE (\\Sent))`."""
    lexer.sp()
    mailbox = lexer.mailbox()
    uses: list[str] = []
    if lexer.skip(b" "):
        lexer.expect(b"(USE (", "(USE (")
        while not lexer.skip(b")"):
            if uses:
                lexer.sp()
            lexer.expect(b"\\", "a special-use attribute")
            attribute = SPECIAL_USE.get("\\" + lexer.atom().decode("ascii").upper())
            if attribute is None:
                raise _Refused("Unknown special-use attribute", Code("USEATTR"))
            uses.append(attribute)
        lexer.expect(b")")
    return c.Create(mailbox, tuple(uses))


def _one_mailbox(kind: Callable[[str], c.Command]) -> Callable[[Lexer], c.Command]:
    def parse(lexer: Lexer) -> c.Command:
        lexer.sp()
        return kind(lexer.mailbox())

    return parse


def _rename(lexer: Lexer) -> c.Rename:
    lexer.sp()
    old = lexer.mailbox()
    lexer.sp()
    return c.Rename(old, lexer.mailbox())


def _pattern(lexer: Lexer) -> str:
    return lexer.mailbox_text(lexer.list_mailbox())


def _list(lexer: Lexer) -> c.List:
    """RFC 3501 §6.3.8 with RFC 5258 §6 extended syntax and RFC 5819 RETURN (STATUS)."""
    lexer.sp()
    selection: list[str] = []
    # RFC 5258 §3: selection options, a pattern list or return options (even empty
    # ones, `LIST () "" ""`) make the command extended.
    extended = lexer.peek() == ord("(")
    if extended:
        selection = _options(lexer)
        lexer.sp()
    reference = lexer.mailbox_text(lexer.astring("a reference name"))
    lexer.sp()
    if lexer.skip(b"("):
        extended = True
        patterns = [_pattern(lexer)]
        while not lexer.skip(b")"):
            lexer.sp()
            patterns.append(_pattern(lexer))
    else:
        patterns = [_pattern(lexer)]
    returns, status_items = _list_returns(lexer)
    _check_selection(selection)
    return c.List(
        reference,
        tuple(patterns),
        frozenset(selection),
        frozenset(returns or ()),
        status_items,
        extended or returns is not None,
    )


def _check_selection(selection: list[str]) -> None:
    """RFC 5258 §3: BAD for unknown options and for RECURSIVEMATCH without a base option."""
    if not set(selection) <= LIST_SELECTION:
        raise SyntaxFailure("Unknown LIST selection option")
    # RFC 5258 §3.1 RECURSIVEMATCH, §6 list-select-opts: not alone, not only with REMOTE.
    if "RECURSIVEMATCH" in selection and not LIST_SELECTION_BASE & set(selection):
        raise SyntaxFailure("RECURSIVEMATCH needs the SUBSCRIBED selection option")


def _list_returns(lexer: Lexer) -> tuple[list[str] | None, tuple[str, ...] | None]:
    """RFC 5258 §6 list-return-opts, RFC 5819 §4 status-option; None when absent."""
    if not lexer.skip(b" "):
        return None, None
    lexer.expect(b"RETURN (", "RETURN (")
    returns: list[str] = []
    status_items: tuple[str, ...] | None = None
    while not lexer.skip(b")"):
        if returns or status_items is not None:
            lexer.sp()
        option = lexer.atom("a return option").decode("ascii").upper()
        if option == "STATUS":
            lexer.sp()
            status_items = _status_items(lexer)
        elif option in LIST_RETURN:
            returns.append(option)
        else:
            raise SyntaxFailure("Unknown LIST return option")
    return returns, status_items


def _lsub(lexer: Lexer) -> c.Lsub:
    lexer.sp()
    reference = lexer.mailbox_text(lexer.astring("a reference name"))
    lexer.sp()
    return c.Lsub(reference, _pattern(lexer))


def _status_items(lexer: Lexer) -> tuple[str, ...]:
    items = _options(lexer)
    if not items or not set(items) <= c.STATUS_ITEMS:
        raise SyntaxFailure("Invalid STATUS items")
    return tuple(items)


def _status(lexer: Lexer) -> c.Status:
    lexer.sp()
    mailbox = lexer.mailbox()
    lexer.sp()
    return c.Status(mailbox, _status_items(lexer))


def _append(lexer: Lexer) -> c.Append:
    """RFC 3501 §6.3.11: APPEND mailbox [flag-list] [date-time] literal (RFC 3516 literal8)."""
    lexer.sp()
    mailbox = lexer.mailbox()
    lexer.sp()
    flags: tuple[str, ...] = ()
    if lexer.peek() == ord("("):
        flags = lexer.flag_list()
        lexer.sp()
    date = None
    if lexer.peek() == ord('"'):
        date = lexer.date_time()
        lexer.sp()
    message = lexer.literal8()
    if message is None:
        raise SyntaxFailure("Expected the message as a literal")
    return c.Append(mailbox, flags, date, message)


def _id(lexer: Lexer) -> c.Id:
    """RFC 2971 §3.3: ID ("field" "value" ...) or ID NIL."""
    lexer.sp()
    if lexer.skip(b"NIL"):
        return c.Id(None)
    lexer.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while not lexer.skip(b")"):
        if params:
            lexer.sp()
        key = lexer.string("a field name")
        lexer.sp()
        value = lexer.nstring()
        if len(params) >= MAX_ID_PAIRS or len(key) > MAX_ID_FIELD:
            raise SyntaxFailure("Too many or too long ID fields")
        if value is not None and len(value) > MAX_ID_VALUE:
            raise SyntaxFailure("ID value too long")
        params.append((_text(key, "ID"), None if value is None else _text(value, "ID")))
    return c.Id(tuple(params))


def _enable(lexer: Lexer) -> c.Enable:
    """RFC 5161 §3.1: ENABLE capability *(SP capability)."""
    names: list[str] = []
    while lexer.skip(b" "):
        names.append(lexer.atom("a capability").decode("ascii").upper())
    if not names:
        raise SyntaxFailure("Expected a capability")
    return c.Enable(tuple(names))


# --- selected ---------------------------------------------------------------------


def _search(uid: bool) -> Callable[[Lexer], c.Search]:
    def parse(lexer: Lexer) -> c.Search:
        """RFC 3501 §6.4.4, RFC 4731 §3.1 RETURN options."""
        lexer.sp()
        returns: tuple[str, ...] | None = None
        if lexer.skip(b"RETURN "):
            options = _options(lexer)
            if not set(options) <= ESEARCH_OPTIONS:
                raise SyntaxFailure("Unknown SEARCH return option")
            returns = tuple(options)
            lexer.sp()
        charset = None
        if lexer.skip(b"CHARSET "):
            charset = lexer.astring("a charset").decode("ascii", "replace").upper()
            if charset not in SUPPORTED_CHARSETS:
                raise _Refused("Unsupported charset", badcharset(sorted(SUPPORTED_CHARSETS)))
            lexer.sp()
        return c.Search(parse_search(lexer), uid, charset, returns)

    return parse


def _fetch(uid: bool) -> Callable[[Lexer], c.Fetch]:
    def parse(lexer: Lexer) -> c.Fetch:
        """RFC 3501 §6.4.5, RFC 7162 §3.1.4 (CHANGEDSINCE n)."""
        lexer.sp()
        numbers = lexer.sequence_set()
        lexer.sp()
        items = parse_fetch_items(lexer)
        changedsince = None
        if lexer.skip(b" "):
            lexer.expect(b"(CHANGEDSINCE ", "(CHANGEDSINCE")
            changedsince = lexer.number(MAX_NUMBER64, nonzero=True)
            lexer.expect(b")")
            if c.ModSeq() not in items:
                items += (c.ModSeq(),)  # RFC 7162 §3.1.4.1: implies MODSEQ
        if uid and c.Uid() not in items:
            items = (c.Uid(), *items)  # RFC 3501 §6.4.8: UID always in UID FETCH answers
        return c.Fetch(numbers, items, uid, changedsince)

    return parse


_STORE_MODES: Final = {
    b"FLAGS": c.StoreMode.REPLACE,
    b"+FLAGS": c.StoreMode.ADD,
    b"-FLAGS": c.StoreMode.REMOVE,
}


def _store(uid: bool) -> Callable[[Lexer], c.Store]:
    def parse(lexer: Lexer) -> c.Store:
        """RFC 3501 §6.4.6, RFC 7162 §3.1.3 (UNCHANGEDSINCE n)."""
        lexer.sp()
        numbers = lexer.sequence_set()
        lexer.sp()
        unchangedsince = None
        if lexer.skip(b"(UNCHANGEDSINCE "):
            unchangedsince = lexer.number(MAX_NUMBER64)
            lexer.expect(b")")
            lexer.sp()
        name = lexer.text_until_space().upper()
        silent = name.endswith(b".SILENT")
        mode = _STORE_MODES.get(name.removesuffix(b".SILENT"))
        if mode is None:
            raise SyntaxFailure("Expected FLAGS, +FLAGS or -FLAGS")
        lexer.sp()
        if lexer.peek() == ord("("):
            flags = lexer.flag_list()
        else:
            flag_names = [lexer.flag()]
            while lexer.skip(b" "):
                flag_names.append(lexer.flag())
            flags = tuple(flag_names)
        return c.Store(numbers, mode, flags, silent, uid, unchangedsince)

    return parse


def _copy_like(kind: type[c.Copy] | type[c.Move], uid: bool) -> Callable[[Lexer], c.Command]:
    def parse(lexer: Lexer) -> c.Command:
        lexer.sp()
        numbers = lexer.sequence_set()
        lexer.sp()
        return kind(numbers, lexer.mailbox(), uid)

    return parse


def _uid_expunge(lexer: Lexer) -> c.UidExpunge:
    """RFC 4315 §2.1."""
    lexer.sp()
    return c.UidExpunge(lexer.sequence_set())


_COMMANDS: Final[dict[bytes, Callable[[Lexer], c.Command]]] = {
    b"CAPABILITY": _no_args(c.Capability()),
    b"NOOP": _no_args(c.Noop()),
    b"LOGOUT": _no_args(c.Logout()),
    b"STARTTLS": _no_args(c.StartTls()),
    b"AUTHENTICATE": _authenticate,
    b"LOGIN": _login,
    b"SELECT": _select,
    b"EXAMINE": _examine,
    b"CREATE": _create,
    b"DELETE": _one_mailbox(c.Delete),
    b"RENAME": _rename,
    b"SUBSCRIBE": _one_mailbox(c.Subscribe),
    b"UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    b"LIST": _list,
    b"LSUB": _lsub,
    b"STATUS": _status,
    b"APPEND": _append,
    b"NAMESPACE": _no_args(c.Namespace()),
    b"ID": _id,
    b"ENABLE": _enable,
    b"IDLE": _no_args(c.Idle()),
    b"CHECK": _no_args(c.Check()),
    b"CLOSE": _no_args(c.Close()),
    b"UNSELECT": _no_args(c.Unselect()),
    b"EXPUNGE": _no_args(c.Expunge()),
    b"SEARCH": _search(uid=False),
    b"FETCH": _fetch(uid=False),
    b"STORE": _store(uid=False),
    b"COPY": _copy_like(c.Copy, uid=False),
    b"MOVE": _copy_like(c.Move, uid=False),
}

# RFC 3501 §6.4.8 UID COPY/FETCH/STORE/SEARCH; RFC 4315 UID EXPUNGE; RFC 6851 UID MOVE.
_UID_COMMANDS: Final[dict[bytes, Callable[[Lexer], c.Command]]] = {
    b"SEARCH": _search(uid=True),
    b"FETCH": _fetch(uid=True),
    b"STORE": _store(uid=True),
    b"COPY": _copy_like(c.Copy, uid=True),
    b"MOVE": _copy_like(c.Move, uid=True),
    b"EXPUNGE": _uid_expunge,
}

# The verbs the engine recognises before parsing (to pick the literal limit).
VERBS: Final = frozenset(_COMMANDS)
