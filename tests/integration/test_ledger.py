"""The ledger on a real SQLite store: every tamper case is named by ``maint audit verify``, signatures made
and checked by the real ssh-keygen, prune keeps the chain verifiable.

``audit verify`` and ``audit export`` run as real subprocesses on an untouched store; the tamper cases run
``maint.cli.main`` in-process (``maint_cli``): the same command, without a Python start per check."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from http_fake import FakeHTTPServer
from processes import READY_THEN_WAIT, released_together
from store_history import (
    as_before_state_coverage,
    make_run,
    make_ticket,
    retention_history,
    sa_text,
    signing_key,
)

from maint import config as config_module
from maint.store import ResultRecord, Store
from maint.store import ledger as ledger_module
from maint.tickets import react

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A store with three runs (one failing), a ticket with a delivery; returns the SQLite file."""
    path = tmp_path / "maint.db"
    store = Store(f"sqlite:///{path}")
    make_run(store, "run-a", "2026-11-20T02:00:00.000Z")
    make_run(store, "run-b", "2026-11-21T02:00:00.000Z", failing=("web-01", "root-disk"))
    make_ticket(store, "run-b", "2026-11-21T02:05:00.000Z")
    make_run(store, "run-c", "2026-11-22T02:00:00.000Z")
    store.close()
    return path


def verify(run_maint: RunMaint, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_maint("audit", "verify", "--db", f"sqlite:///{path}", *extra)


def entry_of(path: Path, kind: str, ref: str) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute(
            "SELECT max(seq) FROM ledger WHERE kind = ? AND ref = ?", (kind, ref)
        ).fetchone()[0])  # fmt: skip


def tamper(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA foreign_keys=OFF")
        for statement in statements:
            connection.execute(statement)


def test_an_untouched_store_verifies(run_maint: RunMaint, history: Path) -> None:
    done = verify(run_maint, history)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(history) as connection:
        count, head = connection.execute("SELECT count(*), max(seq) FROM ledger").fetchone()
        kinds = dict(connection.execute("SELECT kind, count(*) FROM ledger GROUP BY kind").fetchall())
    # 3 runs x (start + end) entries, 27 results, 1 ticket event, 1 delivery, the ticket's row x (opened +
    # the backend's reference)
    assert kinds == {"run": 6, "result": 27, "ticket": 1, "delivery": 1, "ticket-state": 2}
    assert done.stdout.startswith(f"ledger intact: {count} entries (1-{head}), head {head}:")
    report = json.loads(verify(run_maint, history, "--format", "json").stdout)
    assert report["intact"] is True and report["problems"] == [] and report["head"]["entry"] == head


def test_an_edited_result_is_named(maint_cli: RunMaint, history: Path) -> None:
    result_id = "14"  # run-b's results are 10-18
    tamper(history, f"UPDATE results SET status = 'ok', summary = 'root-disk ok' WHERE id = {result_id}")
    done = verify(maint_cli, history)
    assert done.returncode == 4
    entry = entry_of(history, "result", result_id)
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"ledger broken: entry {entry}: result {result_id} (run run-b, ")
    assert first.endswith("was changed after it was recorded")


def test_a_deleted_result_row_is_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "DELETE FROM results WHERE id = 12")
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert done.stdout.splitlines()[0] == (
        f"ledger broken: entry {entry_of(history, 'result', '12')}: result 12 (run run-b) was deleted"
    )


def test_a_deleted_ledger_entry_is_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "DELETE FROM ledger WHERE seq = 17")
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert done.stdout.splitlines()[0] == "ledger broken: entry 17 deleted from the ledger"


def test_reordered_entries_are_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "UPDATE ledger SET seq = -1 WHERE seq = 20", "UPDATE ledger SET seq = 20 WHERE seq = 21",
           "UPDATE ledger SET seq = 21 WHERE seq = -1")  # fmt: skip
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert done.stdout.splitlines()[0].startswith("ledger broken: entry 20 (")


