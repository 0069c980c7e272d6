"""Another process's write lock on an SQLite store, as the store tests hold it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def write_locked(store: Path | str) -> Iterator[None]:
    """Hold a write transaction on the SQLite file ``store`` (a path, or a ``sqlite:///`` URL), as another
    process with ``BEGIN IMMEDIATE`` would, until the block ends."""
    connection = sqlite3.connect(str(store).removeprefix("sqlite:///"), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()
