"""The store on a real PostgreSQL server: the ledger names every tamper case exactly as on SQLite,
concurrent writers (opening a new store at once) chain onto one contiguous ledger, a signed prune of
runs and tickets stays verifiable, a store of maint 0.1.0 is upgraded in place (once, however many
processes open it), and a real lab run is recorded, found, counted, reported, exported and pruned
through the CLI (``maint.cli.main`` in-process) with ``--db postgresql+psycopg://``.

One private server per session (``postgres_server``: a temporary cluster on 127.0.0.1), a new database
per test. Without the server binaries the tests skip and say which Debian package to install.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg
import pytest
from postgres_server import PostgresServer, missing, postgres_server
from processes import READY_THEN_WAIT, released_together
from store_history import (
    RELEASE_RESULTS,
    RELEASE_SIGNERS,
    as_before_state_coverage,
    copy_release_store,
    make_run,
    make_ticket,
    open_at_once,
    release_results,
    retention_history,
    signing_key,
)

from maint import alerts
from maint.errors import StoreUnavailable
from maint.lab import Lab
from maint.store import SCHEMA_LOCK, Store, migrations
from maint.store.tickets import save_alerts
from maint.testing import broken

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]
CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")
_databases = itertools.count(1)


@dataclass(frozen=True)
class Database:
    """One test's database on the session's server: its SQLAlchemy URL and libpq connection string."""

    url: str
    conninfo: str

    def execute(self, *statements: str) -> None:
        """Run raw SQL in one transaction, as someone with write access to the database would."""
        with psycopg.connect(self.conninfo) as connection:
            for statement in statements:
                connection.execute(statement.encode())

    def scalar(self, query: str, *parameters: Any) -> Any:
        """The first column of the first row of ``query``."""
        with psycopg.connect(self.conninfo) as connection:
            row = connection.execute(query.encode(), parameters or None).fetchone()
        return row[0] if row else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (a private cluster, 127.0.0.1 only)."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> Database:
    """A new, empty database for one test: tests never see each other's rows or id sequences."""
    name = f"maint_{next(_databases)}"
    return Database(postgres.create_database(name), postgres.conninfo(name))


def write_history(url: str) -> None:
    """The history of test_ledger's ``history`` fixture: three runs (run-b failing), a ticket with a
    delivery; the same calls, so result ids, entry numbers and messages line up with SQLite."""
    store = Store(url)
    make_run(store, "run-a", "2026-11-20T02:00:00.000Z")
    make_run(store, "run-b", "2026-11-21T02:00:00.000Z", failing=("web-01", "root-disk"))
    make_ticket(store, "run-b", "2026-11-21T02:05:00.000Z")
    make_run(store, "run-c", "2026-11-22T02:00:00.000Z")
    store.close()


