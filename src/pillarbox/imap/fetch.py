"""FETCH data items (RFC 3501 §6.4.5, §7.4.2; RFC 3516 BINARY; RFC 7162 MODSEQ).

The MIME engine does the work: `pillarbox.mime.imapview` writes ENVELOPE and BODYSTRUCTURE,
`pillarbox.mime.sections` slices BODY[section] and decodes BINARY. Parse trees come from the
store's parse cache (filled at delivery); a body without one is parsed once and the tree is
written back, so no message is parsed twice.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from pillarbox.imap import commands as cmd
from pillarbox.imap import responses
from pillarbox.mime import cache as mime_cache
from pillarbox.mime import imapview
from pillarbox.mime import sections as mime_sections
from pillarbox.mime.parts import Part, parse
from pillarbox.store.api import MailboxEntry, MessageId, Store

# FETCH reads bodies in batches: at most this many messages or octets per store read, so
# that a FETCH 1:* BODY[] of a large mailbox never holds more than one batch of bodies.
FETCH_BATCH_MESSAGES: Final = 64
FETCH_BATCH_OCTETS: Final = 8 * 1024 * 1024
# Distinct flag sets whose wire form is kept (a mailbox uses a handful).
FLAG_LISTS: Final = 1024
# FETCH plans kept (one per distinct item list: a client sends the same few again).
PLANS: Final = 256
SEEN: Final = "\\Seen"
RECENT: Final = "\\Recent"

# Items whose answer needs the message bytes / the parse tree.
_NEEDS_BODY: Final = (
    cmd.Rfc822,
    cmd.Rfc822Header,
    cmd.Rfc822Text,
    cmd.BodySection,
    cmd.Binary,
    cmd.BinarySize,
)
_NEEDS_TREE: Final = (*_NEEDS_BODY, cmd.Envelope, cmd.Body, cmd.BodyStructure)


class UnknownTransferEncoding(Exception):
    """BINARY of a part whose encoding we cannot undo: NO [UNKNOWN-CTE] (RFC 3516 §4.3)."""


def sets_seen(item: cmd.FetchItem) -> bool:
    """RFC 3501 §6.4.5: BODY[...] (not PEEK), RFC822 and RFC822.TEXT set \\Seen."""
    if isinstance(item, cmd.BodySection | cmd.Binary):
        return not item.peek
    return isinstance(item, cmd.Rfc822 | cmd.Rfc822Text)


def needs_body(items: tuple[cmd.FetchItem, ...]) -> bool:
    return any(isinstance(item, _NEEDS_TREE) for item in items)


@functools.lru_cache(maxsize=FLAG_LISTS)
def flag_list(flags: frozenset[str], recent: bool) -> bytes:
    """`(\\Seen $Label)`; \\Recent is per session, never stored (RFC 3501 §2.3.2)."""
    names = sorted(flags - {RECENT})
    if recent:
        names.append(RECENT)
    return b"(" + " ".join(names).encode("utf-8") + b")"


class MessageSource:
    """Bodies and parse trees of one session's messages, read a batch at a time; the
    trees come from the store's parse cache, read with the bodies."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load_many(
        self, entries: Sequence[MailboxEntry]
    ) -> dict[MessageId, tuple[bytes, Part]]:
        """Bodies and trees of several messages with one store read (FETCH of many)."""
        found = await self.store.get_messages([e.message_id for e in entries])
        out: dict[MessageId, tuple[bytes, Part]] = {}
        for message_id, (body, cached) in found.items():
            tree = None
            if cached is not None:
                with contextlib.suppress(mime_cache.CacheFormatError):
                    tree = mime_cache.load_tree(cached)
            if tree is None:  # none yet, or an older format: parse and keep it
                tree = parse(body)
                await self.store.set_message_cache(message_id, mime_cache.dump_tree(tree))
            out[message_id] = (body, tree)
        return out


class Message(NamedTuple):
    """What FETCH knows about one message while answering (one per message of a FETCH, so
    a tuple: it is built several times faster than a frozen dataclass, and stays inside
    this package)."""

    entry: MailboxEntry
    recent: bool
    body: bytes | None = None
    tree: Part | None = None


def _section(section: cmd.Section) -> mime_sections.Section:
    text = None if section.spec is cmd.SectionSpec.ALL else section.spec.value
    fields = tuple(name.upper().encode("utf-8") for name in section.fields)
    return mime_sections.Section(section.part, text, fields)


def _literal(data: bytes, binary: bool = False) -> bytes:
    # RFC 3516 §4.2: literal8 ("~{n}") when the content holds NUL octets.
    if binary and b"\x00" in data:
        return b"~{%d}\r\n%s" % (len(data), data)
    return imapview.literal(data)


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    return mime_sections.partial(data, partial[0], partial[1])


def _body_section(item: cmd.BodySection, body: bytes, tree: Part) -> bytes:
    data = mime_sections.section_bytes(body, tree, _section(item.section))
    if data is None:
        # RFC 3501 §6.4.5 gives no error for a missing part; like Dovecot, answer empty.
        return b'""'
    return _literal(_partial(data, item.partial))


def _binary(item: cmd.Binary, body: bytes, tree: Part) -> bytes:
    data = mime_sections.binary(body, tree, item.part)
    if data is mime_sections.BinaryError.UNKNOWN_CTE:
        raise UnknownTransferEncoding
    if isinstance(data, mime_sections.BinaryError):
        return imapview.NIL
    return _literal(_partial(data, item.partial), binary=True)


