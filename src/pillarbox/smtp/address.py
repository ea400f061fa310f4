"""Reverse-path and forward-path parsing for MAIL FROM and RCPT TO (RFC 5321 §4.1.2).

The grammar accepts UTF-8 in local parts and domains (RFC 6531 §3.3); whether a non-ASCII
address is allowed in a given transaction (SMTPUTF8) is the caller's decision.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

# RFC 5321 §4.1.2 atext (RFC 5322 §3.2.3) plus UTF8-non-ascii (RFC 6531 §3.3).
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_STRING: Final = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
# RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP, plus UTF8-non-ascii (RFC 6531 §3.3).
_QUOTED: Final = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
# RFC 5321 §4.1.2 sub-domain = Let-dig [Ldh-str]; U-labels allowed (RFC 6531 §3.3).
_LET_DIG: Final = r"[A-Za-z0-9\u0080-\U0010ffff]"
_SUB_DOMAIN: Final = rf"{_LET_DIG}(?:[A-Za-z0-9\-\u0080-\U0010ffff]*{_LET_DIG})?"
_DOMAIN: Final = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
# RFC 5321 §4.1.3 address-literal; the content is checked by _valid_literal.
_LITERAL: Final = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_MAILBOX: Final = rf"(?:{_DOT_STRING}|{_QUOTED})@(?:{_DOMAIN}|{_LITERAL})"
# RFC 5321 §4.1.2 A-d-l: a source route, accepted and ignored (§4.1.2, Appendix C).
_SOURCE_ROUTE: Final = rf"@{_DOMAIN}(?:,@{_DOMAIN})*:"
_PATH_RE: Final = re.compile(rf"<(?:{_SOURCE_ROUTE})?({_MAILBOX})>")
# RFC 5321 §4.1.1.3: "<Postmaster>" without a domain is a valid forward-path.
_POSTMASTER_RE: Final = re.compile(r"<(postmaster)>", re.IGNORECASE)
# RFC 5321 §4.1.3 General-address-literal = Standardized-tag ":" 1*dcontent.
_GENERAL_LITERAL_RE: Final = re.compile(r"[A-Za-z0-9\-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")
_IPV6_TAG: Final = "IPv6:"


class AddressError(ValueError):
    """The path does not follow RFC 5321 §4.1.2."""


@dataclass(frozen=True, slots=True)
class ParsedPath:
    """A parsed path: the mailbox ("" for ``<>``) and the text after the closing ``>``."""

    address: str
    rest: str


def _valid_literal(literal: str) -> bool:
    """RFC 5321 §4.1.3: IPv4, "IPv6:" address, or a general address literal."""
    inner = literal[1:-1]
    if inner[: len(_IPV6_TAG)].lower() == _IPV6_TAG.lower():
        try:
            ipaddress.IPv6Address(inner[len(_IPV6_TAG) :])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(inner)
    except ValueError:
        return _GENERAL_LITERAL_RE.fullmatch(inner) is not None
    return True


def parse_reverse_path(text: str) -> ParsedPath:
    """Parse a MAIL FROM reverse-path (``<>`` allowed) at the start of ``text``."""
    if text.startswith("<>"):
        return ParsedPath("", text[2:])
    return _parse_mailbox_path(text)


def parse_forward_path(text: str) -> ParsedPath:
    """Parse a RCPT TO forward-path (``<Postmaster>`` allowed) at the start of ``text``."""
    match = _POSTMASTER_RE.match(text)
    if match is not None:
        return ParsedPath(match.group(1), text[match.end() :])
    return _parse_mailbox_path(text)


def _parse_mailbox_path(text: str) -> ParsedPath:
    match = _PATH_RE.match(text)
    if match is None:
        raise AddressError("malformed path")
    address = match.group(1)
    domain = address[address.rindex("@") + 1 :]
    if domain.startswith("[") and not _valid_literal(domain):
        raise AddressError("malformed address literal")
    return ParsedPath(address, text[match.end() :])
