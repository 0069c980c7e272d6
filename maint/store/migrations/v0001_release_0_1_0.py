"""Revision maint_0001: the schema of maint 0.1.0, the last release without schema revisions.

A store without a version table was written by that release (or an earlier one): it is at this revision.
Its upgrade creates the tables of that schema that a store lacks, which is every table of a new store and
none of a store written by 0.1.0; a store from before the ledger or before its coverage table was added
gets those (and the ledger adopts their rows, :func:`maint.store.ledger.ensure_head`).

The tables are written out here as 0.1.0 defined them: later revisions change them, never this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.operations import Operations

revision = "maint_0001"
down_revision = None
summary = "the schema of maint 0.1.0"

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
    sa.Column("status", sa.String(16), nullable=False, index=True),
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
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(512), nullable=False),
    sa.Column("run_id", sa.String(40)),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("prev", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ledger_kind_ref", ledger.c.kind, ledger.c.ref)
sa.Index("ledger_run", ledger.c.run_id)

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
    sa.Column("rule", sa.JSON, nullable=False),
    sa.Column("runs", sa.JSON, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("deliveries", sa.JSON, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("base_seq", sa.Integer, nullable=False),
    sa.Column("base_hash", sa.String(64), nullable=False),
)

signatures = sa.Table(
    "ledger_signatures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.Integer, nullable=False, index=True),
    sa.Column("run_id", sa.String(40), index=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)

coverage = sa.Table(
    "ledger_coverage",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)


def upgrade(op: Operations) -> None:
    """Create the tables of maint 0.1.0's schema that the store does not have."""
    metadata.create_all(op.get_bind(), checkfirst=True)
