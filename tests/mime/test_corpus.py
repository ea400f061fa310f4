"""Every corpus message parses to the ENVELOPE and BODYSTRUCTURE recorded beside it.

The recorded answers were checked against Dovecot (test_dovecot_compare.py); this test keeps
them true without needing Dovecot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pillarbox.mime.cache import dump_tree, load_tree
from pillarbox.mime.imapview import body_structure, message_envelope
from pillarbox.mime.parts import normalize_line_ends, parse, walk
from pillarbox.mime.sections import Section, section_bytes

CORPUS = Path(__file__).parent / "corpus"
MESSAGES = sorted(CORPUS.glob("*.eml"))
HOSTILE = [m for m in MESSAGES if "-hostile-" in m.name]


def test_corpus_is_large_and_varied() -> None:
    assert len(MESSAGES) >= 60
    assert len(HOSTILE) >= 15
    for eml in MESSAGES:
        assert eml.with_suffix(".envelope").exists(), eml.name
        assert eml.with_suffix(".bodystructure").exists(), eml.name


@pytest.mark.parametrize("eml", MESSAGES, ids=lambda p: p.stem)
def test_envelope_and_bodystructure_match_recorded(eml: Path) -> None:
    tree = parse(normalize_line_ends(eml.read_bytes()))
    assert message_envelope(tree) == eml.with_suffix(".envelope").read_bytes()
    assert body_structure(tree) == eml.with_suffix(".bodystructure").read_bytes()


@pytest.mark.parametrize("eml", MESSAGES, ids=lambda p: p.stem)
def test_cached_tree_gives_the_same_answers(eml: Path) -> None:
    data = normalize_line_ends(eml.read_bytes())
    tree = parse(data)
    again = load_tree(dump_tree(tree))
    assert again == tree
    assert body_structure(again) == body_structure(tree)
    assert section_bytes(data, again, Section()) == data


@pytest.mark.parametrize("eml", MESSAGES, ids=lambda p: p.stem)
def test_offsets_nest_and_stay_inside_the_message(eml: Path) -> None:
    data = normalize_line_ends(eml.read_bytes())
    for part in walk(parse(data)):
        assert 0 <= part.header_start <= part.body_start <= part.body_end <= len(data)
        assert part.lines == data.count(b"\n", part.body_start, part.body_end)
        for child in part.children:
            assert part.body_start <= child.header_start <= child.body_end <= part.body_end
