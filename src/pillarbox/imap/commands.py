"""Typed IMAP4rev1 commands, search keys and fetch items, as the parser produces them.

Conventions (the parser guarantees them, the session relies on them):
- Mailbox names are `str`, decoded from modified UTF-7 (RFC 3501 §5.1.3); any casing of
  INBOX is "INBOX" (§5.1). List patterns are decoded the same way but never normalised.
- Flags are `str`: system flags in canonical case ("\\Seen", "\\Answered", "\\Flagged",
  "\\Deleted", "\\Draft", "\\Recent"), keywords exactly as sent (RFC 3501 §2.3.2).
- Atoms that name options (STATUS items, ENABLE capabilities, mechanisms, LIST options)
  are upper-cased.
- `Fetch.items` already has the ALL/FAST/FULL macros expanded, and gets `Uid()` added for
  UID FETCH (RFC 3501 §6.4.8) and `ModSeq()` for CHANGEDSINCE (RFC 7162 §3.1.4.1).
- Search strings are `str` (decoded with the command's charset).
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import ClassVar

from pillarbox.imap.sequence import SequenceSet

# --- search keys (RFC 3501 §6.4.4, RFC 7162 §3.1.5) ----------------------------------


@dataclass(frozen=True, slots=True)
class SearchAll:
    """ALL: every message."""


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """Keys side by side (and parenthesised lists): all must match."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class SearchOr:
    """OR key1 key2."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchNot:
    """NOT key."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag is set (`present`) or not: ANSWERED/UNANSWERED, DELETED, DRAFT, FLAGGED, SEEN,
    RECENT/OLD (flag "\\Recent"), KEYWORD/UNKEYWORD (a keyword). NEW is parsed as
    SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", False)))."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """HEADER field value, and BCC/CC/FROM/SUBJECT/TO value (field lower-cased: "from").
    An empty value matches every message that has the field (RFC 3501 §6.4.4)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchBody:
    """BODY string: in the body (decoded content)."""

    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """TEXT string: in the header or body."""

    value: str


class DateOp(enum.Enum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE date (internal date, `sent` False) and SENTBEFORE/SENTON/SENTSINCE
    (the Date: header, `sent` True). Dates compare without time or zone (§6.4.4)."""

    op: DateOp
    date: datetime.date
    sent: bool = False


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER n (`larger` True) / SMALLER n: RFC822.SIZE strictly above / below n."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchUid:
    """UID sequence-set."""

    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchSeq:
    """A bare sequence-set: message sequence numbers."""

    numbers: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """RFC 7162 §3.1.5 MODSEQ [entry-name entry-type] n: mod-sequence >= n. `entry` is
    (name, "priv"|"shared"|"all") when given; the session may ignore it."""

    modseq: int
    entry: tuple[str, str] | None = None


SearchKey = (
    SearchAll
    | SearchAnd
    | SearchOr
    | SearchNot
    | SearchFlag
    | SearchHeader
    | SearchBody
    | SearchText
    | SearchDate
    | SearchSize
    | SearchUid
    | SearchSeq
    | SearchModSeq
)

# --- fetch items (RFC 3501 §6.4.5, RFC 3516 §4.2, RFC 7162 §3.1.4) --------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    NAME: ClassVar[bytes] = b"ENVELOPE"


@dataclass(frozen=True, slots=True)
class Flags:
    NAME: ClassVar[bytes] = b"FLAGS"


@dataclass(frozen=True, slots=True)
class InternalDate:
    NAME: ClassVar[bytes] = b"INTERNALDATE"


@dataclass(frozen=True, slots=True)
class Rfc822:
    """RFC822: like BODY[] (sets \\Seen), answered under the name RFC822."""

    NAME: ClassVar[bytes] = b"RFC822"


@dataclass(frozen=True, slots=True)
class Rfc822Header:
    """RFC822.HEADER: like BODY.PEEK[HEADER]."""

    NAME: ClassVar[bytes] = b"RFC822.HEADER"


@dataclass(frozen=True, slots=True)
class Rfc822Size:
    NAME: ClassVar[bytes] = b"RFC822.SIZE"


@dataclass(frozen=True, slots=True)
class Rfc822Text:
    """RFC822.TEXT: like BODY[TEXT] (sets \\Seen)."""

    NAME: ClassVar[bytes] = b"RFC822.TEXT"


