"""Regenerate the expected ENVELOPE/BODYSTRUCTURE files of the corpus from our engine.

Run by hand after a deliberate change, then review the diff and run the Dovecot comparison
(``pytest -m external tests/mime/test_dovecot_compare.py``) before committing the new files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pillarbox.mime.imapview import body_structure, message_envelope
from pillarbox.mime.parts import normalize_line_ends, parse

CORPUS = Path(__file__).parent / "corpus"


def main() -> int:
    for eml in sorted(CORPUS.glob("*.eml")):
        tree = parse(normalize_line_ends(eml.read_bytes()))
        eml.with_suffix(".envelope").write_bytes(message_envelope(tree))
        eml.with_suffix(".bodystructure").write_bytes(body_structure(tree))
    return 0


if __name__ == "__main__":
    sys.exit(main())
