"""Where the store may be: a missing directory or a file that is not a maint store is refused (exit 3)
by every command that opens the store, and nothing is created in someone else's database.

Every command meets the missing directory as a real subprocess; the foreign and damaged files, the same
refusal by the same code with other messages, run ``maint.cli.main`` in-process (``maint_cli``)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cli_output import assert_one_line_error

# Every command that opens the store, the read-only ones included.
STORE_COMMANDS = [
    ("run", "health", "-i", "web1,"),
    ("resume", "last"),
    ("rerun", "last", "--failed"),
    ("runs", "list"),
    ("runs", "show", "last"),
    ("report", "last", "--format", "json"),
    ("tickets", "list"),
    ("stats",),
    ("audit", "verify"),
    ("audit", "export"),
]


def foreign_stores(directory: Path) -> dict[str, Path]:
    """Files that are not maint stores: text, random bytes, another program's SQLite database, and a
    database whose 'runs' table is not maint's."""
    text = directory / "notes.txt"
    text.write_text("not a database\n" * 10)
    noise = directory / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 40)
    other = directory / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("create table customers (id integer primary key, name text)")
    lookalike = directory / "lookalike.db"
    with sqlite3.connect(lookalike) as connection:
        connection.execute("create table runs (id integer primary key, command text)")
    return {"text": text, "noise": noise, "other": other, "lookalike": lookalike}


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return sorted(row[0] for row in connection.execute("select name from sqlite_master where type = 'table'"))


def test_a_store_in_a_missing_directory_is_refused(run_maint: Any, tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "dir"
    for command in STORE_COMMANDS:
        done = run_maint(*command, "--db", f"sqlite:///{missing / 'x.db'}")
        assert_one_line_error(done, 3, f"the store's directory {missing} does not exist", f"mkdir -p {missing}")
    assert not (tmp_path / "typo").exists()


def test_a_read_only_command_creates_no_store_a_writer_creates_the_default(run_maint: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty"  # mkdir empty && cd empty && maint tickets list
    empty.mkdir()
    (tmp_path / ".git").mkdir()  # the walk up for a maint.yml stops here
    done = run_maint("tickets", "list", cwd=empty)
    store = Path(os.environ["XDG_STATE_HOME"]) / "maint" / "maint.db"
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == f"maint: no store at {store} (the default without a maint.yml): nothing recorded yet\n"
    assert not (empty / ".maint").exists() and not store.parent.exists()
    (tmp_path / "maint.yml").write_text("")
    assert run_maint("db", "upgrade", cwd=empty).returncode == 0
    assert (tmp_path / ".maint" / "maint.db").is_file()


@pytest.mark.parametrize("kind", ["text", "noise", "other", "lookalike"])
def test_a_file_that_is_not_a_maint_store_is_refused_by_every_command(
    maint_cli: Any, tmp_path: Path, kind: str
) -> None:
    path = foreign_stores(tmp_path)[kind]
    before = path.read_bytes()
    for command in STORE_COMMANDS:
        done = maint_cli(*command, "--db", f"sqlite:///{path}")
        assert_one_line_error(done, 3, f"{path} is not a maint store", "--db")
    # Nothing was added to someone else's file, not even maint's tables.
    assert path.read_bytes() == before


def test_a_damaged_store_is_bad_input_not_an_internal_error(maint_cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "maint.db"
    assert maint_cli("db", "upgrade", "--db", f"sqlite:///{path}").returncode == 0
    with path.open("r+b") as handle:  # the schema's pages survive, the tables' pages do not
        handle.seek(30000)
        handle.write(b"\xff" * 20000)
    for command in STORE_COMMANDS:
        done = maint_cli(*command, "--db", f"sqlite:///{path}")
        assert_one_line_error(done, 3, f"store {path} is damaged", ".recover")