@dataclass(frozen=True, slots=True)
class Body:
    """BODY without a section: the non-extensible BODYSTRUCTURE."""

    NAME: ClassVar[bytes] = b"BODY"


@dataclass(frozen=True, slots=True)
class BodyStructure:
    NAME: ClassVar[bytes] = b"BODYSTRUCTURE"


@dataclass(frozen=True, slots=True)
class Uid:
    NAME: ClassVar[bytes] = b"UID"


@dataclass(frozen=True, slots=True)
class ModSeq:
    """RFC 7162 §3.1.4 MODSEQ."""

    NAME: ClassVar[bytes] = b"MODSEQ"


class SectionSpec(enum.Enum):
    """The text part of a section (RFC 3501 §6.4.5); ALL is the empty spec `BODY[1]`."""

    ALL = ""
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True)
class Section:
    """`part` is the part path ((), (1,), (1, 2)...), `fields` the names for HEADER.FIELDS
    (.NOT) exactly as the client sent them (compare case-insensitively)."""

    part: tuple[int, ...] = ()
    spec: SectionSpec = SectionSpec.ALL
    fields: tuple[str, ...] = ()

    def text(self) -> str:
        """The section as written inside the brackets, e.g. `1.HEADER.FIELDS (FROM TO)`."""
        pieces = [str(n) for n in self.part]
        if self.spec is not SectionSpec.ALL:
            pieces.append(self.spec.value)
        text = ".".join(pieces)
        if self.spec in (SectionSpec.HEADER_FIELDS, SectionSpec.HEADER_FIELDS_NOT):
            text += " (" + " ".join(self.fields) + ")"
        return text


@dataclass(frozen=True, slots=True)
class BodySection:
    """BODY[section]<origin.length> and BODY.PEEK[...] (`peek`: do not set \\Seen).
    `partial` is (origin, length) in octets."""

    section: Section = field(default_factory=Section)
    peek: bool = False
    partial: tuple[int, int] | None = None

    def response_name(self) -> bytes:
        """RFC 3501 §7.4.2: `BODY[section]<origin>` (no PEEK, no length)."""
        origin = f"<{self.partial[0]}>" if self.partial is not None else ""
        return f"BODY[{self.section.text()}]{origin}".encode()


@dataclass(frozen=True, slots=True)
class Binary:
    """RFC 3516 §4.2 BINARY[part]<partial> and BINARY.PEEK: the part with its content
    transfer encoding removed."""

    part: tuple[int, ...] = ()
    peek: bool = False
    partial: tuple[int, int] | None = None

    def response_name(self) -> bytes:
        origin = f"<{self.partial[0]}>" if self.partial is not None else ""
        return f"BINARY[{'.'.join(map(str, self.part))}]{origin}".encode()


@dataclass(frozen=True, slots=True)
class BinarySize:
    """RFC 3516 §4.2 BINARY.SIZE[part]."""

    part: tuple[int, ...] = ()

    def response_name(self) -> bytes:
        return f"BINARY.SIZE[{'.'.join(map(str, self.part))}]".encode()


FetchItem = (
    Envelope
    | Flags
    | InternalDate
    | Rfc822
    | Rfc822Header
    | Rfc822Size
    | Rfc822Text
    | Body
    | BodyStructure
    | Uid
    | ModSeq
    | BodySection
    | Binary
    | BinarySize
)


def fetch_item_name(item: FetchItem) -> bytes:
    """The name a FETCH response gives this item (RFC 3501 §7.4.2)."""
    if isinstance(item, BodySection | Binary | BinarySize):
        return item.response_name()
    return item.NAME


# --- commands: any state (RFC 3501 §6.1) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Logout:
    pass


# --- not authenticated (§6.2) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Authenticate:
    """AUTHENTICATE mechanism [initial-response] (RFC 4959 SASL-IR). `mechanism` upper-
    cased; `initial` base64-decoded, b"" for "=", None when absent."""

    mechanism: str
    initial: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    password: str = field(repr=False)


# --- authenticated (§6.3) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT mailbox [(CONDSTORE)] (RFC 7162 §3.1.8)."""

    mailbox: str
    condstore: bool = False


@dataclass(frozen=True, slots=True)
class Examine:
    mailbox: str
    condstore: bool = False