def _binary_size(item: cmd.BinarySize, body: bytes, tree: Part) -> bytes:
    size = mime_sections.binary_size(body, tree, item.part)
    if size is mime_sections.BinaryError.UNKNOWN_CTE:
        raise UnknownTransferEncoding
    return b"0" if isinstance(size, mime_sections.BinaryError) else b"%d" % size


def item_value(item: cmd.FetchItem, message: Message) -> bytes:
    """The value of one data item (after its name) in a FETCH response."""
    entry = message.entry
    simple = _SIMPLE.get(type(item))
    if simple is not None:
        return simple(message)
    body, tree = message.body, message.tree
    assert body is not None and tree is not None  # needs_body() made the caller load them
    if isinstance(item, cmd.BodySection):
        return _body_section(item, body, tree)
    if isinstance(item, cmd.Binary):
        return _binary(item, body, tree)
    if isinstance(item, cmd.BinarySize):
        return _binary_size(item, body, tree)
    if isinstance(item, cmd.Rfc822):
        return _literal(body)
    if isinstance(item, cmd.Rfc822Header):
        return _literal(body[tree.header_start : tree.body_start])
    if isinstance(item, cmd.Rfc822Text):
        return _literal(body[tree.body_start : tree.body_end])
    raise AssertionError(f"unhandled fetch item {item!r} for uid {entry.uid}")


def _tree(message: Message) -> Part:
    assert message.tree is not None
    return message.tree


_SIMPLE: Final[dict[type, Callable[[Message], bytes]]] = {
    cmd.Flags: lambda m: flag_list(m.entry.flags, m.recent),
    cmd.Uid: lambda m: b"%d" % m.entry.uid,
    cmd.ModSeq: lambda m: b"(%d)" % m.entry.modseq,  # RFC 7162 §3.1.4.1
    cmd.InternalDate: lambda m: responses.date_time(m.entry.internaldate),
    cmd.Rfc822Size: lambda m: b"%d" % m.entry.size,
    cmd.Envelope: lambda m: imapview.message_envelope(_tree(m)),
    cmd.Body: lambda m: imapview.body_structure(_tree(m), extended=False),
    cmd.BodyStructure: lambda m: imapview.body_structure(_tree(m), extended=True),
}


def fetch_data(seq: int, items: tuple[cmd.FetchItem, ...], message: Message) -> responses.FetchData:
    """`* n FETCH (UID 4 FLAGS (\\Seen) BODY[] {n}...)` (RFC 3501 §7.4.2)."""
    return responses.FetchData(
        seq, tuple((cmd.fetch_item_name(item), item_value(item, message)) for item in items)
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """One FETCH's items, worked out once for all the messages it names.

    `content` are the items whose values come from the message bytes alone (ENVELOPE,
    BODY[...], ...: kept in `imap.rendered`), `shape` names them for that cache; `line`
    takes their values ready-made and computes the others (FLAGS, UID, MODSEQ, ...) from
    the entry, writing the response line directly.
    """

    slots: tuple[tuple[bytes, Callable[[Message], bytes] | None], ...]
    content: tuple[cmd.FetchItem, ...]
    shape: str
    uid_only: bool  # every item but UID is a content item (`uid_line` can answer)
    template: bytes  # `* %d FETCH (NAME %b NAME %b)\r\n`: one C-level format per line

    @classmethod
    def of(cls, items: tuple[cmd.FetchItem, ...]) -> Plan:
        slots = tuple(
            (
                cmd.fetch_item_name(item) + b" ",
                None if isinstance(item, _NEEDS_TREE) else _SIMPLE[type(item)],
            )
            for item in items
        )
        content = tuple(item for item in items if isinstance(item, _NEEDS_TREE))
        uid_only = all(isinstance(item, (*_NEEDS_TREE, cmd.Uid)) for item in items)
        names = b" ".join(name.replace(b"%", b"%%") + b"%b" for name, _ in slots)
        template = b"* %d FETCH (" + names + b")\r\n"
        return cls(slots, content, repr(content), uid_only and bool(content), template)

    def content_values(self, message: Message) -> list[bytes]:
        """The values of the content items (the message's body and tree are loaded)."""
        return [item_value(item, message) for item in self.content]

    def uid_line(self, seq: int, uid: int, content: Sequence[bytes]) -> bytes:
        """`line` for a `uid_only` plan, without the entry."""
        values = iter(content)
        uid_value = b"%d" % uid
        return self.template % (
            seq,
            *[next(values) if simple is None else uid_value for _, simple in self.slots],
        )

    def line(self, seq: int, message: Message, content: Sequence[bytes]) -> bytes:
        """`* n FETCH (...)\r\n` with the content items' values taken from `content`."""
        values = iter(content)
        return self.template % (
            seq,
            *[next(values) if simple is None else simple(message) for _, simple in self.slots],
        )


@functools.lru_cache(maxsize=PLANS)
def plan(items: tuple[cmd.FetchItem, ...]) -> Plan:
    """`Plan.of`, kept: clients repeat a few item lists (a plan costs ~20 µs to make)."""
    return Plan.of(items)


def batches(entries: Sequence[MailboxEntry]) -> Iterator[Sequence[MailboxEntry]]:
    """Consecutive runs of entries within FETCH_BATCH_MESSAGES and FETCH_BATCH_OCTETS."""
    start, octets = 0, 0
    for index, entry in enumerate(entries):
        full = index - start >= FETCH_BATCH_MESSAGES or octets + entry.size > FETCH_BATCH_OCTETS
        if full and index > start:
            yield entries[start:index]
            start, octets = index, 0
        octets += entry.size
    if start < len(entries):
        yield entries[start:]
