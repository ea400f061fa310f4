"""The `store` fixture and an asyncio runner for the store tests.

Every backend in BACKENDS runs the whole contract suite: a new backend (PostgreSQL)
joins by adding a factory, which gets the test's temporary directory and returns an
unopened store. `async def` tests here run under `asyncio.run`; the store is opened and
closed inside that same loop (its threads resolve futures on the loop that awaits them).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore

BACKENDS: dict[str, Callable[[Path], Store]] = {
    "sqlite": lambda tmp: SqliteStore(tmp / "pillarbox.sqlite"),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An unopened store; the runner below opens it in the test's event loop."""
    return BACKENDS[request.param](tmp_path)


async def _run_with_store(
    test: Callable[..., Coroutine[Any, Any, None]], kwargs: dict[str, Any]
) -> None:
    backend: Store | None = kwargs.get("store")
    if backend is None:
        await test(**kwargs)
        return
    await backend.open()
    try:
        await test(**kwargs)
    finally:
        await backend.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(_run_with_store(pyfuncitem.obj, kwargs))
    return True
