"""docs/rfc-status.md covers every RFC of the shared reference library (STYLE.md §7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATUS = ROOT / "docs" / "rfc-status.md"
LIBRARY = ROOT.parent / "shared" / "rfc"
ROW = re.compile(r"^\| (\d+) \| [^|]+ \| (\w+) \|", re.MULTILINE)


def rows() -> dict[str, str]:
    return dict(ROW.findall(STATUS.read_text()))


def test_every_row_has_a_known_status() -> None:
    found = rows()
    assert found, "no rows parsed"
    assert set(found.values()) <= {"yes", "partial", "no"}


def test_every_library_rfc_has_a_row() -> None:
    if not LIBRARY.is_dir():
        pytest.skip("the shared RFC library is not beside this checkout")
    library = {p.stem.removeprefix("rfc") for p in LIBRARY.glob("rfc*.txt")}
    assert library - set(rows()) == set()
