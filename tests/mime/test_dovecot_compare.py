"""Compare our ENVELOPE and BODYSTRUCTURE with Dovecot's, byte for byte, over the corpus.

Dovecot (Debian dovecot-imapd) is an independent IMAP implementation. The test starts it with
a throw-away config on a loopback port, APPENDs every corpus message, FETCHes ENVELOPE and
BODYSTRUCTURE and compares. Known differences are listed with the RFC reason ours is right.
"""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pillarbox.mime.imapview import body_structure, message_envelope
from pillarbox.mime.parts import normalize_line_ends, parse
from tests.mime.dovecot_harness import DOVECOT, fetch_raw, running_dovecot

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(not DOVECOT.exists(), reason="dovecot-imapd not installed"),
]

CORPUS = Path(__file__).parent / "corpus"
MESSAGES = sorted(CORPUS.glob("*.eml"))

# Message -> why our answer differs from Dovecot's and is the right one.
KNOWN_DIFFERENCES = {
    "054-hostile-garbage.eml": "RFC 5322 §2.3: a bare CR is not a line end; Dovecot's APPEND "
    "rewrites it to CRLF, which changes the size and line count.",
    "069-hostile-bare-cr-and-nul.eml": "RFC 5322 §2.3: a bare CR is not a line end, so the "
    "Subject continues past it; Dovecot's APPEND rewrites it to CRLF.",
    "056-hostile-unterminated-quotes.eml": "RFC 5322 §3.2.4 has no reading for an unterminated "
    "quoted-string or comment; we read it to the end of the field (as Python's email package "
    "does) and keep the mailbox and boundary, Dovecot discards them.",
    "071-hostile-params-broken.eml": "RFC 2045 §5.1 has no reading for an unterminated "
    "quoted-string; we keep the parameter with the rest of the field as its value.",
    "059-hostile-rfc822-base64.eml": "RFC 2046 §5.1.1: the CRLF before a delimiter belongs to "
    "the delimiter; Dovecot counts it into a message/rfc822 body whose header has no end.",
    "060-hostile-content-type-garbage.eml": "RFC 2045 §5.2: a syntactically invalid "
    'Content-Type is taken as text/plain; Dovecot reports subtype "".',
    "070-hostile-empty-parts-and-headers.eml": "RFC 5322 §4.4: null members of an address list "
    "(',,,') are not addresses; Dovecot reports each as MISSING_MAILBOX.",
    "072-hostile-address-oddities.eml": "RFC 5322 §3.4 has no reading for '<a@b@c>'; Dovecot "
    "stops at it (SYNTAX_ERROR) and drops the rest of the list, we keep every mailbox after it.",
}


@pytest.fixture(scope="module")
def dovecot_answers() -> Iterator[dict[str, bytes]]:
    """Dovecot's ``ENVELOPE ... BODYSTRUCTURE ...`` text for every corpus message.

    The context manager stops Dovecot and removes its directory when the module is done.
    """
    with running_dovecot() as server:
        client = server.connect()
        try:
            for eml in MESSAGES:
                typ, data = client.append("INBOX", None, None, eml.read_bytes())
                assert typ == "OK", (eml.name, data)
            client.select("INBOX", readonly=True)
            answers = {
                eml.name: fetch_raw(client, seq, "ENVELOPE BODYSTRUCTURE")
                for seq, eml in enumerate(MESSAGES, 1)
            }
        finally:
            with contextlib.suppress(imaplib.IMAP4.error):
                client.logout()
        yield answers


def _ours(eml: Path, seq: int) -> bytes:
    tree = parse(normalize_line_ends(eml.read_bytes()))
    return b"%d (ENVELOPE %s BODYSTRUCTURE %s)" % (
        seq,
        message_envelope(tree),
        body_structure(tree),
    )


@pytest.mark.parametrize(("seq", "eml"), list(enumerate(MESSAGES, 1)), ids=str)
def test_matches_dovecot(dovecot_answers: dict[str, bytes], seq: int, eml: Path) -> None:
    theirs = dovecot_answers[eml.name]
    ours = _ours(eml, seq)
    if eml.name in KNOWN_DIFFERENCES:
        # Keep the list honest: a listed message must still differ.
        assert ours != theirs, f"{eml.name} now matches Dovecot; drop it from the list"
    else:
        assert ours == theirs


def test_known_differences_name_corpus_messages() -> None:
    names = {eml.name for eml in MESSAGES}
    assert set(KNOWN_DIFFERENCES) <= names
    assert len(KNOWN_DIFFERENCES) <= 10
