"""The records of a part tree: :class:`Part` and :class:`EnvelopeFields` (RFC 2045, RFC 3501).

Part is a frozen dataclass that the parser builds through a slot twin (``_PartSlots``) that
skips a frozen dataclass's ``object.__setattr__`` per field. EnvelopeFields is an immutable
value whose fields are found in the header on first use.
:mod:`pillarbox.mime.parts` re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from pillarbox.mime.headers import TEXT_PLAIN, ContentType, Disposition, HeaderField
from pillarbox.mime.scan import ENVELOPE_NAMES, envelope_values

# RFC 2046 §5.2.1 and RFC 6532 §3.7: body parts that contain a whole message.
MESSAGE_SUBTYPES: Final = frozenset({"rfc822", "global"})


_EnvelopeValues = tuple[
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
]
_NO_VALUES: Final[_EnvelopeValues] = (None, None, None, None, None, None, None, None, None, None)


class EnvelopeFields:
    """Raw values of the header fields IMAP ENVELOPE reports (RFC 3501 §7.4.2), leading white
    space removed and still folded; None for an absent field.

    An immutable value (equal when the values are equal). The parser builds it with
    :meth:`from_header`, which keeps only where the header is and finds the fields on first
    use: parsing for BODYSTRUCTURE alone never pays for them. The message bytes are held until
    then and let go after.
    """

    __slots__ = ("_source", "_values")

    def __init__(
        self,
        date: bytes | None = None,
        subject: bytes | None = None,
        from_: bytes | None = None,
        sender: bytes | None = None,
        reply_to: bytes | None = None,
        to: bytes | None = None,
        cc: bytes | None = None,
        bcc: bytes | None = None,
        in_reply_to: bytes | None = None,
        message_id: bytes | None = None,
    ) -> None:
        self._source: tuple[bytes, int, int] | None = None
        self._values: _EnvelopeValues | None = (
            *(date, subject, from_, sender, reply_to),
            *(to, cc, bcc, in_reply_to, message_id),
        )

    @classmethod
    def from_header(cls, buf: bytes, start: int, end: int) -> EnvelopeFields:
        """The fields of the header ``buf[start:end]``, found when first asked for."""
        built = object.__new__(cls)  # (no __init__: the values come later)
        built._source = (buf, start, end)
        built._values = None
        return built

    def values(self) -> _EnvelopeValues:
        """All ten values in ENVELOPE order (date, subject, from, sender, reply-to, to, cc,
        bcc, in-reply-to, message-id)."""
        values = self._values
        if values is None:
            source = self._source
            found = envelope_values(*source) if source is not None else {}
            get = found.get
            values = self._values = (
                *(get(b"date"), get(b"subject"), get(b"from"), get(b"sender")),
                *(get(b"reply-to"), get(b"to"), get(b"cc"), get(b"bcc")),
                *(get(b"in-reply-to"), get(b"message-id")),
            )
            self._source = None
        return values

    @property
    def date(self) -> bytes | None:
        """Date."""
        return self.values()[0]

    @property
    def subject(self) -> bytes | None:
        """Subject."""
        return self.values()[1]

    @property
    def from_(self) -> bytes | None:
        """From."""
        return self.values()[2]

    @property
    def sender(self) -> bytes | None:
        """Sender."""
        return self.values()[3]

    @property
    def reply_to(self) -> bytes | None:
        """Reply-To."""
        return self.values()[4]

    @property
    def to(self) -> bytes | None:
        """To."""
        return self.values()[5]

    @property
    def cc(self) -> bytes | None:
        """Cc."""
        return self.values()[6]

    @property
    def bcc(self) -> bytes | None:
        """Bcc."""
        return self.values()[7]

    @property
    def in_reply_to(self) -> bytes | None:
        """In-Reply-To."""
        return self.values()[8]

    @property
    def message_id(self) -> bytes | None:
        """Message-ID."""
        return self.values()[9]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EnvelopeFields):
            return NotImplemented
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash(self.values())

    def __repr__(self) -> str:
        names = ("date", "subject", "from_", "sender", "reply_to", "to", "cc", "bcc")
        pairs = zip((*names, "in_reply_to", "message_id"), self.values(), strict=True)
        return "EnvelopeFields(" + ", ".join(f"{name}={value!r}" for name, value in pairs) + ")"


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
    header_start: int
    body_start: int
    body_end: int
    content_type: ContentType
    encoding: str | None
    content_id: bytes | None
    description: bytes | None
    md5: bytes | None
    disposition: Disposition | None
    language: tuple[str, ...] | None
    location: bytes | None
    lines: int
    children: tuple[Part, ...]
    message: Part | None
    envelope: EnvelopeFields | None


# CPython lays slots out in sorted name order, so equal name sets mean equal layouts.
assert sorted(_PartSlots.__slots__) == sorted(field.name for field in fields(Part))
_new_object: Final = object.__new__


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
    """``Part(...)`` with the same positional arguments, built through :class:`_PartSlots`
    (a plain function call and object.__new__ cost less than calling a class with __init__)."""
    part = _new_object(_PartSlots)
    part.header_start = header_start
    part.body_start = body_start
    part.body_end = body_end
    part.content_type = content_type
    part.encoding = encoding
    part.content_id = content_id
    part.description = description
    part.md5 = md5
    part.disposition = disposition
    part.language = language
    part.location = location
    part.lines = lines
    part.children = children
    part.message = message
    part.envelope = envelope
    part.__class__ = Part  # type: ignore[assignment]
    return part  # type: ignore[return-value]  # (typing.cast would cost a call)


def envelope_fields(first: dict[bytes, HeaderField]) -> EnvelopeFields:
    """The raw (still folded) values ENVELOPE needs, from the first field of each name."""
    values = []
    for name in ENVELOPE_NAMES:
        field = first.get(name)
        values.append(None if field is None else field.value.lstrip(b" \t"))
    return EnvelopeFields(*values)