def test_swapped_result_rows_are_named(maint_cli: RunMaint, history: Path) -> None:
    # Reorder the record itself: two results exchange their content (ids stay in place).
    tamper(history, "UPDATE results SET id = -1 WHERE id = 5", "UPDATE results SET id = 5 WHERE id = 6",
           "UPDATE results SET id = 6 WHERE id = -1")  # fmt: skip
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert f"entry {entry_of(history, 'result', '5')}: result 5 (run run-a, " in done.stdout.splitlines()[0]


def test_an_altered_entry_is_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "UPDATE ledger SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 9")
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert done.stdout.splitlines()[0].startswith("ledger broken: entry 9 (")
    assert "was altered: its hash does not match" in done.stdout.splitlines()[0]


def test_a_truncated_ledger_is_named(maint_cli: RunMaint, history: Path) -> None:
    with sqlite3.connect(history) as connection:
        head = connection.execute("SELECT max(seq) FROM ledger").fetchone()[0]
    tamper(history, f"DELETE FROM ledger WHERE seq > {head - 3}")
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert done.stdout.splitlines()[0] == (
        f"ledger broken: the ledger ends at entry {head - 3} but {head} entries were written: "
        f"entries {head - 2}-{head} were removed (truncated)"
    )
    # Cutting the head row too still leaves rows no entry covers.
    tamper(history, f"UPDATE ledger_head SET seq = {head - 3}, hash = (SELECT hash FROM ledger WHERE seq = {head - 3})")
    again = verify(maint_cli, history)
    assert again.returncode == 4
    assert "is not in the ledger (added after the fact, or the ledger was cut after entry" in again.stdout


def test_a_truncated_results_table_is_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "DELETE FROM results WHERE id > 24")
    done = verify(maint_cli, history)
    assert done.returncode == 4
    first = entry_of(history, "result", "25")
    assert done.stdout.splitlines()[0] == f"ledger broken: entry {first}: result 25 (run run-c) was deleted"
    assert "result 27 (run run-c) was deleted" in done.stdout


def test_an_inserted_result_is_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "INSERT INTO results (run_id, host, playbook, step, step_type, attempt, status, summary, metrics,"
                    " output, started, duration, severity, tier) VALUES ('run-a', 'web-09', 'health', 'ntp', 'command',"
                    " 1, 'ok', 'ok', '{}', '', '2026-11-20T02:00:00.000Z', 0.1, 'warning', 'L1')")  # fmt: skip
    done = verify(maint_cli, history)
    assert done.returncode == 4
    first = done.stdout.splitlines()[0]
    assert first.startswith("ledger broken: result 28 (run run-a, web-09 ntp) is not in the ledger")


def test_an_edited_ticket_action_and_run_are_named(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "UPDATE ticket_events SET actor = 'mallory' WHERE id = 1",
           "UPDATE runs SET reason = 'x' WHERE id = 'run-a'")
    done = verify(maint_cli, history, "--format", "json")
    assert done.returncode == 4
    messages = [problem["message"] for problem in json.loads(done.stdout)["problems"]]
    assert f"entry {entry_of(history, 'run', 'run-a')}: run run-a was changed after it was recorded" in messages
    event = f"entry {entry_of(history, 'ticket', '1')}: ticket event 1, opened of ticket 1"
    assert any(message.startswith(event) for message in messages)


def test_a_store_from_before_the_ledger_is_adopted(maint_cli: RunMaint, history: Path) -> None:
    tamper(history, "DROP TABLE ledger", "DROP TABLE ledger_head", "DROP TABLE alembic_version")
    Store(f"sqlite:///{history}").close()  # opening it creates the ledger over the rows it finds
    assert verify(maint_cli, history).returncode == 0
    with sqlite3.connect(history) as connection:
        # runs, results, the ticket event, the delivery and the ticket's row
        assert connection.execute("SELECT count(*) FROM ledger").fetchone()[0] == 3 + 27 + 1 + 1 + 1


