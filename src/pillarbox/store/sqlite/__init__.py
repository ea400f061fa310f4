"""The SQLite backend: `SqliteStore(path)` (embedded; WAL; group commit)."""

from pillarbox.store.sqlite.store import SqliteStore
from pillarbox.store.sqlite.writer import WriterStats

__all__ = ["SqliteStore", "WriterStats"]
