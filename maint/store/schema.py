"""Every table of the store, in one SQLAlchemy metadata: runs and results, tickets, alert state and the
outbox, and the ledger's tables. The modules that read and write them (:mod:`maint.store`,
:mod:`maint.store.tickets`, :mod:`maint.store.ledger_writer`, ...) import their tables from here, so
none of them needs another to exist first.

The ledger's format is defined here too (which table each kind of entry covers, how a row and an
entry hash), so that the ledger's writer and its verifier share it without importing each other.

This is the schema at the newest revision of :mod:`maint.store.migrations`: a change here is a new
revision there (tests/integration/test_store_migrations.py compares the two).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from maint.store.classify import derive

REF_LENGTH = 512  # a ledger entry's ref: an alert's key (HOST/CHECK) is up to 511 characters

# The PostgreSQL advisory lock key that serialises creating and upgrading a store's tables ("maint" in ASCII).
SCHEMA_LOCK = int.from_bytes(b"maint", "big")

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("started", sa.String(40), nullable=False),
    sa.Column("finished", sa.String(40)),
    sa.Column("operator", sa.String(255), nullable=False),
    sa.Column("controller", sa.String(255), nullable=False),
    sa.Column("argv", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("playbooks", sa.JSON, nullable=False),
    sa.Column("inventory", sa.JSON, nullable=False),
    sa.Column("maint_version", sa.String(40), nullable=False),
    sa.Column("ci", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("hosts", sa.JSON, nullable=False),
    sa.Column("counts", sa.JSON),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("playbook", sa.String(255), nullable=False),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("step_type", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("output", sa.Text, nullable=False),
    sa.Column("started", sa.String(40), nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False, default="warning"),
    sa.Column("tier", sa.String(4), nullable=False, default="L1"),
    # Since revision maint_0002: why a skipped result was skipped (maint.store.classify.SkipKind; NULL for
    # other statuses), and the Ansible task of an ansible step's task result (whose step is "STEP/TASK").
    sa.Column("skip_kind", sa.String(16)),
    sa.Column("task", sa.String(255)),
    # Since revision maint_0003: the command the step sent to the host, secrets masked (NULL when it sent
    # none: not connected, skipped, an Ansible step; and for rows from before).
    sa.Column("command", sa.Text),
    sa.UniqueConstraint("run_id", "host", "playbook", "step", "attempt", name="results_one_per_pair"),
)
sa.Index("results_host_step", results.c.host, results.c.step)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("check", sa.String(255), nullable=False),
    sa.Column("failing", sa.Boolean, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("consecutive_passes", sa.Integer, nullable=False),
    sa.Column("hard", sa.Boolean, nullable=False),
    sa.Column("flapping", sa.Boolean, nullable=False),
    sa.Column("since", sa.String(40), nullable=False),
    sa.Column("last_run", sa.String(40), nullable=False),
    sa.Column("history", sa.JSON, nullable=False),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(512), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("check", sa.String(255), nullable=False),
    sa.Column("step_type", sa.String(64), nullable=False),
    sa.Column("playbook", sa.String(255), nullable=False),
    sa.Column("tier", sa.String(4), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("flapping", sa.Boolean, nullable=False, default=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("opened", sa.String(40), nullable=False),
    sa.Column("updated", sa.String(40), nullable=False),
    sa.Column("resolved", sa.String(40)),
    sa.Column("tier_since", sa.String(40), nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("tier_occurrences", sa.Integer, nullable=False),
    sa.Column("first_run", sa.String(40)),
    sa.Column("last_run", sa.String(40)),
    sa.Column("groups", sa.JSON, nullable=False),
    sa.Column("refs", sa.JSON, nullable=False),
    sa.Column("runbook", sa.Text, nullable=False, default=""),
)

ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(40)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("ticket_events.id"), nullable=False),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("backend", sa.String(255), nullable=False),
    sa.Column("message", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending, sent
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("created", sa.String(40), nullable=False),
    sa.Column("last_attempt", sa.String(40)),
    sa.Column("sent", sa.String(40)),
    sa.Column("ref", sa.String(255)),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    # run, result, ticket (an event), delivery, prune, ticket-state (a ticket row), alert-state
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(REF_LENGTH), nullable=False),  # the covered row's id (an alert's key)
    sa.Column("run_id", sa.String(40)),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("prev", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ledger_kind_ref", ledger.c.kind, ledger.c.ref)
sa.Index("ledger_run", ledger.c.run_id)

# One row (id 1): the last entry. Appending updates it first, which serialises writers (SQLite's write
# lock, PostgreSQL's row lock) so two runs never chain onto the same entry.
ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("operator", sa.String(255), nullable=False),
    sa.Column("controller", sa.String(255), nullable=False),
    sa.Column("argv", sa.JSON, nullable=False),
    sa.Column("rule", sa.JSON, nullable=False),  # keep_last, older_than, cutoff
    sa.Column("runs", sa.JSON, nullable=False),  # ids of every run pruned so far
    sa.Column("events", sa.JSON, nullable=False),  # ids of ticket events pruned so far
    sa.Column("deliveries", sa.JSON, nullable=False),  # ids of outbox rows pruned so far
    sa.Column("counts", sa.JSON, nullable=False),  # what this prune deleted
    sa.Column("base_seq", sa.Integer, nullable=False),  # the chain now starts after this entry
    sa.Column("base_hash", sa.String(64), nullable=False),
)

signatures = sa.Table(
    "ledger_signatures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.Integer, nullable=False, index=True),  # the signed entry
    sa.Column("run_id", sa.String(40), index=True),  # the run it seals (None for a prune checkpoint)
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("key", sa.String(255), nullable=False),  # the signing key's fingerprint
    sa.Column("at", sa.String(40), nullable=False),
)

# Which kinds of rows the ledger covers since when: ``seq`` is the last entry before their coverage
# began (0 in a store created with it). A store from before a kind was covered has its rows of that
# kind adopted when it is opened (:func:`ensure_head`); the kinds the ledger has covered from its
# first version have no row here.
coverage = sa.Table(
    "ledger_coverage",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)


# -- the ledger's format ----------------------------------------------------------------------------

GENESIS = "0" * 64
# The digest of an entry that records the deletion of its row (no row's digest: every row's canonical
# JSON hashes to something else).
DELETED = "0" * 64
CHUNK = 2000  # ledger entries (or covered rows) read or appended per statement

# kind -> (table, key column, run id column or None: the writer names the run)
TABLES: dict[str, tuple[sa.Table, sa.Column[Any], sa.Column[Any] | None]] = {
    "run": (runs, runs.c.id, runs.c.id),
    "result": (results, results.c.id, results.c.run_id),
    "ticket": (ticket_events, ticket_events.c.id, ticket_events.c.run_id),
    "delivery": (outbox, outbox.c.id, None),
    "prune": (checkpoints, checkpoints.c.id, None),
    "ticket-state": (tickets, tickets.c.id, None),
    "alert-state": (alerts, alerts.c.key, None),
}
FIRST_KINDS = ("run", "result", "ticket", "delivery")  # covered since the ledger's first version
# Current state rather than history: maint writes these rows again and deletes them (a deletion is an
# entry of its own); a store whose ledger predates their coverage adopts them when opened.
STATE_KINDS = ("ticket-state", "alert-state")
# Rows written again after their first entry: each is compared with its last entry.
CHANGING = frozenset({"run", "delivery", "ticket-state", "alert-state"})


def canonical(row: Mapping[str, Any] | sa.RowMapping) -> str:
    """A row as canonical JSON: sorted keys, no spaces, UTF-8 text, whole numbers written alike whether
    int or float (the input of its digest)."""
    return json.dumps(_numbers(dict(row)), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _numbers(value: Any) -> Any:
    # SQLite hands a REAL column's 0 back as int 0 from INSERT ... RETURNING but as 0.0 from a SELECT;
    # the digest must not depend on which read it saw.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers(item) for item in value]
    return value


def row_digest(row: Mapping[str, Any] | sa.RowMapping) -> str:
    """SHA-256 (hex) of a row's canonical JSON."""
    return hashlib.sha256(canonical(row).encode("utf-8")).hexdigest()