def test_tickets_and_alerts_of_a_store_from_before_their_coverage_are_adopted(
    maint_cli: RunMaint, tickets_history: Path
) -> None:
    url = f"sqlite:///{tickets_history}"
    as_before_state_coverage(url)
    with sqlite3.connect(tickets_history) as connection:
        head = connection.execute("SELECT max(seq) FROM ledger").fetchone()[0]
    Store(url).close()  # opening it appends an entry for each ticket and alert-state row, once
    Store(url).close()
    done = verify(maint_cli, tickets_history)
    assert done.returncode == 0, done.stdout
    with sqlite3.connect(tickets_history) as connection:
        adopted = connection.execute("SELECT kind, ref FROM ledger WHERE seq > ? ORDER BY seq", (head,)).fetchall()
    assert adopted == [("ticket-state", "1"), ("ticket-state", "2"), ("alert-state", "db-01/backup")]
    tamper(tickets_history, "UPDATE tickets SET status = 'resolved' WHERE id = 2")
    caught = verify(maint_cli, tickets_history)
    assert caught.returncode == 4
    assert caught.stdout.splitlines()[0] == (
        f"ledger broken: entry {head + 2}: ticket #2 (db-01/backup) was changed after it was recorded"
    )
    # Removing the record of the adoption (and of the schema revision, so that opening the store takes it
    # for an old one) to have the edited rows adopted again is named too.
    tamper(tickets_history, "DELETE FROM ledger_coverage", "DROP TABLE alembic_version")
    Store(url).close()
    again = verify(maint_cli, tickets_history)
    assert again.returncode == 4
    assert again.stdout.splitlines()[0].startswith(f"ledger broken: entry {head + 1} covers a ticket-state row "
                                                   "before the ledger began to cover them")  # fmt: skip


def test_export_jsonl_and_csv(run_maint: RunMaint, history: Path) -> None:
    tamper(history, "UPDATE results SET summary = '=HYPERLINK(1)' WHERE id = 1")
    jsonl = run_maint("audit", "export", "--db", f"sqlite:///{history}")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [line["entry"] for line in lines] == list(range(1, len(lines) + 1))
    result = next(line for line in lines if line["kind"] == "result" and line["ref"] == "1")
    assert result["record"]["host"] == "web-01" and result["record"]["step"] == "root-disk"
    assert lines[1]["prev"] == lines[0]["hash"]
    since = run_maint("audit", "export", "--db", f"sqlite:///{history}", "--since", "2099-01-01")
    assert since.returncode == 0 and since.stdout == ""
    out = history.parent / "audit.csv"
    table = run_maint("audit", "export", "--db", f"sqlite:///{history}", "--format", "csv", "-o", out)
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == len(lines)
    assert rows[2]["host"] == "web-01" and rows[2]["kind"] == "result"
    assert next(row for row in rows if row["kind"] == "result" and row["ref"] == "1")["summary"] == "'=HYPERLINK(1)"
    bad = run_maint("audit", "export", "--db", f"sqlite:///{history}", "--since", "yesterday")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--since" in bad.stderr


@pytest.fixture
def signing(tmp_path: Path) -> tuple[Path, Path]:
    """An ed25519 key for maint.yml and an allowed_signers file naming it."""
    return signing_key(tmp_path)


