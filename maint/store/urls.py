"""Store URLs (SQLAlchemy's syntax) read without opening the store: the SQLite file a URL names, and
what makes two URLs the same store."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL as written in it (a relative path stays relative), or None for
    another store, an in-memory one or a URL that does not parse."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def store_identity(url: str, store_file: Path | None) -> str:
    """What makes two store URLs the same store, whoever names it how: an SQLite store's resolved file,
    else the database (kind, server, port, name; not the driver, user or password)."""
    if store_file is not None:
        return str(store_file.resolve())
    parsed = make_url(url)
    server = parsed.host or parsed.query.get("host")  # libpq's host= names a socket directory
    return json.dumps([parsed.get_backend_name(), str(server), parsed.port, parsed.database])
