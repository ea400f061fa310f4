"""aliases(5) files: entries, continuations, comments, quoting, includes and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pillarbox.directory.aliasfile import (
    MAX_INCLUDE_DEPTH,
    AliasEntry,
    AliasFileError,
    load_aliases,
    parse_aliases,
    read_include,
)

SAMPLE = """\
# Basic system aliases
MAILER-DAEMON: postmaster
postmaster:    root

staff: alice, bob@example.org,
\tcarol,
    dave
  # an indented comment inside an entry is skipped
"odd name": alice
"with:colon" : bob
copy: \\alice, alice@elsewhere.example
quoted: "john smith"@example.org, alice
"""


def test_sample_file() -> None:
    assert parse_aliases(SAMPLE) == [
        AliasEntry("mailer-daemon", ("postmaster",), 2),
        AliasEntry("postmaster", ("root",), 3),
        AliasEntry("staff", ("alice", "bob@example.org", "carol", "dave"), 5),
        AliasEntry("odd name", ("alice",), 9),
        AliasEntry("with:colon", ("bob",), 10),
        AliasEntry("copy", ("\\alice", "alice@elsewhere.example"), 11),
        AliasEntry("quoted", ('"john smith"@example.org', "alice"), 12),
    ]


def test_crlf_line_ends() -> None:
    assert parse_aliases("a: b,\r\n c\r\n") == [AliasEntry("a", ("b", "c"), 1)]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: b\nno colon here\n", 2, "expected 'name: target"),
        ("  b, c\n", 1, "continuation line"),
        ("a: b\n\nc:\n", 3, "no targets"),
        ("a: b\nA: c\n", 2, "duplicate alias 'a' (first at line 1)"),
        ("a: |/usr/bin/vacation\n", 1, "program target"),
        ('a: "|/usr/bin/x, y"\n', 1, "program target"),
        ("a: /var/mail/a\n", 1, "file target"),
        ('"unterminated: b\n', 1, "unbalanced"),
        ("two words: b\n", 1, "bad alias name"),
        ("a: :include:\n", 1, ":include: needs a path"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(AliasFileError) as caught:
        parse_aliases(text, source="/etc/aliases")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"/etc/aliases:{line}: ")
    assert message in str(caught.value)


def test_relative_include_needs_a_base_directory() -> None:
    with pytest.raises(AliasFileError, match="must be absolute"):
        parse_aliases("a: :include:members\n")
    entries = parse_aliases("a: :include:members\n", base_dir=Path("/etc/mail"))
    assert entries[0].targets == (":include:/etc/mail/members",)


def test_load_file_with_include(tmp_path: Path) -> None:
    (tmp_path / "members").write_text("# the team\nalice, bob\ncarol@example.net\n")
    aliases = tmp_path / "aliases"
    aliases.write_text("team: :include:members, dave\n")
    entries = load_aliases(aliases)
    assert entries == [AliasEntry("team", (f":include:{tmp_path}/members", "dave"), 1)]
    assert read_include(f"{tmp_path}/members") == ["alice", "bob", "carol@example.net"]


def test_load_reports_a_missing_include_with_the_line(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text("x: y\nteam: :include:/nonexistent/list\n")
    with pytest.raises(AliasFileError, match=r"aliases:2: cannot read /nonexistent/list"):
        load_aliases(aliases)


def test_nested_includes_flatten(tmp_path: Path) -> None:
    (tmp_path / "inner").write_text("carol\n")
    (tmp_path / "outer").write_text(f"alice\n:include:{tmp_path}/inner\n")
    assert read_include(str(tmp_path / "outer")) == ["alice", "carol"]


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").write_text(f"alice, :include:{tmp_path}/b\n")
    (tmp_path / "b").write_text(f":include:{tmp_path}/a\n")
    with pytest.raises(AliasFileError, match="include loop"):
        read_include(str(tmp_path / "a"))


def test_include_depth_limit(tmp_path: Path) -> None:
    for i in range(MAX_INCLUDE_DEPTH + 1):
        (tmp_path / f"f{i}").write_text(f"u{i}, :include:{tmp_path}/f{i + 1}\n")
    (tmp_path / f"f{MAX_INCLUDE_DEPTH + 1}").write_text("last\n")
    with pytest.raises(AliasFileError, match="nested deeper"):
        read_include(str(tmp_path / "f0"))


def test_include_refuses_programs_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "list").write_text("alice\n|/bin/sh\n")
    with pytest.raises(AliasFileError, match=r"list:2: program target"):
        read_include(str(tmp_path / "list"))
