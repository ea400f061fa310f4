"""The records of a part tree: :class:`Part` and :class:`EnvelopeFields` (RFC 2045, RFC 3501).

They are frozen dataclasses; the parser builds them through slot twins (``_PartSlots``,
``_EnvelopeSlots``) that skip a frozen dataclass's ``object.__setattr__`` per field.
:mod:`pillarbox.mime.parts` re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final, cast

from pillarbox.mime.headers import TEXT_PLAIN, ContentType, Disposition, HeaderField

# RFC 2046 §5.2.1 and RFC 6532 §3.7: body parts that contain a whole message.
MESSAGE_SUBTYPES: Final = frozenset({"rfc822", "global"})


@dataclass(frozen=True, slots=True)
class EnvelopeFields:
    """Raw unfolded values of the header fields IMAP ENVELOPE reports (RFC 3501 §7.4.2)."""

    date: bytes | None = None
    subject: bytes | None = None
    from_: bytes | None = None
    sender: bytes | None = None
    reply_to: bytes | None = None
    to: bytes | None = None
    cc: bytes | None = None
    bcc: bytes | None = None
    in_reply_to: bytes | None = None
    message_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: its header is ``header_start..body_start`` (including the blank line
    that ends it, when present) and its body ``body_start..body_end``."""

    header_start: int
    body_start: int
    body_end: int
    content_type: ContentType = TEXT_PLAIN
    encoding: str | None = None
    content_id: bytes | None = None
    description: bytes | None = None
    md5: bytes | None = None
    disposition: Disposition | None = None
    language: tuple[str, ...] | None = None
    location: bytes | None = None
    lines: int = 0
    children: tuple[Part, ...] = ()
    message: Part | None = None
    envelope: EnvelopeFields | None = None

    @property
    def size(self) -> int:
        return self.body_end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.content_type.maintype == "multipart"

    @property
    def is_message(self) -> bool:
        """True for message/rfc822 and message/global (whose body is a message)."""
        return self.content_type.maintype == "message" and (
            self.content_type.subtype in MESSAGE_SUBTYPES
        )


_ENVELOPE_NAMES: Final = (
    b"date",
    b"subject",
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"bcc",
    b"in-reply-to",
    b"message-id",
)


class _PartSlots:
    """Part's memory layout with plain attribute assignment, to build parts fast.

    A frozen dataclass sets each field through ``object.__setattr__``, which made ``Part(...)``
    the costliest single step of parsing a small part (15 fields). :func:`_new_part` fills one
    of these and then gives it the class Part (same slots, so Python allows the change); the
    result equals, and behaves exactly as, ``Part(...)`` with the same values.
    """

    __slots__ = (
        "body_end",
        "body_start",
        "children",
        "content_id",
        "content_type",
        "description",
        "disposition",
        "encoding",
        "envelope",
        "header_start",
        "language",
        "lines",
        "location",
        "md5",
        "message",
    )

    def __init__(
        self,
        header_start: int,
        body_start: int,
        body_end: int,
        content_type: ContentType,
        encoding: str | None,
        content_id: bytes | None,
        description: bytes | None,
        md5: bytes | None,
        disposition: Disposition | None,
        language: tuple[str, ...] | None,
        location: bytes | None,
        lines: int,
        children: tuple[Part, ...],
        message: Part | None,
        envelope: EnvelopeFields | None,
    ) -> None:
        self.header_start = header_start
        self.body_start = body_start
        self.body_end = body_end
        self.content_type = content_type
        self.encoding = encoding
        self.content_id = content_id
        self.description = description
        self.md5 = md5
        self.disposition = disposition
        self.language = language
        self.location = location
        self.lines = lines
        self.children = children
        self.message = message
        self.envelope = envelope


# CPython lays slots out in sorted name order, so equal name sets mean equal layouts.
assert sorted(_PartSlots.__slots__) == sorted(field.name for field in fields(Part))


def _new_part(
    header_start: int,
    body_start: int,
    body_end: int,
    content_type: ContentType,
    encoding: str | None,
    content_id: bytes | None,
    description: bytes | None,
    md5: bytes | None,
    disposition: Disposition | None,
    language: tuple[str, ...] | None,
    location: bytes | None,
    lines: int,
    children: tuple[Part, ...],
    message: Part | None,
    envelope: EnvelopeFields | None,
) -> Part:
    """``Part(...)`` with the same positional arguments, built through :class:`_PartSlots`."""
    part = _PartSlots(
        header_start,
        body_start,
        body_end,
        content_type,
        encoding,
        content_id,
        description,
        md5,
        disposition,
        language,
        location,
        lines,
        children,
        message,
        envelope,
    )
    part.__class__ = Part  # type: ignore[assignment]
    return cast(Part, part)


def envelope_fields(first: dict[bytes, HeaderField]) -> EnvelopeFields:
    """The raw (still folded) values ENVELOPE needs, from the first field of each name."""
    values = []
    for name in _ENVELOPE_NAMES:
        field = first.get(name)
        values.append(None if field is None else field.value.lstrip(b" \t"))
    return EnvelopeFields(*values)


class _EnvelopeSlots:
    """EnvelopeFields' memory layout with plain attribute assignment (see _PartSlots)."""

    __slots__ = (
        "bcc",
        "cc",
        "date",
        "from_",
        "in_reply_to",
        "message_id",
        "reply_to",
        "sender",
        "subject",
        "to",
    )

    def __init__(self, values: dict[bytes, bytes]) -> None:
        get = values.get
        self.date = get(b"date")
        self.subject = get(b"subject")
        self.from_ = get(b"from")
        self.sender = get(b"sender")
        self.reply_to = get(b"reply-to")
        self.to = get(b"to")
        self.cc = get(b"cc")
        self.bcc = get(b"bcc")
        self.in_reply_to = get(b"in-reply-to")
        self.message_id = get(b"message-id")


assert sorted(_EnvelopeSlots.__slots__) == sorted(field.name for field in fields(EnvelopeFields))


def _envelope(values: dict[bytes, bytes]) -> EnvelopeFields:
    """``EnvelopeFields(*map(values.get, _ENVELOPE_NAMES))``, built through _EnvelopeSlots."""
    built = _EnvelopeSlots(values)
    built.__class__ = EnvelopeFields  # type: ignore[assignment]
    return cast(EnvelopeFields, built)
