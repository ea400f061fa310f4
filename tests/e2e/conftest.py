from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, started

USERS = (
    ("tyler@pillarbox.test", "Tyler Durden"),
    ("mac@pillarbox.test", "Mac Intosh"),
    ("jane@pillarbox.test", "Jane Doe"),
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A running server with domain pillarbox.test and three users (password "secret")."""
    instance = started(tmp_path, users=USERS)
    try:
        yield instance
    finally:
        instance.kill()