# Columns schema revisions added to a kind's rows after the ledger began to cover them, oldest revision
# first, and how their values follow from the row's other columns. An entry written before a revision holds
# the digest of the row without that revision's columns (and the later ones'); each revision filled them in
# with exactly these values: maint_0002 a result's skip_kind and task, from its status, step, step type and
# summary; maint_0003 its command, unknown (NULL) for every row from before.
ADDED_COLUMNS: dict[str, tuple[tuple[tuple[str, ...], Callable[[Mapping[str, Any]], tuple[Any, ...]]], ...]] = {
    "result": (
        (("skip_kind", "task"), lambda row: derive(row["status"], row["step"], row["step_type"], row["summary"])),
        (("command",), lambda row: (None,)),
    ),
}


def covered_form(kind: str, row: Mapping[str, Any], digest: str) -> Mapping[str, Any] | None:
    """The form of ``row`` (of ``kind``) that an entry's ``digest`` covers: the row as stored, or for a
    row recorded before revisions added columns to its table (:data:`ADDED_COLUMNS`), the row without
    them, provided they hold the values that follow from the rest (so they were not edited either).
    None when the row matches neither: it was changed after it was recorded."""
    if row_digest(row) == digest:
        return row
    earlier: Mapping[str, Any] = row
    for columns, derived in reversed(ADDED_COLUMNS.get(kind, ())):
        if tuple(earlier[name] for name in columns) != derived(earlier):
            return None
        earlier = {name: value for name, value in earlier.items() if name not in columns}
        if row_digest(earlier) == digest:
            return earlier
    return None


def entry_hash(seq: int, at: str, kind: str, ref: str, run_id: str | None, digest: str, prev: str) -> str:
    """SHA-256 (hex) of one entry's fields and its predecessor's hash."""
    text = f"{seq}|{at}|{kind}|{ref}|{run_id or ''}|{digest}|{prev}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def head(connection: sa.Connection) -> tuple[int, str]:
    """The last entry's sequence number and hash as the head row records them (0 and the genesis hash
    for an empty ledger)."""
    row = connection.execute(sa.select(ledger_head.c.seq, ledger_head.c.hash).where(ledger_head.c.id == 1)).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS)
