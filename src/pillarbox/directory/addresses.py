"""Address splitting and normalisation: the forms the directory and the store agree on.

The local part keeps its case (RFC 5321 §2.4: it MAY be case-sensitive); the domain is
lower-cased and IDNA-encoded (A-labels), as the store keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# RFC 5321 §4.5.1: every domain must accept "postmaster", in any case, and the bare
# "Postmaster" without a domain.
POSTMASTER: Final = "postmaster"
# The subaddress separator (RFC 5233 "detail"): user+tag@domain delivers to user@domain.
DEFAULT_SUBADDRESS_SEPARATOR: Final = "+"
# RFC 5321 §4.5.3.1.1 and §4.5.3.1.2: local part 64 octets, domain 255 octets.
MAX_LOCAL_PART: Final = 64
MAX_DOMAIN: Final = 255


class AddressError(ValueError):
    """The text is not an address we can look up (caller answers 501/553 5.1.3)."""


@dataclass(frozen=True, slots=True)
class Address:
    """A normalised address; `domain` is "" for a bare name ("postmaster", "admin")."""

    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}" if self.domain else self.local

    @property
    def is_postmaster(self) -> bool:
        """RFC 5321 §4.5.1: "postmaster" in any case, with or without a domain."""
        return self.local.lower() == POSTMASTER


def normalise_domain(domain: str) -> str:
    """Lower-case, drop one trailing dot, IDNA-encode; address literals stay as they are."""
    domain = domain.strip()
    if domain.startswith("[") and domain.endswith("]"):  # RFC 5321 §4.1.3 address literal
        return domain.lower()
    domain = domain.removesuffix(".")
    if not domain or ".." in domain:
        raise AddressError(f"bad domain {domain!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise AddressError(f"bad domain {domain!r}") from exc
    if len(ascii_domain) > MAX_DOMAIN:
        raise AddressError("domain too long")
    return ascii_domain.lower()


def parse_address(text: str) -> Address:
    """Split `local@domain` (angle brackets allowed) or a bare name, normalising the domain.

    The split is at the last "@": a quoted local part may itself hold "@" (RFC 5321 §4.1.2).
    """
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if not at:
        local, domain = text, ""
    if not local:
        raise AddressError("empty local part")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise AddressError("local part too long")
    if at and not domain:
        raise AddressError("empty domain")
    return Address(local, normalise_domain(domain) if domain else "")


def normalise(text: str) -> str:
    """The normalised string form of an address or bare name."""
    return str(parse_address(text))


def split_subaddress(
    local: str, separator: str = DEFAULT_SUBADDRESS_SEPARATOR
) -> tuple[str, str | None]:
    """RFC 5233: "user+tag" -> ("user", "tag"); no separator (or a leading one) -> (local, None)."""
    if not separator:
        return local, None
    base, sep, tag = local.partition(separator)
    if not sep or not base:
        return local, None
    return base, tag


def lookup_forms(local: str) -> tuple[str, ...]:
    """Local parts to try in order: as given, then lower-cased (common practice)."""
    lowered = local.lower()
    return (local,) if lowered == local else (local, lowered)