def test_signed_heads_catch_a_rewritten_chain(
    maint_cli: RunMaint, history: Path, signing: tuple[Path, Path]
) -> None:
    key, signers = signing
    store = Store(f"sqlite:///{history}")
    with store.engine.begin() as connection:
        for run_id in ("run-a", "run-b", "run-c"):
            ledger_module.seal(connection, run_id, key)
    store.close()
    good = verify(maint_cli, history, "--signers", signers)
    assert good.returncode == 0, good.stdout
    assert good.stdout.rstrip().endswith("; 3 signatures verified")
    # Someone with write access edits a result and recomputes the whole chain: the chain alone agrees...
    tamper(history, "UPDATE results SET status = 'ok' WHERE id = 14")
    rewrite_chain(history)
    assert verify(maint_cli, history).returncode == 0
    # ...the signatures do not.
    caught = verify(maint_cli, history, "--signers", signers)
    assert caught.returncode == 4
    assert "the signature of run run-a covers entry" in caught.stdout
    # An unsigned finished run is reported with --signers.
    other = history.parent / "other.db"
    store = Store(f"sqlite:///{other}")
    make_run(store, "run-x", "2026-11-23T02:00:00.000Z")
    store.close()
    unsigned = verify(maint_cli, other, "--signers", signers)
    assert unsigned.returncode == 4 and "run run-x has no valid signature" in unsigned.stdout
    missing = verify(maint_cli, other, "--signers", history.parent / "nope")
    assert missing.returncode == 3 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def rewrite_chain(path: Path) -> None:
    """What a forger would do: recompute every digest and hash after editing rows."""
    store = Store(f"sqlite:///{path}")
    with store.engine.begin() as connection:
        entries = connection.execute(sa_text("SELECT seq, at, kind, ref, run_id FROM ledger ORDER BY seq")).all()
        prev = ledger_module.GENESIS
        for seq, at, kind, ref, run_id in entries:
            table, key_column, _ = ledger_module.TABLES[kind]
            key = ref if kind == "run" else int(ref)
            import sqlalchemy as sa

            row = connection.execute(sa.select(table).where(key_column == key)).mappings().one()
            digest = ledger_module.row_digest(row)
            current = ledger_module.entry_hash(seq, at, kind, ref, run_id, digest, prev)
            connection.execute(sa_text("UPDATE ledger SET digest = :d, prev = :p, hash = :h WHERE seq = :s"),
                               {"d": digest, "p": prev, "h": current, "s": seq})  # fmt: skip
            prev = current
        connection.execute(sa_text("UPDATE ledger_head SET hash = :h"), {"h": prev})
    store.close()


def test_head_anchor_catches_a_removed_last_run(maint_cli: RunMaint, history: Path) -> None:
    before = verify(maint_cli, history).stdout.split("head ")[1].strip()
    assert verify(maint_cli, history, "--head", before).returncode == 0
    # Remove run-c entirely (rows, entries, head): the remaining chain is consistent...
    with sqlite3.connect(history) as connection:
        first = connection.execute("SELECT min(seq) FROM ledger WHERE run_id = 'run-c'").fetchone()[0]
    tamper(history, "DELETE FROM results WHERE run_id = 'run-c'", "DELETE FROM runs WHERE id = 'run-c'",
           f"DELETE FROM ledger WHERE seq >= {first}",
           f"UPDATE ledger_head SET seq = {first - 1}, hash = (SELECT hash FROM ledger WHERE seq = {first - 1})")
    assert verify(maint_cli, history).returncode == 0
    # ...but not with the head kept elsewhere.
    caught = verify(maint_cli, history, "--head", before)
    assert caught.returncode == 4
    assert f"entry {before.split(':')[0]} given with --head is not in the ledger" in caught.stdout
    bad = verify(maint_cli, history, "--head", "12")
    assert bad.returncode == 2 and "ENTRY:HASH" in bad.stderr


