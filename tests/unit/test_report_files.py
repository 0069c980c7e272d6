"""Where a report may be written (maint.reports.formats): never over the store or a foreign file,
never more readable than the store's directory."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from maint.errors import BadInput
from maint.reports.formats import check_target, existing_kind, render_report, report_mode, write_report

DOCUMENT = {"id": "r1", "status": "ok", "exit_code": 0, "started": "2026-01-01T00:00:00.000Z", "finished": None,
            "operator": "alice", "controller": "c1", "reason": None, "maint_version": "0", "playbooks": [],
            "results": [], "argv": ["maint"], "inventory": {"sources": [], "digest": ""}}  # fmt: skip


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def maint_store(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        for table in ("runs", "results", "ledger"):
            connection.execute(f"CREATE TABLE {table} (id INTEGER)")
    connection.close()
    return path


def test_existing_files_are_told_apart(tmp_path: Path) -> None:
    assert existing_kind(maint_store(tmp_path / "maint.db")) == "a maint store"
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    assert existing_kind(tmp_path / "other.db") == "an SQLite database"
    (tmp_path / "notes.txt").write_text("notes")
    assert existing_kind(tmp_path / "notes.txt") == "a file"
    (tmp_path / "empty").touch()
    assert existing_kind(tmp_path / "empty") == "report"  # nothing to lose (mktemp)
    for output_format in ("json", "junit", "csv"):
        report = tmp_path / f"report.{output_format}"
        report.write_text(render_report(DOCUMENT, output_format, tmp_path))
        assert existing_kind(report) == "report", output_format


def test_only_reports_are_replaced_without_force_and_the_store_never(tmp_path: Path) -> None:
    store = maint_store(tmp_path / "maint.db")
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    with pytest.raises(BadInput, match=r"notes\.txt exists and is a file, not a maint report.*--force"):
        check_target(notes)
    check_target(notes, force=True)
    check_target(tmp_path / "new.html")
    for target in (store, tmp_path / "maint.db-wal"):
        for force in (False, True):
            with pytest.raises(BadInput, match=r"is the store in use.*not even with --force"):
                check_target(target, force=force, store=store)
    with pytest.raises(BadInput, match="is a maint store, not a maint report"):
        check_target(store, store=tmp_path / "elsewhere.db")


@pytest.mark.parametrize(("directory_mode", "report"), [(0o700, 0o600), (0o750, 0o640), (0o755, 0o644),
                                                         (0o777, 0o644)])  # fmt: skip
def test_a_report_is_never_more_readable_than_the_stores_directory(
    tmp_path: Path, umask_022: None, directory_mode: int, report: int
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    folder.chmod(directory_mode)
    assert report_mode(folder / "maint.db") == report
    target = tmp_path / "report.csv"
    write_report(target, render_report(DOCUMENT, "csv", tmp_path), store_url=f"sqlite:///{folder / 'maint.db'}")
    assert stat.S_IMODE(target.stat().st_mode) == report
