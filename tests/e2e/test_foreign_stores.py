"""No command ends in an internal error because of the store it is given: a file that is not a maint store,
another program's SQLite database, a directory, a directory that does not exist, a server that refuses
connections. Each is one line naming the store, a documented exit code (3: bad input; 8 for the server
that refuses: the store cannot be used now, which a scheduler may retry), no traceback, and never a
password from the URL.

The commands run in-process through ``maint.cli.main`` (what the console script calls), so the whole
matrix costs seconds; the subprocess path is covered by the store tests of each command.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from maint.cli import main

# Every command that opens the store, with arguments that get it as far as the store.
COMMANDS = [
    ["runs", "list"],
    ["runs", "show", "last"],
    ["runs", "prune", "--keep-last", "1"],
    ["tickets", "list"],
    ["tickets", "show", "1"],
    ["tickets", "sync"],
    ["stats"],
    ["audit", "verify"],
    ["audit", "export", "--format", "jsonl"],
    ["report", "last", "--format", "json"],
    ["resume", "last"],
    ["rerun", "last", "--failed"],
    ["run", "PLAYBOOK", "-i", "INVENTORY"],
    ["db", "current"],
    ["db", "upgrade"],
]
PASSWORD = "s3cret-pw"


def foreign_stores(directory: Path) -> dict[str, str]:
    text = directory / "notes.txt"
    text.write_text("not a database\n")
    other = directory / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("create table accounts (id integer primary key, name text)")
    migrated = directory / "migrated.db"  # another program's, with Alembic's version table too
    with sqlite3.connect(migrated) as connection:
        connection.execute("create table alembic_version (version_num varchar(32) not null primary key)")
        connection.execute("insert into alembic_version values ('1a2b3c4d5e6f')")
        connection.execute("create table orders (id integer primary key)")
    (directory / "a-directory").mkdir()
    return {
        "text file": f"sqlite:///{text}",
        "another program's database": f"sqlite:///{other}",
        "another program's Alembic database": f"sqlite:///{migrated}",
        "a directory": f"sqlite:///{directory / 'a-directory'}",
        "a missing directory": f"sqlite:///{directory / 'no' / 'such' / 'maint.db'}",
        "a refusing server": f"postgresql+psycopg://maint:{PASSWORD}@127.0.0.1:1/maint?connect_timeout=2",
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAINT_DEBUG_LOG", str(tmp_path / "debug.log"))
    (tmp_path / "book.yml").write_text("steps:\n  - id: a\n    type: command\n    command: 'true'\n")
    (tmp_path / "hosts.ini").write_text("local ansible_connection=local\n")
    yield tmp_path


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    captured = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_foreign_store_is_an_internal_error(
    project: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    argv = [str(project / "book.yml") if part == "PLAYBOOK" else part for part in command]
    argv = [str(project / "hosts.ini") if part == "INVENTORY" else part for part in argv]
    for name, url in foreign_stores(project).items():
        code, out, err = invoke([*argv, "--db", url], capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        expected = 8 if name == "a refusing server" else 3
        assert code == expected, f"{name}: {command}: exit {code}: {err}"
        assert len(lines) == 1 and "Traceback" not in err, f"{name}: {err}"
        assert PASSWORD not in err + out, f"{name}: the password was printed"
        assert "internal error" not in err
    assert not (project / "no").exists(), "a store's missing directory was created"
    for name, expected in (("other.db", {"accounts"}), ("migrated.db", {"alembic_version", "orders"})):
        with sqlite3.connect(project / name) as connection:
            tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
            assert tables == expected, "maint's tables were created in another program's database"
