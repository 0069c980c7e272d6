"""Builders of a recorded history, written through maint's own Store API and ticket functions, so
that the ledger tests on SQLite (test_ledger) and on PostgreSQL (test_store_postgres) build the same
rows and ledger entries on either database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import sqlalchemy as sa
from processes import wait_until

from maint.store import ResultRecord, RunRecord, Store, ledger
from maint.store.tickets import Event, Ticket, add_event, enqueue, mark_sent, save_ticket

HOSTS = ("web-01", "web-02", "db-01")
STEPS = ("root-disk", "ntp", "backup")


def make_run(store: Store, run_id: str, started: str, failing: tuple[str, str] | None = None) -> None:
    """A finished run of three hosts x three steps; ``failing`` (host, step) failed."""
    store.create_run(RunRecord(
        id=run_id, started=started, operator="alice", controller="ctl", argv=["maint", "run", "health"],
        reason="nightly", playbooks=[{"name": "health", "digest": "d"}], inventory={"digest": "i"},
        maint_version="0", ci={}, options={}, hosts=list(HOSTS),
    ))  # fmt: skip
    records = []
    for host in HOSTS:
        for step in STEPS:
            status = "failed" if (host, step) == failing else "ok"
            records.append(ResultRecord(
                run_id=run_id, host=host, playbook="health", step=step, step_type="command", status=status,
                exit_code=1 if status == "failed" else 0, summary=f"{step} {status}", metrics={"used": 41.5},
                output="", started=started, duration=0.25,
            ))  # fmt: skip
    store.add_results(records[:4])
    store.add_results(records[4:])
    store.finish_run(run_id, "failed" if failing else "ok", 4 if failing else 0, started, {"ok": 9})


def make_ticket(store: Store, run_id: str, at: str, resolved: str | None = None) -> int:
    """A ticket opened by ``run_id`` with one delivery to a backend; resolved at ``resolved`` if given."""
    with store.engine.begin() as connection:
        ticket = save_ticket(connection, Ticket(
            key="web-01/root-disk", host="web-01", check="root-disk", step_type="disk.usage", playbook="health",
            tier="L1", severity="warning", status="resolved" if resolved else "open", summary="96% used", opened=at,
            updated=resolved or at, tier_since=at, resolved=resolved, first_run=run_id, last_run=run_id,
        ))  # fmt: skip
        assert ticket.id is not None
        event_id = add_event(connection, ticket.id, Event("opened", at, "maint", "96% used", run_id))
        enqueue(connection, event_id, ticket.id, "rt", {"subject": "x"}, at)
        row_id = connection.execute(sa_text("SELECT max(id) FROM outbox")).scalar()
        mark_sent(connection, int(row_id), ticket.id, "rt", "RT-7", at)
        if resolved:
            add_event(connection, ticket.id, Event("resolved", resolved, "maint", "passes again", run_id))
    return ticket.id


def sa_text(sql: str) -> sa.TextClause:
    """Raw SQL for a SQLAlchemy connection (the tests' tampering and chain rewriting)."""
    return sa.text(sql)


def signing_key(directory: Path, principal: str = "maint@ctl") -> tuple[Path, Path]:
    """A new ed25519 key ``directory/ledger_ed25519`` (made by the real ssh-keygen) for
    ``audit.signing_key``, and an allowed_signers file naming its public half for ``principal``."""
    key = directory / "ledger_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "maint-ledger", "-f", str(key)], check=True)
    signers = directory / "allowed_signers"
    signers.write_text(f"{principal} {key.with_suffix('.pub').read_text()}", encoding="utf-8")
    return key, signers


def retention_history(store: Store, key: Path, old_runs: int, failing: Iterable[int] = (2,)) -> None:
    """Runs ``run-1``..``run-N`` on the first of each month of 2025 (``failing`` ones with web-01 ntp
    failed), a ticket opened by run-2 and resolved a month later, a recent run ``run-N+1``, every run
    sealed with ``key``: the history the prune tests cut by age and count."""
    failed = set(failing)
    for month in range(1, old_runs + 1):
        make_run(store, f"run-{month}", f"2025-{month:02d}-01T02:00:00.000Z",
                 failing=("web-01", "ntp") if month in failed else None)  # fmt: skip
    make_ticket(store, "run-2", "2025-02-01T02:05:00.000Z", resolved="2025-03-01T02:05:00.000Z")
    make_run(store, f"run-{old_runs + 1}", "2026-11-20T02:00:00.000Z")
    with store.engine.begin() as connection:
        for month in range(1, old_runs + 2):
            ledger.seal(connection, f"run-{month}", key)


def as_before_state_coverage(url: str) -> None:
    """Rewrite a store as a version from before the ledger covered ticket and alert-state rows left it:
    the chain without their entries (renumbered, rehashed), no ``ledger_coverage`` table, no schema
    revision recorded (no ``alembic_version`` table) and, on PostgreSQL, ``ledger.ref`` as narrow as it
    was (64 characters)."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        kept = connection.execute(sa_text(
            "SELECT at, kind, ref, run_id, digest FROM ledger WHERE kind NOT IN ('ticket-state', 'alert-state') "
            "ORDER BY seq"
        )).all()  # fmt: skip
        connection.execute(sa_text("DELETE FROM ledger"))
        prev = ledger.GENESIS
        for seq, (at, kind, ref, run_id, digest) in enumerate(kept, 1):
            current = ledger.entry_hash(seq, at, kind, ref, run_id, digest, prev)
            connection.execute(ledger.ledger.insert().values(seq=seq, at=at, kind=kind, ref=ref, run_id=run_id,
                                                             digest=digest, prev=prev, hash=current))  # fmt: skip
            prev = current
        connection.execute(sa_text("UPDATE ledger_head SET seq = :s, hash = :h"), {"s": len(kept), "h": prev})
        connection.execute(sa_text("DROP TABLE ledger_coverage"))
        connection.execute(sa_text("DROP TABLE alembic_version"))
        if connection.dialect.name == "postgresql":
            connection.execute(sa_text("ALTER TABLE ledger ALTER COLUMN ref TYPE VARCHAR(64)"))
    engine.dispose()


# A store written by maint 0.1.0 (no schema revision recorded): tests/data/stores/README.md.
RELEASE_STORE = Path(__file__).resolve().parents[1] / "data" / "stores" / "release-0.1.0.db"
RELEASE_SIGNERS = RELEASE_STORE.with_name("allowed_signers")
# Its results after the upgrade to maint_0002: (playbook, step, status, skip_kind, task), each once.
RELEASE_RESULTS = {
    ("configure", "site", "skipped", "no-play", None),
    ("configure", "site/never on this host", "skipped", "ansible", "never on this host"),
    ("configure", "site/say hello", "ok", None, "say hello"),
    ("configure", "site/say hello #2", "ok", None, "say hello #2"),
    ("health", "cleanup", "error", None, None),
    ("health", "cleanup", "skipped", "check-mode", None),
    ("health", "etc-present", "failed", None, None),
    ("health", "etc-present", "ok", None, None),
    ("health", "never", "skipped", "condition", None),
    ("health", "uptime", "ok", None, None),
    ("naps", "nap1", "ok", None, None),
    ("naps", "nap2", "ok", None, None),
    ("naps", "nap3", "skipped", "window-closed", None),
    ("naps", "nap4", "skipped", "window-closed", None),
    ("serial", "first-fails", "failed", None, None),
    ("serial", "first-fails", "skipped", "aborted", None),
    ("slow", "after", "ok", None, None),
    ("slow", "after", "skipped", "interrupted", None),
    ("slow", "long", "ok", None, None),
    ("slow", "long", "skipped", "interrupted", None),
    ("slow", "quick", "ok", None, None),
}


def release_results(url: str) -> set[tuple[str, str, str, str | None, str | None]]:
    """The distinct (playbook, step, status, skip_kind, task) of the results in the store at ``url``."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa_text("SELECT playbook, step, status, skip_kind, task FROM results")).all()
    engine.dispose()
    return {(row[0], row[1], row[2], row[3], row[4]) for row in rows}


def copy_release_store(url: str) -> None:
    """Write the tables of maint 0.1.0's schema into the empty database at ``url`` (as that release created
    them: revision maint_0001's) and copy every row of :data:`RELEASE_STORE` into them, ids included."""
    from maint.store.migrations import v0001_release_0_1_0 as release

    source = sa.create_engine(f"sqlite:///{RELEASE_STORE}")
    target = sa.create_engine(url)
    with source.connect() as reading, target.begin() as writing:
        release.metadata.create_all(writing)
        for table in release.metadata.sorted_tables:
            rows = [dict(row) for row in reading.execute(sa.select(table)).mappings()]
            if rows:
                writing.execute(table.insert(), rows)
            serial = [column for column in table.primary_key if column.autoincrement is True]
            if serial and writing.dialect.name == "postgresql":  # the next id follows the copied ones
                writing.execute(sa_text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                        f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"))  # fmt: skip
    source.dispose()
    target.dispose()


# Opens the store argv[1], saying so first, and prints what opening it did to its schema.
OPENER = """
import sys
from maint.store import Store
print("opening", flush=True)
store = Store(sys.argv[1])
store.close()
print(repr(store.upgraded))
"""


def open_at_once(
    url: str, waiting: Callable[[list[int]], bool], processes: int = 3
) -> Callable[[], list[str]]:
    """Start ``processes`` processes that open the store at ``url``; return once ``waiting(pids)`` says each
    waits for the lock the caller holds meanwhile. The function returned waits for them to end and gives
    what each one's opening did to the schema (``repr(Store.upgraded)``)."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    openers = [subprocess.Popen([sys.executable, "-c", OPENER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=environment) for _ in range(processes)]  # fmt: skip
    for opener in openers:
        assert opener.stdout is not None and opener.stdout.readline() == "opening\n", opener.stderr
    wait_until(lambda: waiting([opener.pid for opener in openers]), 30, "every process waiting for the schema lock")

    def outcomes() -> list[str]:
        found = []
        for opener in openers:
            out, errors = opener.communicate(timeout=60)
            assert opener.returncode == 0, errors
            found.append(out.strip())
        return found

    return outcomes