def test_prune_keeps_the_chain_verifiable(
    run_maint: RunMaint, tmp_path: Path, signing: tuple[Path, Path]
) -> None:
    # Subprocesses: runs prune as a user or a cron job runs it.
    key, signers = signing
    path = tmp_path / "maint.db"
    store = Store(f"sqlite:///{path}")
    retention_history(store, key, old_runs=6)
    store.close()
    (tmp_path / "maint.yml").write_text(f"audit:\n  signing_key: {key}\n", encoding="utf-8")
    db = f"sqlite:///{path}"
    dry = run_maint("runs", "prune", "--keep-last", "2", "--older-than", "400d", "--dry-run", "--db", db)
    assert dry.returncode == 0, dry.stderr
    assert "would prune 5 runs (45 results), 1 resolved tickets" in dry.stdout
    assert verify(run_maint, path, "--signers", signers).returncode == 0
    done = run_maint("runs", "prune", "--keep-last", "2", "--older-than", "400d", "--format", "json", "--db", db)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runs"] == ["run-5", "run-4", "run-3", "run-2", "run-1"]
    assert report["results"] == 45 and report["tickets"] == 1 and report["signed"] is True
    assert report["ledger_entries_dropped"] > 0
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
        assert connection.execute("SELECT min(seq) FROM ledger").fetchone()[0] == report["chain_starts_after"] + 1
    checked = verify(run_maint, path, "--signers", signers)
    assert checked.returncode == 0, checked.stdout
    # A later prune folds the first checkpoint into the next one; tampering after it is still caught.
    again = run_maint("runs", "prune", "--keep-last", "1", "--db", db, "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["runs"] == ["run-6"]
    assert verify(run_maint, path, "--signers", signers).returncode == 0
    tamper(path, "DELETE FROM results WHERE id = (SELECT min(id) FROM results)")
    caught = verify(run_maint, path)
    assert caught.returncode == 4 and "(run run-7) was deleted" in caught.stdout
    refused = run_maint("runs", "prune", "--db", db)
    assert refused.returncode == 2 and "--keep-last" in refused.stderr


def test_a_result_recorded_twice_is_named(maint_cli: RunMaint, history: Path) -> None:
    store = Store(f"sqlite:///{history}")
    with store.engine.begin() as connection:
        seq = ledger_module.append(connection, "result", [5])  # a valid entry, chained, for a row already covered
    store.close()
    done = verify(maint_cli, history)
    assert done.returncode == 4
    assert done.stdout.splitlines()[0] == f"ledger broken: entry {seq} records result 5 a second time"


def test_a_signature_vouches_for_the_chain_before_it(
    maint_cli: RunMaint, history: Path, signing: tuple[Path, Path]
) -> None:
    key, signers = signing
    store = Store(f"sqlite:///{history}")
    with store.engine.begin() as connection:  # signing turned on after run-c: runs a and b are covered
        ledger_module.seal(connection, "run-c", key)
    make_run(store, "run-d", "2026-11-23T02:00:00.000Z")
    unsigned = verify(maint_cli, history, "--signers", signers)
    assert unsigned.returncode == 4
    assert unsigned.stdout.splitlines() == [
        "ledger broken: run run-d has no valid signature (its entries end at 48; the last valid signature covers "
        "entry 37)"
    ]
    with store.engine.begin() as connection:
        seq, _ = ledger_module.seal(connection, "run-d", key)
    store.close()
    assert verify(maint_cli, history, "--signers", signers).returncode == 0
    tamper(history, f"DELETE FROM ledger_signatures WHERE seq = {seq}")
    removed = verify(maint_cli, history, "--signers", signers)
    assert removed.returncode == 4 and "run run-d has no valid signature" in removed.stdout


def open_at_once(path: Path, processes: int = 3) -> None:
    """Open the SQLite store ``path`` from several processes at the same moment (each imported maint before
    the go); each must succeed."""
    script = "from maint.store import Store\n" + READY_THEN_WAIT + "Store('sqlite:///' + sys.argv[1]).close()\n"
    for opener in released_together([(script, str(path))] * processes):
        _, errors = opener.communicate(timeout=60)
        assert opener.returncode == 0, errors


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    for round_number in range(4):
        path = tmp_path / f"new-{round_number}.db"
        open_at_once(path)
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT seq FROM ledger_head").fetchall() == [(0,)]
            covered = connection.execute("SELECT kind, seq FROM ledger_coverage ORDER BY kind").fetchall()
        assert covered == [("alert-state", 0), ("ticket-state", 0)]


def test_processes_opening_an_older_store_at_once_adopt_its_ticket_once(
    maint_cli: RunMaint, history: Path
) -> None:
    as_before_state_coverage(f"sqlite:///{history}")
    for round_number in range(3):
        path = history.parent / f"old-{round_number}.db"
        with sqlite3.connect(history) as source, sqlite3.connect(path) as copy:
            source.backup(copy)
        open_at_once(path)
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT count(*) FROM ledger WHERE kind = 'ticket-state'").fetchone() == (1,)
        assert verify(maint_cli, path).returncode == 0


def test_whole_numbers_digest_alike_however_sqlite_returns_them(maint_cli: RunMaint, tmp_path: Path) -> None:
    # A skipped step is recorded with duration 0 (an int): SQLite returns it as 0 from the INSERT and
    # as 0.0 from a later SELECT; the record is the same and must verify.
    path = tmp_path / "maint.db"
    store = Store(f"sqlite:///{path}")
    make_run(store, "run-a", "2026-11-20T02:00:00.000Z")
    store.add_results([ResultRecord(
        run_id="run-a", host="web-01", playbook="health", step="clock", step_type="time.sync", status="skipped",
        exit_code=None, summary="condition is false", metrics={"offset": 0, "days": 365.0}, output="",
        started="2026-11-20T02:00:01.000Z", duration=0,
    )])  # fmt: skip
    store.close()
    done = verify(maint_cli, path)
    assert done.returncode == 0, done.stdout


def test_last_names_the_newest_run(maint_cli: RunMaint, history: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{history}"
    shown = maint_cli("runs", "show", "last", "--format", "json", "--db", db)
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == "run-c"
    report = maint_cli("report", "last", "--format", "json", "--db", db)
    assert report.returncode == 0 and json.loads(report.stdout)["id"] == "run-c"
    empty_store = f"sqlite:///{tmp_path / 'empty.db'}"
    assert maint_cli("db", "upgrade", "--db", empty_store).returncode == 0  # a store that holds no run
    empty = maint_cli("runs", "show", "last", "--db", empty_store)
    assert empty.returncode == 3 and "no run recorded" in empty.stderr and "Traceback" not in empty.stderr


# -- ticket and alert-state rows ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ticket_template(tmp_path_factory: pytest.TempPathFactory, maint_bin: Path) -> Path:
    """A project whose store went through runs that opened, escalated and resolved tickets (and
    forgot a healthy pair's alert state), operator actions, deliveries to a webhook and a prune; built
    once, copied by :func:`tickets_history`."""
    directory = tmp_path_factory.mktemp("tickets") / "project"
    directory.mkdir()
    receiver = FakeHTTPServer()
    receiver.route("POST", "/hook")(lambda request: (200, {"ok": True}))
    receiver.start()
    try:
        (directory / "maint.yml").write_text(
            f"store: sqlite:///{directory / 'maint.db'}\n"
            "tickets:\n  flap: {window: 3}\n  remediation: {runs: 1}\n  escalation:\n    - occurrences: 3\n"
            f"  timeout: 1s\n  backends:\n    hook:\n      type: webhook\n      url: {receiver.url}/hook\n"
            "  routing:\n    - backends: [hook]\n",
            encoding="utf-8",
        )  # fmt: skip
        store = Store(f"sqlite:///{directory / 'maint.db'}")
        config = config_module.load(project_dir=directory)
        # run-1 opens #1 web-01/root-disk, run-2 opens #2 db-01/backup (#1 passes, but flaps), run-4
        # escalates #2, resolves #1 and forgets web-01/root-disk's alert state (nothing left to remember).
        failures = (("web-01", "root-disk"), ("db-01", "backup"), ("db-01", "backup"), ("db-01", "backup"))
        for number, failing in enumerate(failures, 1):
            run_id = f"run-{number}"
            make_run(store, run_id, f"2026-11-2{number}T02:00:00.000Z", failing=failing)
            document = store.get_run(run_id)
            react(store, config, document.run, document.results, {}, {}, lambda book, host: "", directory)
        store.close()
        environment = {**os.environ, "MAINT_CONFIG": str(directory / "maint.yml")}
        for action in (("ack", "2", "-m", "looking"), ("comment", "2", "by hand"), ("escalate", "2"), ("sync",)):
            done = subprocess.run([str(maint_bin), "tickets", *action], cwd=directory, capture_output=True, text=True,
                                  env=environment, timeout=60, check=False)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
        assert "0 waiting" in done.stdout
    finally:
        receiver.stop()
    return directory


@pytest.fixture
def tickets_history(ticket_template: Path, tmp_path: Path) -> Path:
    """A copy of :func:`ticket_template`'s store for one test; returns the SQLite file."""
    path = tmp_path / "maint.db"
    with sqlite3.connect(ticket_template / "maint.db") as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    return path


def test_tickets_alerts_actions_deliveries_and_prune_verify(maint_cli: RunMaint, tickets_history: Path) -> None:
    with sqlite3.connect(tickets_history) as connection:
        tickets = connection.execute("SELECT id, key, status, tier, refs FROM tickets ORDER BY id").fetchall()
        alerts = [key for (key,) in connection.execute("SELECT key FROM alerts ORDER BY key")]
        kinds = dict(connection.execute("SELECT kind, count(*) FROM ledger GROUP BY kind").fetchall())
        forgotten = connection.execute(
            "SELECT digest FROM ledger WHERE kind = 'alert-state' AND ref = 'web-01/root-disk' ORDER BY seq DESC"
        ).fetchone()  # fmt: skip
    assert [(number, key, status, tier) for number, key, status, tier, _ in tickets] == [
        (1, "web-01/root-disk", "resolved", "L1"), (2, "db-01/backup", "escalated", "L3"),
    ]  # fmt: skip
    assert all("hook" in json.loads(refs) for *_, refs in tickets)  # delivered: the backend's reference
    assert alerts == ["db-01/backup"] and forgotten == (ledger_module.DELETED,)
    # 6 events from runs and 3 operator actions, each delivered; 6 alert-state writes and 1 deletion
    assert (kinds["ticket"], kinds["delivery"], kinds["alert-state"]) == (9, 9, 7)
    assert verify(maint_cli, tickets_history).returncode == 0
    db = f"sqlite:///{tickets_history}"
    exported = [json.loads(line) for line in maint_cli("audit", "export", "--db", db).stdout.splitlines()]
    states = [(line["kind"], line["ref"], (line["record"] or {}).get("failing")) for line in exported
              if line["kind"] == "alert-state"]  # fmt: skip
    assert states[-2:] == [("alert-state", "db-01/backup", True), ("alert-state", "web-01/root-disk", None)]

    pruned = maint_cli("runs", "prune", "--keep-last", "1", "--older-than", "1d", "--format", "json", "--db", db)
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["tickets"] == 1
    done = verify(maint_cli, tickets_history)
    assert done.returncode == 0, done.stdout
    listed = maint_cli("tickets", "list", "--status", "all", "--format", "json", "--db", db)
    assert [ticket["id"] for ticket in json.loads(listed.stdout)] == [2]
    resolved = maint_cli("tickets", "resolve", "2", "-m", "fixed", "--db", db)
    assert resolved.returncode == 0, resolved.stderr
    assert verify(maint_cli, tickets_history).returncode == 0
    # The pruned ticket cannot come back unnoticed: its deletion is in the chain.
    tamper(tickets_history, "INSERT INTO tickets SELECT 1, 'web-01/root-disk', host, \"check\", step_type, "
                            "playbook, tier, severity, 'open', flapping, summary, opened, updated, NULL, tier_since, "
                            "occurrences, tier_occurrences, first_run, last_run, groups, refs, runbook FROM tickets "
                            "WHERE id = 2")  # fmt: skip
    caught = verify(maint_cli, tickets_history)
    assert caught.returncode == 4
    entry = entry_of(tickets_history, "ticket-state", "1")
    assert caught.stdout.splitlines()[0] == (
        f"ledger broken: entry {entry} records that ticket #1 (web-01/root-disk) was deleted, but it is there: "
        "added again after the fact"
    )


TICKET_TAMPERING = {
    "edited-ticket": (
        ["UPDATE tickets SET status = 'resolved' WHERE id = 2"],
        "entry {ticket}: ticket #2 (db-01/backup) was changed after it was recorded",
    ),
    "inserted-ticket": (
        ["INSERT INTO tickets SELECT 3, 'web-02/ntp', 'web-02', 'ntp', step_type, playbook, tier, severity, status, "
         "flapping, summary, opened, updated, resolved, tier_since, occurrences, tier_occurrences, first_run, "
         "last_run, groups, refs, runbook FROM tickets WHERE id = 2"],
        "ticket #3 (web-02/ntp) is not in the ledger (added after the fact, or the ledger was cut after entry {head})",
    ),
    "deleted-ticket": (
        ["DELETE FROM tickets WHERE id = 2"],
        "entry {ticket}: ticket #2 was deleted",
    ),
    "edited-alert": (
        ["UPDATE alerts SET failing = 0, consecutive_failures = 0 WHERE key = 'db-01/backup'"],
        "entry {alert}: the alert state of db-01/backup was changed after it was recorded",
    ),
    "deleted-alert": (
        ["DELETE FROM alerts WHERE key = 'db-01/backup'"],
        "entry {alert}: the alert state of db-01/backup was deleted",
    ),
    "inserted-alert": (
        ["INSERT INTO alerts SELECT 'web-02/ntp', 'web-02', 'ntp', failing, consecutive_failures, consecutive_passes, "
         "hard, flapping, since, last_run, history FROM alerts WHERE key = 'db-01/backup'"],
        "the alert state of web-02/ntp is not in the ledger (added after the fact, or the ledger was cut after entry "
        "{head})",
    ),
    "returned-alert": (  # the healthy pair's state that maint deleted, put back
        ["INSERT INTO alerts SELECT 'web-01/root-disk', 'web-01', 'root-disk', failing, consecutive_failures, "
         "consecutive_passes, hard, flapping, since, last_run, history FROM alerts WHERE key = 'db-01/backup'"],
        "entry {forgotten} records that the alert state of web-01/root-disk was deleted, but it is there: added "
        "again after the fact",
    ),
}


@pytest.mark.parametrize("case", list(TICKET_TAMPERING))
def test_an_edited_inserted_or_deleted_ticket_or_alert_row_is_named(
    maint_cli: RunMaint, tickets_history: Path, case: str
) -> None:
    statements, expected = TICKET_TAMPERING[case]
    with sqlite3.connect(tickets_history) as connection:
        head = connection.execute("SELECT max(seq) FROM ledger").fetchone()[0]
    values = {"head": head, "ticket": entry_of(tickets_history, "ticket-state", "2"),
              "alert": entry_of(tickets_history, "alert-state", "db-01/backup"),
              "forgotten": entry_of(tickets_history, "alert-state", "web-01/root-disk")}  # fmt: skip
    tamper(tickets_history, *statements)
    done = verify(maint_cli, tickets_history)
    assert done.returncode == 4, done.stdout
    assert done.stdout.splitlines() == [f"ledger broken: {expected.format(**values)}"]
    if case == "edited-ticket":  # what the issue saw: the ticket vanished from the list, verify said intact
        listed = maint_cli("tickets", "list", "--format", "json", "--db", f"sqlite:///{tickets_history}")
        assert json.loads(listed.stdout) == []
