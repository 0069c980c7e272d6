"""Schema revisions of the store, on real SQLite files: a store written by maint 0.1.0
(tests/data/stores/release-0.1.0.db) is upgraded in place when it is opened, its results get their
skip_kind and task, its ledger still verifies (signatures included) and so does a run recorded after the
upgrade; processes opening an old store at the same moment upgrade it once; a store of a newer maint is
one line and exit 3; ``maint db current`` and ``maint db upgrade`` as a user runs them (subprocesses).
The same upgrade on PostgreSQL: test_store_postgres.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from processes import asleep_in_a_retry
from store_history import (
    RELEASE_RESULTS,
    RELEASE_SIGNERS,
    RELEASE_STORE,
    make_run,
    open_at_once,
    release_results,
)
from store_lock import write_locked

import maint.run as engine
from maint.run.continuation import finished_pairs
from maint.store import ResultRecord, SkipKind, Store, migrations, spool
from maint.store.migrations import v0001_release_0_1_0
from maint.store.schema import metadata

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]
HEAD = migrations.HEAD
RELEASE_ENTRIES = 101  # the ledger entries of the release store



@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A copy of the store maint 0.1.0 wrote (the original must stay as it is)."""
    path = tmp_path / "maint.db"
    shutil.copyfile(RELEASE_STORE, path)
    return path