def verify(maint_cli: RunMaint, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return maint_cli("audit", "verify", "--db", url, *extra)


def entry_of(database: Database, kind: str, ref: str) -> int:
    return int(database.scalar("SELECT max(seq) FROM ledger WHERE kind = %s AND ref = %s", kind, ref))


def test_an_untouched_history_verifies(maint_cli: RunMaint, database: Database) -> None:
    write_history(database.url)
    done = verify(maint_cli, database.url)
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(database.conninfo) as connection:
        count, head = connection.execute(b"SELECT count(*), max(seq) FROM ledger").fetchone() or (0, 0)
        kinds = dict(connection.execute(b"SELECT kind, count(*) FROM ledger GROUP BY kind").fetchall())
        result_ids = [row[0] for row in connection.execute(b"SELECT id FROM results ORDER BY id")]
    assert kinds == {"run": 6, "result": 27, "ticket": 1, "delivery": 1, "ticket-state": 2}
    assert result_ids == list(range(1, 28))  # the ids the tamper cases (and test_ledger) rely on
    assert done.stdout.startswith(f"ledger intact: {count} entries (1-{head}), head {head}:")
    report = json.loads(verify(maint_cli, database.url, "--format", "json").stdout)
    assert report["intact"] is True and report["problems"] == [] and report["head"]["entry"] == head


# Each case: the tampering SQL (``{head}`` is the last entry) and the first line test_ledger expects on
# SQLite (``{entry}`` is the last entry of the tampered row, TAMPERED_ROW). Every case is also run on a SQLite copy of
# the history, and the whole report must be the same there.
TAMPERING = {
    "edited-result": (
        ["UPDATE results SET status = 'ok', summary = 'root-disk ok' WHERE id = 14"],
        "ledger broken: entry {entry}: result 14 (run run-b, web-02 ntp) was changed after it was recorded",
    ),
    "deleted-result": (
        ["DELETE FROM results WHERE id = 12"],
        "ledger broken: entry {entry}: result 12 (run run-b) was deleted",
    ),
    "edited-ticket": (
        ["UPDATE tickets SET status = 'resolved' WHERE id = 1"],
        "ledger broken: entry {entry}: ticket #1 (web-01/root-disk) was changed after it was recorded",
    ),
    "inserted-ticket": (
        ["INSERT INTO tickets SELECT 2, 'web-02/ntp', 'web-02', 'ntp', step_type, playbook, tier, severity, status, "
         "flapping, summary, opened, updated, resolved, tier_since, occurrences, tier_occurrences, first_run, "
         "last_run, groups, refs, runbook FROM tickets WHERE id = 1"],
        "ledger broken: ticket #2 (web-02/ntp) is not in the ledger (added after the fact, or the ledger was cut "
        "after entry {head})",
    ),
    "deleted-entry": (
        ["DELETE FROM ledger WHERE seq = 17"],
        "ledger broken: entry 17 deleted from the ledger",
    ),
    "truncated-tail": (
        ["DELETE FROM ledger WHERE seq > {head} - 3"],
        "ledger broken: the ledger ends at entry {cut} but {head} entries were written: entries {cut_next}-{head} "
        "were removed (truncated)",
    ),
}
TAMPERED_ROW = {"edited-result": ("result", "14"), "deleted-result": ("result", "12"),
                "edited-ticket": ("ticket-state", "1")}  # fmt: skip


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_named_as_on_sqlite(maint_cli: RunMaint, database: Database, tmp_path: Path, case: str) -> None:
    statements, expected = TAMPERING[case]
    write_history(database.url)
    sqlite_path = tmp_path / "maint.db"
    write_history(f"sqlite:///{sqlite_path}")
    head = int(database.scalar("SELECT max(seq) FROM ledger"))
    values = {"head": head, "cut": head - 3, "cut_next": head - 2}
    if case in TAMPERED_ROW:
        values["entry"] = entry_of(database, *TAMPERED_ROW[case])
    sql = [statement.format(**values) for statement in statements]

    database.execute(*sql)
    done = verify(maint_cli, database.url)
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == expected.format(**values)

    with sqlite3.connect(sqlite_path) as connection:
        for statement in sql:
            connection.execute(statement)
    on_sqlite = verify(maint_cli, f"sqlite:///{sqlite_path}")
    assert on_sqlite.returncode == 4
    assert done.stdout == on_sqlite.stdout
    assert (
        json.loads(verify(maint_cli, database.url, "--format", "json").stdout)["problems"]
        == json.loads(verify(maint_cli, f"sqlite:///{sqlite_path}", "--format", "json").stdout)["problems"]
    )

    if case == "truncated-tail":
        # Cutting the head row too still leaves rows no entry covers.
        database.execute(f"UPDATE ledger_head SET seq = {head - 3}, hash = (SELECT hash FROM ledger WHERE seq = "
                         f"{head - 3})")  # fmt: skip
        again = verify(maint_cli, database.url)
        assert again.returncode == 4
        assert "is not in the ledger (added after the fact, or the ledger was cut after entry" in again.stdout


WRITER = """
from maint.store import ResultRecord, RunRecord, Store
""" + READY_THEN_WAIT + """
url, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(url)
store.create_run(RunRecord(
    id=run_id, started="2026-11-24T02:00:00.000Z", operator="ci", controller=run_id, argv=["maint"], reason=None,
    playbooks=[], inventory={}, maint_version="0", ci={}, options={}, hosts=["web-01"]))
for index in range(count):
    store.add_results([ResultRecord(
        run_id=run_id, host="web-01", playbook="load", step=f"step-{index:03d}", step_type="command", status="ok",
        exit_code=0, summary="ok", metrics={"index": float(index)}, output="", started="2026-11-24T02:00:00.000Z",
        duration=0.01)])
store.finish_run(run_id, "ok", 0, "2026-11-24T02:01:00.000Z", {"ok": count})
store.close()
"""
WRITERS = 3
RESULTS_EACH = 30


def test_concurrent_writers_chain_onto_one_contiguous_ledger(
    maint_cli: RunMaint, database: Database, tmp_path: Path
) -> None:
    """Three processes open the same new store at the same moment (all create its tables) and append
    their runs' results one transaction at a time: the ledger head's row lock must chain them into
    one gapless ledger."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # All three import maint first; then they open the store and write at the same moment.
    writers = released_together(
        [(WRITER, database.url, f"writer-{number}", str(RESULTS_EACH)) for number in range(WRITERS)], env=environment
    )
    for writer in writers:
        _, errors = writer.communicate(timeout=60)
        assert writer.returncode == 0, errors

    total = WRITERS * (RESULTS_EACH + 2)  # each run: start, results, end
    with psycopg.connect(database.conninfo) as connection:
        entries = connection.execute(b"SELECT seq, kind, run_id FROM ledger ORDER BY seq").fetchall()
        head = connection.execute(b"SELECT seq FROM ledger_head").fetchone()
        covered = connection.execute(
            b"SELECT count(*) FROM results r JOIN ledger l ON l.kind = 'result' AND l.ref = r.id::text"
        ).fetchone()  # fmt: skip
    assert [seq for seq, _, _ in entries] == list(range(1, total + 1))
    assert head == (total,)
    assert covered == (WRITERS * RESULTS_EACH,)
    assert {run_id for _, _, run_id in entries} == {f"writer-{number}" for number in range(WRITERS)}
    # Run one after the other, the writers' entries would switch runs WRITERS - 1 times.
    switches = sum(1 for before, after in itertools.pairwise(entries) if before[2] != after[2])
    assert switches >= WRITERS, f"the writers did not overlap ({switches} switches): nothing was tested"
    done = verify(maint_cli, database.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"ledger intact: {total} entries (1-{total}), head {total}:")


@pytest.mark.lab
def test_a_real_lab_run_on_postgres(lab: Lab, maint_cli: RunMaint, database: Database, tmp_path: Path) -> None:
    db = ("--db", database.url)
    with broken(lab, "lab2", "disk-full"):
        done = maint_cli("run", "health", "-i", lab.inventory, "-l", "lab1,lab2", *CALM, "--format", "json", *db)
    assert done.returncode == 4, done.stderr
    document = json.loads(done.stdout)
    run_id = document["id"]

    shown = run_json(maint_cli, "runs", "show", run_id[:12], "--format", "json", *db)  # a prefix: LIKE ... ESCAPE
    assert shown["id"] == run_id and shown["status"] == "failed"
    assert {result["host"] for result in shown["results"]} == {"lab1", "lab2"}
    failed = [(result["host"], result["step"]) for result in shown["results"] if result["status"] == "failed"]
    assert failed == [("lab2", "root-disk")]
    assert shown["results"] == document["results"]
    last_entry = database.scalar("SELECT max(seq) FROM ledger WHERE run_id = %s", run_id)
    seal = database.scalar("SELECT hash FROM ledger WHERE seq = %s", last_entry)
    assert shown["ledger"] == {"seq": last_entry, "hash": seal, "signed": False, "signer": None}

    found = run_json(maint_cli, "runs", "list", "--host", "lab2", "--check", "root-disk", "--status", "failed",
                     "--format", "json", *db)  # fmt: skip
    assert [run["id"] for run in found] == [run_id]
    assert found[0]["matches"] == [{"host": "lab2", "playbook": "health", "step": "root-disk", "status": "failed"}]
    assert run_json(maint_cli, "runs", "list", "--host", "lab1", "--check", "root-disk", "--status", "failed",
                    "--format", "json", *db) == []  # fmt: skip
    # Shell patterns become LIKE with an escape character; PostgreSQL's LIKE is case-sensitive, SQLite's not.
    patterned = run_json(maint_cli, "runs", "list", "--host", "lab[2]", "--check", "root-*", "--format", "json", *db)
    assert [run["id"] for run in patterned] == [run_id]
    assert run_json(maint_cli, "runs", "list", "--host", "LAB[2]", "--format", "json", *db) == []

    stats = run_json(maint_cli, "stats", "--format", "json", *db)
    by_host = {line["host"]: line for line in stats["hosts"]}
    assert (by_host["lab2"]["failures"], by_host["lab2"]["episodes"]) == (1, 1)
    assert by_host["lab1"]["failures"] == 0
    assert [(top["check"], top["hosts"]) for top in stats["top"]] == [("root-disk", ["lab2"])]

    junit = tmp_path / "report.xml"
    reported = maint_cli("report", run_id, "--format", "junit", "-o", junit, *db)
    assert reported.returncode == 0, reported.stderr
    root = ElementTree.fromstring(junit.read_bytes())
    (suite,) = root.findall("testsuite")
    failures = [(case.get("classname"), case.get("name")) for case in suite.iter("testcase")
                if case.find("failure") is not None]  # fmt: skip
    assert failures == [("lab2", "root-disk")] and suite.get("failures") == "1"

    assert verify(maint_cli, database.url).returncode == 0
    exported = maint_cli("audit", "export", *db)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    entries = int(database.scalar("SELECT count(*) FROM ledger"))
    assert len(lines) == entries and [line["entry"] for line in lines] == list(range(1, entries + 1))
    assert all(line["record"] is not None for line in lines)
    assert {line["kind"] for line in lines} >= {"run", "result"}

    pruned = run_json(maint_cli, "runs", "prune", "--keep-last", "0", "--format", "json", *db)
    assert pruned["runs"] == [run_id] and pruned["results"] == len(shown["results"])
    assert database.scalar("SELECT count(*) FROM runs") == 0
    after = verify(maint_cli, database.url)
    assert after.returncode == 0, after.stdout + after.stderr


def run_json(maint_cli: RunMaint, *args: str | Path) -> Any:
    """The JSON output of a maint command that must succeed."""
    done = maint_cli(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_signed_prune_of_runs_and_tickets_stays_verifiable(
    maint_cli: RunMaint, database: Database, tmp_path: Path
) -> None:
    """Retention on PostgreSQL: runs and a resolved ticket (events, deliveries) pruned by age, the
    ledger's prefix folded into a signed checkpoint, signatures checked with the real ssh-keygen."""
    key, signers = signing_key(tmp_path)
    (tmp_path / "maint.yml").write_text(f"audit:\n  signing_key: {key}\n", encoding="utf-8")
    store = Store(database.url)
    retention_history(store, key, old_runs=3, failing=(1, 2, 3))
    store.close()
    assert verify(maint_cli, database.url, "--signers", signers).returncode == 0

    done = run_json(maint_cli, "runs", "prune", "--keep-last", "1", "--older-than", "400d", "--format", "json",
                    "--db", database.url)  # fmt: skip
    assert done["runs"] == ["run-3", "run-2", "run-1"]
    assert (done["results"], done["tickets"], done["ticket_events"], done["deliveries"]) == (27, 1, 2, 1)
    assert done["signed"] is True and done["ledger_entries_dropped"] > 0
    assert database.scalar("SELECT min(seq) FROM ledger") == done["chain_starts_after"] + 1
    checked = verify(maint_cli, database.url, "--signers", signers)
    assert checked.returncode == 0, checked.stdout
    database.execute("DELETE FROM results WHERE id = (SELECT min(id) FROM results)")
    caught = verify(maint_cli, database.url)
    assert caught.returncode == 4 and "(run run-4) was deleted" in caught.stdout


def test_a_write_waiting_on_a_lock_gives_up_after_the_busy_timeout(database: Database) -> None:
    write_history(database.url)
    store = Store(database.url, busy_timeout=0.3)
    holder = psycopg.connect(database.conninfo)
    try:
        # Another writer holds the ledger's head (every write appends to the ledger).
        holder.execute(b"SELECT seq FROM ledger_head WHERE id = 1 FOR UPDATE")
        began = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            store.finish_run("run-a", "ok", 0, "2026-11-20T03:00:00.000Z", {"ok": 9})
        assert time.monotonic() - began < 5
    finally:
        holder.close()
        store.close()
    message = str(raised.value)
    assert message.startswith(f"store {database.url} is unavailable: lock timeout")
    assert "\n" not in message and "SQL" not in message


def test_tickets_and_long_alert_keys_in_a_store_from_before_their_coverage(
    maint_cli: RunMaint, database: Database
) -> None:
    """A PostgreSQL store written before ticket and alert-state rows were chained (``ledger.ref`` was 64
    characters): opening it adopts the ticket and widens ``ref`` for an alert key longer than that."""
    write_history(database.url)
    as_before_state_coverage(database.url)
    store = Store(database.url)
    key = f"{'web-01.' + 'a' * 60}.example.org/backup"
    with store.engine.begin() as connection:
        save_alerts(connection, [alerts.initial(key, key.split("/")[0], "backup")], run_id="run-c")
    store.close()
    assert database.scalar("SELECT character_maximum_length FROM information_schema.columns WHERE "
                           "table_name = 'ledger' AND column_name = 'ref'") == 512  # fmt: skip
    assert database.scalar("SELECT count(*) FROM ledger WHERE kind = 'ticket-state'") == 1
    done = verify(maint_cli, database.url)
    assert done.returncode == 0, done.stdout + done.stderr
    database.execute("UPDATE alerts SET hard = true")
    caught = verify(maint_cli, database.url)
    assert caught.returncode == 4
    assert caught.stdout.splitlines() == [
        f"ledger broken: entry {entry_of(database, 'alert-state', key)}: the alert state of {key} was changed after "
        "it was recorded"
    ]


def test_another_programs_database_is_not_a_maint_store(maint_cli: RunMaint, database: Database) -> None:
    database.execute("CREATE TABLE customers (id integer PRIMARY KEY, name text)")
    for command in (("runs", "list"), ("audit", "verify"), ("tickets", "list")):
        done = maint_cli(*command, "--db", database.url)
        assert done.returncode == 3, done.stderr
        assert "is not a maint store (it holds other tables: customers)" in done.stderr
        assert "Traceback" not in done.stderr
    # maint added none of its tables to it.
    assert database.scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == 1


def test_a_store_of_release_0_1_0_upgrades_on_postgres(run_maint: RunMaint, database: Database) -> None:
    """The rows of the store maint 0.1.0 wrote (tests/data/stores), in that release's tables on PostgreSQL:
    opening the store upgrades it in place, its results get their skip_kind and task, and the ledger
    verifies, signatures included, before and after a run recorded since."""
    copy_release_store(database.url)
    assert verify(run_maint, database.url, "--signers", str(RELEASE_SIGNERS)).returncode == 0  # upgrades it
    assert database.scalar("SELECT version_num FROM alembic_version") == migrations.HEAD
    assert release_results(database.url) == RELEASE_RESULTS
    store = Store(database.url)
    assert store.upgraded is None  # done by the verify before
    make_run(store, "run-after", "2026-12-06T02:00:00.000Z", failing=("db-01", "ntp"))
    store.close()
    done = verify(run_maint, database.url)
    assert done.returncode == 0, done.stdout + done.stderr
    new_id = database.scalar("SELECT id FROM results WHERE run_id = 'run-after' AND status = 'failed'")
    database.execute(f"UPDATE results SET task = 'x' WHERE id = {int(new_id)}")
    caught = verify(run_maint, database.url)
    assert caught.returncode == 4
    assert caught.stdout.splitlines() == [
        f"ledger broken: entry {entry_of(database, 'result', str(new_id))}: result {new_id} (run run-after, db-01 ntp) "
        "was changed after it was recorded"
    ]


def test_processes_opening_an_old_store_at_once_upgrade_it_once(run_maint: RunMaint, database: Database) -> None:
    """Three processes open a PostgreSQL store of 0.1.0 while the schema lock is held: all wait for it, one
    upgrades the store, the others find it upgraded."""
    copy_release_store(database.url)
    with psycopg.connect(database.conninfo, autocommit=True) as holder:
        holder.execute(b"SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        outcomes = open_at_once(database.url, lambda pids: database.scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == len(pids))
        holder.execute(b"SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
    assert sorted(outcomes()) == [
        "None", "None", f"Upgrade(before='maint_0001', after='{migrations.HEAD}', recorded=False)"]  # fmt: skip
    assert database.scalar("SELECT count(*) FROM alembic_version") == 1
    assert release_results(database.url) == RELEASE_RESULTS
    done = verify(run_maint, database.url, "--signers", str(RELEASE_SIGNERS))
    assert done.returncode == 0, done.stdout + done.stderr
