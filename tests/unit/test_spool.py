"""The store under a lock, and the spool's write, read and import, in-process on real SQLite files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_lock import write_locked

from maint.errors import ExitCode, StoreUnavailable
from maint.secrets import mask_url_credentials
from maint.store import ResultRecord, RunRecord, Store, failure_cause, ledger, results, runs
from maint.store import spool as spool_module
from maint.store.spool import INTERRUPTED, RunSpool, import_spools, read

RUN = "20261205-020000-abcdef"


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback spool locations inside the test's directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(spool_module, "SHARED_MEMORY", tmp_path / "shm")


def url_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'maint.db'}"


def new_run(url: str) -> Store:
    store = Store(url, busy_timeout=0.05)
    store.create_run(RunRecord(
        id=RUN, started="2026-12-05T02:00:00.000Z", operator="alice", controller="ctl", argv=["maint", "run"],
        reason=None, playbooks=[{"name": "book"}], inventory={}, maint_version="0", ci={}, options={"pid": 999999999},
        hosts=["web1", "web2"],
    ))  # fmt: skip
    return store


def result(host: str, step: str, status: str = "ok", summary: str = "exit 0") -> ResultRecord:
    return ResultRecord(
        run_id=RUN, host=host, playbook="book", step=step, step_type="command", status=status, exit_code=0,
        summary=summary, metrics={"used": 1.5}, output="", started="2026-12-05T02:00:01.000Z", duration=0.5,
    )  # fmt: skip


def stored(url: str) -> list[tuple[str, str, int, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(results.c.host, results.c.step, results.c.attempt, results.c.status).order_by(results.c.id)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def run_row(url: str) -> sa.RowMapping:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(sa.select(runs).where(runs.c.id == RUN)).mappings().one()
    engine.dispose()
    return row


def verified(url: str) -> bool:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        intact = ledger.verify(connection).intact
    engine.dispose()
    return intact


def test_a_locked_store_raises_one_line_naming_the_store_and_the_cause(tmp_path: Path) -> None:
    url = url_of(tmp_path)
    store = new_run(url)
    with write_locked(url), pytest.raises(StoreUnavailable) as raised:
        store.add_results([result("web1", "disk")])
    assert str(raised.value) == (
        f"store {url} is unavailable: database is locked "
        "(another process held it for more than store_busy_timeout, 0.05s)"
    )
    assert raised.value.exit_code == ExitCode.STORE_UNAVAILABLE == 8
    store.close()


def test_the_busy_timeout_waits_that_long_and_no_longer(tmp_path: Path) -> None:
    import time

    url = url_of(tmp_path)
    new_run(url).close()
    store = Store(url, busy_timeout=0.4)
    with write_locked(url):
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.add_results([result("web1", "disk")])
        waited = time.monotonic() - began
    assert 0.35 <= waited < 3
    store.close()


def test_a_spool_file_is_private_fsynced_lines_and_reads_back(tmp_path: Path) -> None:
    url = url_of(tmp_path)
    spool = RunSpool(url, RUN)
    stopped: list[bool] = []
    spool.on_failure = lambda: stopped.append(True)
    spool.start(StoreUnavailable(url, "database is locked"))
    spool.start(StoreUnavailable(url, "again"))  # the first failure counts, the engine is told once
    assert stopped == [True]
    spool.write_results([result("web1", "disk"), result("web2", "disk", "failed")])
    spool.write_results([result("web2", "ntp", "skipped", INTERRUPTED)])
    spool.write_finish("interrupted", 8, "2026-12-05T02:00:09.000Z")
    assert spool.path == tmp_path / "maint.db.spool" / f"{RUN}.jsonl"
    assert spool.path.stat().st_mode & 0o777 == 0o600
    assert spool.path.parent.stat().st_mode & 0o777 == 0o700
    spool.close()
    with spool.path.open("a") as handle:
        handle.write('{"kind": "result", "host": "web')  # a crash in the middle of a line
    found = read(spool.path)
    assert found is not None
    assert found.run_id == RUN and found.key == spool_module.store_key(url)
    assert [(line["host"], line["step"], line["status"]) for line in found.results] == [
        ("web1", "disk", "ok"), ("web2", "disk", "failed"), ("web2", "ntp", "skipped")
    ]
    assert found.finish == {"status": "interrupted", "exit_code": 8, "finished": "2026-12-05T02:00:09.000Z"}
    message = str(spool.failure())
    assert message == (
        f"store {url} could not be written (database is locked): run {RUN} stopped; 2 finished results are kept "
        f"in {spool.path}; 'maint resume {RUN}' records them"
    )


def test_opening_the_store_imports_each_result_once_and_finishes_the_run(tmp_path: Path) -> None:
    url = url_of(tmp_path)
    store = new_run(url)
    store.spool = RunSpool(url, RUN)
    store.add_results([result("web1", "disk")])  # written: the store works
    with write_locked(url):
        store.add_results([result("web2", "disk", "failed")])  # spooled from here on
        assert store.spool.active
        store.add_results([result("web1", "ntp"), result("web2", "ntp", "skipped", INTERRUPTED)])
        with pytest.raises(StoreUnavailable, match="2 finished results are kept in"):
            store.finish_run(RUN, "interrupted", 8, "2026-12-05T02:00:09.000Z", {})
        path = store.spool.path
        assert path is not None
        store.close()  # the run ends: its spool file is unlocked
        # Still locked: opening the store leaves the spool (and says nothing), and the run running.
        opened = Store(url, busy_timeout=0.05)
        assert opened.unrecorded == {RUN: path}
        assert opened.reap_stale_runs("ctl", lambda pid: False, "2026-12-05T03:00:00.000Z") == []
        opened.close()
        assert path.exists()
    assert stored(url) == [("web1", "disk", 1, "ok")]
    # A copy of the spool stands for an import that committed but died before removing its file.
    copy = path.with_name(f"{RUN}-2.jsonl")
    copy.write_bytes(path.read_bytes())

    Store(url).close()
    assert stored(url) == [("web1", "disk", 1, "ok"), ("web2", "disk", 1, "failed"), ("web1", "ntp", 1, "ok"),
                           ("web2", "ntp", 1, "skipped")]  # fmt: skip
    row = run_row(url)
    assert (row["status"], row["exit_code"], row["finished"]) == ("interrupted", 8, "2026-12-05T02:00:09.000Z")
    assert row["counts"] == {"ok": 2, "failed": 1, "skipped": 1}
    assert not path.exists() and not copy.exists()
    assert verified(url)


def test_a_spool_still_being_written_is_left_alone(tmp_path: Path) -> None:
    url = url_of(tmp_path)
    store = new_run(url)
    spool = RunSpool(url, RUN)
    spool.start(StoreUnavailable(url, "database is locked"))
    spool.write_results([result("web1", "disk")])
    assert import_spools(store) == ([], {RUN: spool.path})  # the writer holds its lock
    assert stored(url) == []
    spool.close()
    assert import_spools(store) == ([RUN], {})
    assert stored(url) == [("web1", "disk", 1, "ok")]
    assert run_row(url)["status"] == "running"  # no end spooled: the run's controller is the judge of that
    store.close()


def test_a_spool_of_another_store_or_an_unknown_run_stays(tmp_path: Path) -> None:
    url = url_of(tmp_path)
    store = new_run(url)
    spool = RunSpool(url, "20261205-030000-000000")
    spool.start(StoreUnavailable(url, "disk full"))
    spool.write_results([dataclass_replace(result("web1", "disk"), run_id="20261205-030000-000000")])
    spool.close()
    assert import_spools(store) == ([], {"20261205-030000-000000": spool.path})
    assert spool.path is not None and spool.path.exists()
    store.close()


def dataclass_replace(record: ResultRecord, **changes: str) -> ResultRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)


def test_a_full_or_unwritable_location_falls_back_then_memory_says_what_is_lost(tmp_path: Path) -> None:
    url = url_of(tmp_path)
    (tmp_path / "maint.db.spool").write_text("not a directory")  # beside the store: unusable
    spool = RunSpool(url, RUN)
    spool.start(StoreUnavailable(url, "disk full"))
    spool.write_results([result("web1", "disk")])
    fallback = tmp_path / "state" / "maint" / "spool" / spool_module.store_key(url) / f"{RUN}.jsonl"
    assert spool.path == fallback
    assert "(could not write " in str(spool.failure()) and str(fallback) in str(spool.failure())
    spool.close()

    (tmp_path / "state").rename(tmp_path / "state-moved")
    (tmp_path / "state").write_text("not a directory either")
    (tmp_path / "shm").mkdir()
    (tmp_path / "shm" / f"maint-{os.geteuid()}").mkdir(mode=0o777)  # made by someone else: not used
    os.chmod(tmp_path / "shm" / f"maint-{os.geteuid()}", 0o777)
    (tmp_path / "shm" / f"maint-{os.geteuid()}" / "spool").symlink_to(tmp_path)
    lost = RunSpool(url, RUN)
    lost.start(StoreUnavailable(url, "disk full"))
    lost.write_results([result("web1", "disk"), result("web2", "disk")])
    assert lost.path is None and len(lost.lines) == 2
    message = str(lost.failure())
    assert "2 finished results could not be kept (no spool location could be written: " in message
    assert "not a private directory of this user" in message
    assert "\n" not in message
    assert not list(tmp_path.glob("*.jsonl"))


def test_a_location_that_fills_up_later_is_replaced_by_the_next_with_every_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = url_of(tmp_path)
    spool = RunSpool(url, RUN)
    spool.start(StoreUnavailable(url, "disk full"))
    spool.write_results([result("web1", "disk")])
    first = spool.path
    assert first is not None and first.parent == tmp_path / "maint.db.spool"
    assert spool._handle is not None

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    spool._handle.close()
    spool._handle = Full()  # type: ignore[assignment]
    spool.write_results([result("web2", "disk")])
    assert spool.path is not None and spool.path.parent.parent.parent == tmp_path / "state" / "maint"
    assert not first.exists()  # every line is in the new file: the old one is gone
    spool.close()
    found = read(spool.path)
    assert found is not None and [line["host"] for line in found.results] == ["web1", "web2"]


def test_store_urls_in_messages_have_no_password() -> None:
    assert mask_url_credentials("postgresql+psycopg://maint:s3cret@db.example:5432/maint") == (
        "postgresql+psycopg://maint:***@db.example:5432/maint"  # masked as in every other output
    )
    assert mask_url_credentials("sqlite:////var/lib/maint/maint.db") == "sqlite:////var/lib/maint/maint.db"


class PgError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "disconnect", "cause"),
    [
        (sqlite3.OperationalError("database is locked"), False, "database is locked"),
        (sqlite3.OperationalError("database or disk is full"), False, "disk full"),
        (sqlite3.OperationalError("unable to open database file"), False, "unable to open the database file"),
        (sqlite3.OperationalError("attempt to write a readonly database"), False, "the database is read-only"),
        (PgError("canceling statement due to lock timeout\nCONTEXT: ...", "55P03"), False,
         "lock timeout (another transaction holds the lock)"),
        (PgError("could not extend file: No space left on device", "53100"), False, "disk full"),
        (PgError("server closed the connection unexpectedly", None), True,
         "connection lost: server closed the connection unexpectedly"),
        (PgError("terminating connection due to administrator command", "57P01"), False, "server shutting down"),
        (sqlite3.OperationalError("no such table: runs"), False, ""),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), False, ""),
    ],
)  # fmt: skip
def test_failure_causes(error: Exception, disconnect: bool, cause: str) -> None:
    assert failure_cause(error, disconnect) == cause