def verify(run_maint: RunMaint, url: str, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return run_maint("audit", "verify", "--db", url, *extra)


def run_of(path: Path, reason: str) -> str:
    """The id of the run recorded with ``reason`` in the SQLite store ``path``."""
    with sqlite3.connect(path) as connection:
        return str(connection.execute("SELECT id FROM runs WHERE reason = ?", (reason,)).fetchone()[0])


def schema_differences(url: str, target: sa.MetaData) -> list[object]:
    """What Alembic's autogenerate finds between the store's tables and ``target`` (none: the same schema)."""
    store_engine = sa.create_engine(url)
    with store_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = list(compare_metadata(context, target))
    store_engine.dispose()
    return found


def local_run(directory: Path, url: str) -> engine.RunRequest:
    """A run of two steps (one skipped by its condition) on the controller itself, recorded in ``url``."""
    (directory / "hosts.ini").write_text("h1 ansible_connection=local\n", encoding="utf-8")
    (directory / "after.yml").write_text(
        "name: after\nsteps:\n  - id: echo\n    type: command\n    command: echo after\n"
        "  - id: never\n    type: command\n    command: 'false'\n    when: false\n", encoding="utf-8")  # fmt: skip
    return engine.RunRequest(playbooks=[str(directory / "after.yml")], inventory=[str(directory / "hosts.ini")],
                             db_url=url, project_dir=directory, tickets=False, reason="after the upgrade")  # fmt: skip


def test_revisions_chain_in_order() -> None:
    revisions = migrations.revisions()
    assert [revision.id for revision in revisions] == list(migrations.IDS)
    assert [revision.down for revision in revisions] == [None, *migrations.IDS[:-1]]


def test_a_release_store_upgrades_in_place_and_still_verifies(run_maint: RunMaint, release: Path) -> None:
    url = f"sqlite:///{release}"
    store = Store(url)
    store.close()
    assert store.upgraded == migrations.Upgrade("maint_0001", HEAD, recorded=False)
    with sqlite3.connect(release) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert connection.execute("SELECT count(*) FROM ledger").fetchone() == (RELEASE_ENTRIES,)
    assert release_results(url) == RELEASE_RESULTS
    assert schema_differences(url, metadata) == []
    # Not vacuous: against 0.1.0's tables the comparison names the columns revisions maint_0002 and 0003 added.
    added = schema_differences(url, v0001_release_0_1_0.metadata)
    assert sorted(str(change[3].name) for change in added) == ["command", "skip_kind", "task"]  # type: ignore[index]

    # The ledger entries written by 0.1.0 verify, signatures included; nothing was appended.
    done = verify(run_maint, url, "--signers", RELEASE_SIGNERS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"ledger intact: {RELEASE_ENTRIES} entries (1-{RELEASE_ENTRIES}), ")
    assert done.stdout.rstrip().endswith("; 8 signatures verified")

    # The run document shows the new columns; resume reads them.
    shown = Store(url)
    aborted = shown.get_run(run_of(release, "aborted after the first batch"))
    window = shown.get_run(run_of(release, "window closes mid-run"))
    ansible = shown.get_run(run_of(release, "an Ansible playbook"))
    shown.close()
    assert {(result["host"], result["skip_kind"]) for result in aborted.results} == {
        ("h1", None), ("h2", "aborted"), ("h3", "aborted")}  # fmt: skip
    assert finished_pairs(aborted.results) == {("h1", "serial", "first-fails")}
    assert finished_pairs(window.results) == {(host, "naps", step) for host in ("h1", "h2")
                                              for step in ("nap1", "nap2")}  # fmt: skip
    assert finished_pairs(ansible.results) == {(host, "configure", "site") for host in ("h1", "h2", "h3")}
    assert {result["task"] for result in ansible.results} == {None, "say hello", "never on this host", "say hello #2"}


def test_a_run_after_the_upgrade_verifies_and_every_column_is_covered(
    run_maint: RunMaint, release: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{release}"
    document = engine.run(local_run(tmp_path, url))  # opening it for the run upgrades it
    assert [(result["step"], result["status"], result["skip_kind"]) for result in document.results] == [
        ("echo", "ok", None), ("never", "skipped", "condition")]  # fmt: skip
    done = verify(run_maint, url)
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(release) as connection:
        old_id = connection.execute("SELECT id FROM results WHERE skip_kind = 'aborted' ORDER BY id").fetchone()[0]
        new_id = connection.execute(
            "SELECT id FROM results WHERE run_id = ? AND step = 'never'", (document.run["id"],)
        ).fetchone()[0]  # fmt: skip
        old_entry, new_entry = (
            connection.execute("SELECT seq FROM ledger WHERE kind = 'result' AND ref = ?", (str(ref),)).fetchone()[0]
            for ref in (old_id, new_id)
        )  # fmt: skip
    # A row recorded before the upgrade: its skip_kind must stay what its summary says.
    with sqlite3.connect(release) as connection:
        connection.execute("UPDATE results SET skip_kind = 'condition' WHERE id = ?", (old_id,))
    caught = verify(run_maint, url)
    assert caught.returncode == 4
    assert caught.stdout.splitlines()[0].startswith(f"ledger broken: entry {old_entry}: result {old_id} ")
    assert caught.stdout.splitlines()[0].endswith(" was changed after it was recorded")
    # A row recorded after it: the digest covers the new columns.
    with sqlite3.connect(release) as connection:
        connection.execute("UPDATE results SET skip_kind = 'aborted' WHERE id = ?", (old_id,))
        connection.execute("UPDATE results SET task = 'x' WHERE id = ?", (new_id,))
    caught = verify(run_maint, url)
    assert caught.returncode == 4
    assert caught.stdout.splitlines() == [
        f"ledger broken: entry {new_entry}: result {new_id} (run {document.run['id']}, h1 never) was changed after "
        "it was recorded"
    ]


def test_processes_opening_an_old_store_at_once_upgrade_it_once(run_maint: RunMaint, tmp_path: Path) -> None:
    """Three processes open a store of 0.1.0 while another holds its write lock: each finds it not upgraded
    and waits for the schema lock; when the lock is released, one upgrades it and the others find it done."""
    for round_number in range(2):
        path = tmp_path / f"old-{round_number}.db"
        shutil.copyfile(RELEASE_STORE, path)
        with write_locked(path):
            outcomes = open_at_once(f"sqlite:///{path}", lambda pids: all(map(asleep_in_a_retry, pids)))
        assert sorted(outcomes()) == [
            "None", "None", f"Upgrade(before='maint_0001', after='{HEAD}', recorded=False)"]  # fmt: skip
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
            assert connection.execute("SELECT count(*) FROM ledger").fetchone() == (RELEASE_ENTRIES,)
        assert release_results(f"sqlite:///{path}") == RELEASE_RESULTS
        assert verify(run_maint, f"sqlite:///{path}").returncode == 0


def test_a_store_of_a_newer_maint_is_refused_in_one_line(run_maint: RunMaint, release: Path) -> None:
    Store(f"sqlite:///{release}").close()
    with sqlite3.connect(release) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'maint_9999'")
    for command in (("runs", "list"), ("audit", "verify"), ("db", "current"), ("db", "upgrade")):
        done = run_maint(*command, "--db", f"sqlite:///{release}")
        assert done.returncode == 3, done.stderr
        assert done.stderr.splitlines() == [
            f"maint: error: store {release} has schema revision maint_9999, which maint 0.1.0 does not know (its "
            f"newest is {HEAD}): a newer maint upgraded it (upgrade maint to use this store)"
        ]
    with sqlite3.connect(release) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("maint_9999",)]


def test_db_current_and_upgrade(run_maint: RunMaint, release: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{release}"
    current = run_maint("db", "current", "--db", url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.splitlines() == [
        f"store     {url}",
        "revision  maint_0001 (the schema of maint 0.1.0)",
        f"head      {HEAD} ({migrations.summary(HEAD)})",
        "'maint db upgrade' (or any command that opens the store) upgrades it",
    ]
    with sqlite3.connect(release) as connection:  # db current only looked
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "alembic_version" not in tables
    upgraded = run_maint("db", "upgrade", "--db", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == f"upgraded store {url} from revision maint_0001 (the schema of maint 0.1.0) to {HEAD}\n"
    again = run_maint("db", "upgrade", "--db", url, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"schema_version": 1, "store": url, "before": HEAD, "after": HEAD,
                                        "upgraded": False}  # fmt: skip
    current = run_maint("db", "current", "--db", url, "--format", "json")
    assert current.returncode == 0, current.stderr
    assert f'"revision": "{HEAD}"' in current.stdout and '"at_head": true' in current.stdout
    assert verify(run_maint, url, "--signers", RELEASE_SIGNERS).returncode == 0

    new = f"sqlite:///{tmp_path / 'new.db'}"
    missing = run_maint("db", "current", "--db", new)  # a read-only command creates no store
    assert (missing.returncode, missing.stdout) == (0, "") and "no store at" in missing.stderr
    assert not (tmp_path / "new.db").exists()
    (tmp_path / "new.db").touch()  # an empty SQLite file: a store without tables
    assert run_maint("db", "current", "--db", new).stdout.splitlines()[1] == (
        "revision  none (a new store: no tables yet)")  # fmt: skip
    created = run_maint("db", "upgrade", "--db", new)
    assert created.returncode == 0, created.stderr
    assert created.stdout == f"created store {new} at revision {HEAD}\n"
    assert schema_differences(new, metadata) == []
    help_text = run_maint("db", "--help").stdout
    assert "current  Print the store's schema revision" in help_text and "upgrade  Upgrade the store's" in help_text


def test_the_store_derives_what_a_record_leaves_unset(tmp_path: Path) -> None:
    """Results of a producer that does not set skip_kind and task (the engine today), and of a spool of
    maint 0.1.0 (its lines have neither), get them from their summary and step; what a record sets is kept."""
    store = Store(f"sqlite:///{tmp_path / 'maint.db'}")
    make_run(store, "run-a", "2026-12-06T02:00:00.000Z")

    def record(step: str, step_type: str, status: str, summary: str, **fields: str) -> ResultRecord:
        return ResultRecord(run_id="run-a", host="h1", playbook="p", step=step, step_type=step_type, status=status,
                            exit_code=None, summary=summary, metrics={}, output="", started="t", duration=0.0,
                            **fields)  # fmt: skip

    store.add_results([
        record("a", "command", "skipped", "aborted: 1 of 1 hosts failed in batch 1"),
        record("site/say hello", "ansible:ansible.builtin.debug", "ok", "ok: hello"),
        record("b", "command", "skipped", "condition is false: x", skip_kind=SkipKind.OTHER),
    ])  # fmt: skip
    spooled = {**record("c", "command", "skipped", spool.INTERRUPTED).__dict__, "kind": "result"}
    del spooled["skip_kind"], spooled["task"]
    assert store.import_spooled("run-a", [spooled], None)
    stored = {result["step"]: (result["skip_kind"], result["task"]) for result in store.get_run("run-a").results}
    store.close()
    assert {step: stored[step] for step in ("a", "site/say hello", "b", "c")} == {
        "a": ("aborted", None), "site/say hello": (None, "say hello"), "b": ("other", None), "c": ("interrupted", None)}
