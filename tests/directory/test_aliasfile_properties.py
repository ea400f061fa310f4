"""Property tests: the aliases(5) parser either parses or names a line, never crashes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.directory.aliasfile import AliasFileError, parse_aliases, parse_include

ALIAS_TEXT = st.text(alphabet=st.sampled_from(list('ab@:, \t\n#"|/\\x.')), max_size=120)


@given(ALIAS_TEXT)
def test_parse_aliases_parses_or_names_a_line(text: str) -> None:
    try:
        entries = parse_aliases(text)
    except AliasFileError as exc:
        assert 1 <= exc.line <= max(1, text.count("\n") + 1)
        return
    for entry in entries:
        assert entry.name and entry.targets
        assert all(not t.startswith(("|", "/")) for t in entry.targets)


@given(ALIAS_TEXT)
def test_parse_include_parses_or_names_a_line(text: str) -> None:
    try:
        targets = parse_include(text)
    except AliasFileError:
        return
    assert all(target.strip() == target and target for target in targets)
