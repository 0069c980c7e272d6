"""The debug log (maint.cli.debuglog): beside the store in use, mode 0600, no secret in it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from maint.cli.debuglog import debug_log_path, safe_error_text, write_traceback

SECRET = "l0g-S3cr3t-q"


@pytest.fixture(autouse=True)
def no_configured_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAINT_DEBUG_LOG", raising=False)
    monkeypatch.delenv("MAINT_DB", raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_log_is_where_the_store_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "records").mkdir()
    assert debug_log_path(["maint", "runs", "list", "--db", f"sqlite:///{tmp_path}/records/m.db"], tmp_path) == (
        tmp_path / "records" / "maint-debug.log"
    )
    server = ["maint", "runs", "list", f"--db=postgresql://u:{SECRET}@127.0.0.1/maint"]
    assert debug_log_path(server, tmp_path) == tmp_path / ".maint" / "maint-debug.log"
    assert debug_log_path(["maint", "runs", "list"], tmp_path) == tmp_path / ".maint" / "maint-debug.log"
    monkeypatch.setenv("MAINT_DEBUG_LOG", str(tmp_path / "mine.log"))
    assert debug_log_path(server, tmp_path) == tmp_path / "mine.log"


def test_the_traceback_is_private_and_masked(tmp_path: Path) -> None:
    log = tmp_path / "maint-debug.log"
    log.write_text("earlier\n")
    log.chmod(0o644)
    argv = ["maint", "run", "x", "-e", f'{{"db_password": "{SECRET}"}}', f"--db=postgresql://u:{SECRET}@h/db"]
    try:
        raise sa.exc.IntegrityError("INSERT INTO runs (argv) VALUES (?)", (str(argv),), Exception("forced"))
    except sa.exc.IntegrityError as error:
        shown = safe_error_text(error)
        write_traceback(error, argv, log)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert text.startswith("earlier\n") and "IntegrityError" in text and "[SQL parameters hidden" in text
    assert SECRET not in text and "[parameters:" not in text
    assert '{"db_password": "***"}' in text and "postgresql://u:***@h/db" in text
    assert SECRET not in shown and "[parameters:" not in shown