@dataclass(frozen=True, slots=True)
class Create:
    """CREATE mailbox [(USE (\\Drafts ...))] (RFC 6154 §3 CREATE-SPECIAL-USE)."""

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    mailbox: str


@dataclass(frozen=True, slots=True)
class List:
    """LIST [(selection)] reference patterns [RETURN (options)] (RFC 3501 §6.3.8, RFC 5258
    LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE).

    `selection`: upper-cased options such as SUBSCRIBED, SPECIAL-USE, RECURSIVEMATCH.
    `returns`: SUBSCRIBED, CHILDREN, SPECIAL-USE. `status_items`: the STATUS items of
    RETURN (STATUS (...)), None when not asked. `extended`: any LIST-EXTENDED syntax used
    (several patterns, selection or return options), so the answer must follow RFC 5258.
    """

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status_items: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub:
    reference: str
    pattern: str


# RFC 3501 §6.3.10, RFC 7162 §3.1.6 HIGHESTMODSEQ, RFC 8438 SIZE
STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE"}
)


@dataclass(frozen=True, slots=True)
class Status:
    """STATUS mailbox (items): items upper-cased, from STATUS_ITEMS, in the order given."""

    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND mailbox [(flags)] [date-time] literal. `date` is timezone-aware."""

    mailbox: str
    flags: tuple[str, ...]
    date: datetime.datetime | None
    message: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Namespace:
    """RFC 2342 NAMESPACE."""


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971 ID: `params` is None for NIL, else (field, value) pairs in order."""

    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Enable:
    """RFC 5161 ENABLE: capability names upper-cased."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Idle:
    """RFC 2177 IDLE: the session answers with a Continuation, then the engine gives a
    `Done` event for the client's DONE line."""


# --- selected (§6.4) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    pass


@dataclass(frozen=True, slots=True)
class Unselect:
    """RFC 3691 UNSELECT."""


@dataclass(frozen=True, slots=True)
class Expunge:
    pass


@dataclass(frozen=True, slots=True)
class UidExpunge:
    """RFC 4315 §2.1 UID EXPUNGE uid-set."""

    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class Search:
    """[UID] SEARCH [RETURN (options)] [CHARSET c] keys. `charset` upper-cased or None.
    `returns` is None for plain SEARCH; a tuple (RFC 4731 ESEARCH: MIN MAX ALL COUNT SAVE,
    upper-cased; () means ALL) asks for an ESEARCH answer."""

    key: SearchKey
    uid: bool = False
    charset: str | None = None
    returns: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """[UID] FETCH set items [(CHANGEDSINCE n)] (RFC 7162 §3.1.4)."""

    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changedsince: int | None = None


class StoreMode(enum.Enum):
    REPLACE = "FLAGS"
    ADD = "+FLAGS"
    REMOVE = "-FLAGS"


@dataclass(frozen=True, slots=True)
class Store:
    """[UID] STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] (flags)."""

    sequence_set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    """RFC 6851 MOVE / UID MOVE."""

    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False


Command = (
    Capability
    | Noop
    | Logout
    | StartTls
    | Authenticate
    | Login
    | Select
    | Examine
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | List
    | Lsub
    | Status
    | Append
    | Namespace
    | Id
    | Enable
    | Idle
    | Check
    | Close
    | Unselect
    | Expunge
    | UidExpunge
    | Search
    | Fetch
    | Store
    | Copy
    | Move
)

# RFC 3501 §6.1-§6.4: which commands each protocol state allows (IDLE, NAMESPACE, ENABLE
# and ID follow their RFCs: ID in any state, the others once authenticated).
ANY_STATE: frozenset[type[Command]] = frozenset({Capability, Noop, Logout, Id})
NOT_AUTHENTICATED: frozenset[type[Command]] = ANY_STATE | {StartTls, Authenticate, Login}
AUTHENTICATED: frozenset[type[Command]] = ANY_STATE | {
    Select,
    Examine,
    Create,
    Delete,
    Rename,
    Subscribe,
    Unsubscribe,
    List,
    Lsub,
    Status,
    Append,
    Namespace,
    Enable,
    Idle,
}
SELECTED: frozenset[type[Command]] = AUTHENTICATED | {
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge,
    Search,
    Fetch,
    Store,
    Copy,
    Move,
}
