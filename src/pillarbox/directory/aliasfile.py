"""aliases(5) files: parse `name: target, target` entries and read `:include:` lists.

Format (as sendmail and Postfix read it):

    # comment
    postmaster: root
    staff: alice, bob@example.org,
        carol                      <- a line starting with whitespace continues the entry
    "odd name": alice
    announce: :include:/etc/mail/announce.list
    copy: \\alice, alice@elsewhere.example   <- "\\" delivers without further expansion

Names are bare local parts (they apply in every local domain) and are folded to lower
case, as both sendmail and Postfix do. Program ("|cmd") and file ("/path") targets are
refused: Pillarbox never runs commands or writes files for a recipient. `:include:` targets
stay as targets (the resolver reads the file at expansion time, like sendmail) after their
path is made absolute; `load_aliases` checks that each include file reads cleanly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

INCLUDE_PREFIX: Final = ":include:"
# sendmail bounds alias and include recursion at 10 levels (MAXRCRSN); so do we.
MAX_INCLUDE_DEPTH: Final = 10
# An include file is a list of addresses; anything bigger is a mistake, not a list.
MAX_INCLUDE_BYTES: Final = 1_000_000
# An aliases file larger than this is refused (a site's list is far smaller).
MAX_ALIAS_FILE_BYTES: Final = 50_000_000
# One logical alias line (with continuations) of at most this many characters.
MAX_ENTRY_CHARS: Final = 100_000


class AliasFileError(ValueError):
    """A line that cannot be used; the message names the file and line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line


@dataclass(frozen=True, slots=True)
class AliasEntry:
    name: str
    targets: tuple[str, ...]
    line: int  # where the entry starts, for messages


def _logical_lines(text: str, source: str) -> list[tuple[int, str]]:
    """Join continuation lines; drop comments and blank lines. Returns (line number, text)."""
    entries: list[tuple[int, list[str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if raw[0] in " \t":
            if not entries:
                raise AliasFileError(source, number, "continuation line with no entry before it")
            entries[-1][1].append(stripped)
        else:
            entries.append((number, [stripped]))
    return [(number, " ".join(parts)) for number, parts in entries]


def split_targets(text: str) -> list[str]:
    """Split at commas outside double quotes; strip blanks and drop empty items."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise ValueError("unbalanced double quote")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _split_name(entry: str) -> tuple[str, str]:
    """`name: rest` where the name may be double-quoted and hold a colon."""
    if entry.startswith('"'):
        end = entry.find('"', 1)
        if end < 0:
            raise ValueError("unbalanced double quote in name")
        name, rest = entry[1:end], entry[end + 1 :].lstrip()
        if not rest.startswith(":"):
            raise ValueError("expected ':' after the alias name")
        return name, rest[1:]
    name, colon, rest = entry.partition(":")
    if not colon:
        raise ValueError("expected 'name: target, ...'")
    name = name.strip()
    if not name or any(char.isspace() for char in name):
        raise ValueError(f"bad alias name {name!r}")
    return name, rest


def check_target(target: str, base_dir: Path | None = None) -> str:
    """Validate one target; make an include path absolute. Raises ValueError."""
    bare = _unquote(target).strip()
    if bare.startswith("|"):
        raise ValueError(f"program target {bare!r} is not supported (Pillarbox runs no commands)")
    if bare.startswith("/"):
        raise ValueError(f"file target {bare!r} is not supported (deliver to an account)")
    if bare.lower().startswith(INCLUDE_PREFIX):
        path = bare[len(INCLUDE_PREFIX) :].strip()
        if not path:
            raise ValueError(":include: needs a path")
        if not os.path.isabs(path):
            if base_dir is None:
                raise ValueError(f":include: path {path!r} must be absolute")
            path = str(base_dir / path)
        return INCLUDE_PREFIX + path
    if not bare or (any(char.isspace() for char in bare) and not target.startswith('"')):
        raise ValueError(f"bad target {target!r}")
    return bare


def parse_aliases(
    text: str, source: str = "<aliases>", base_dir: Path | None = None
) -> list[AliasEntry]:
    """Parse an aliases(5) text. Raises AliasFileError naming the first bad line."""
    logical = _logical_lines(text, source)
    entries: list[AliasEntry] = []
    first_line: dict[str, int] = {}
    for number, entry in logical:
        try:
            if len(entry) > MAX_ENTRY_CHARS:
                raise ValueError("entry too long")
            name, rest = _split_name(entry)
            name = name.lower()
            targets = tuple(check_target(item, base_dir) for item in split_targets(rest))
            if not targets:
                raise ValueError(f"alias {name!r} has no targets")
            if name in first_line:
                raise ValueError(f"duplicate alias {name!r} (first at line {first_line[name]})")
        except ValueError as exc:
            raise AliasFileError(source, number, str(exc)) from None
        first_line[name] = number
        entries.append(AliasEntry(name, targets, number))
    return entries


def parse_include(text: str, source: str = "<include>") -> list[str]:
    """An include file: addresses separated by commas or line ends; "#" lines are comments."""
    targets: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            targets.extend(check_target(item) for item in split_targets(line))
        except ValueError as exc:
            raise AliasFileError(source, number, str(exc)) from None
    return targets


def _read_text(path: Path, source: str, line: int, limit: int = MAX_INCLUDE_BYTES) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise AliasFileError(source, line, f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise AliasFileError(source, line, f"{path} is larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AliasFileError(source, line, f"{path} is not UTF-8") from None


def read_include(
    path: str, source: str = "<include>", line: int = 0, _chain: tuple[str, ...] = ()
) -> list[str]:
    """Every address an include file lists, reading nested includes (blocking I/O).

    Raises AliasFileError for an unreadable file, an include loop or nesting deeper
    than MAX_INCLUDE_DEPTH.
    """
    resolved = os.path.realpath(path)
    if resolved in _chain:
        raise AliasFileError(source, line, f"include loop through {path}")
    if len(_chain) >= MAX_INCLUDE_DEPTH:
        raise AliasFileError(source, line, f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
    chain = (*_chain, resolved)
    addresses: list[str] = []
    for target in parse_include(_read_text(Path(path), source, line), source=path):
        if target.startswith(INCLUDE_PREFIX):
            addresses.extend(read_include(target[len(INCLUDE_PREFIX) :], path, 0, chain))
        else:
            addresses.append(target)
    return addresses


def load_aliases(path: str | Path) -> list[AliasEntry]:
    """Read and parse an aliases(5) file, checking that every include file reads cleanly."""
    path = Path(path)
    source = str(path)
    entries = parse_aliases(
        _read_text(path, source, 0, MAX_ALIAS_FILE_BYTES),
        source=source,
        base_dir=path.parent.absolute(),
    )
    for entry in entries:
        for target in entry.targets:
            if target.startswith(INCLUDE_PREFIX):
                read_include(target[len(INCLUDE_PREFIX) :], source, entry.line)
    return entries
