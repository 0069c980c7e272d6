"""Revision maint_0002: ``results.skip_kind`` (why a skipped result was skipped) and ``results.task`` (the
Ansible task of an ansible step's task result), both nullable, filled in for the rows already there from
their summary and step (:func:`maint.store.classify.derive`).

The rows keep every other column as it was, so their ledger entries still verify: an entry written before
this revision covers the row without the two columns (:func:`maint.store.ledger.covered_form`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from maint.store.classify import derive

if TYPE_CHECKING:
    from alembic.operations import Operations

revision = "maint_0002"
down_revision = "maint_0001"
summary = "results.skip_kind and results.task"

CHUNK = 2000

results = sa.table(
    "results",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("step", sa.String),
    sa.column("step_type", sa.String),
    sa.column("summary", sa.Text),
    sa.column("skip_kind", sa.String),
    sa.column("task", sa.String),
)


def upgrade(op: Operations) -> None:
    """Add the two columns (unless a store that lost its version table has them) and fill them in."""
    connection = op.get_bind()
    present = {column["name"] for column in sa.inspect(connection).get_columns("results")}
    if "skip_kind" not in present:
        op.add_column("results", sa.Column("skip_kind", sa.String(16)))
    if "task" not in present:
        op.add_column("results", sa.Column("task", sa.String(255)))
    backfill(connection)


def backfill(connection: sa.Connection) -> None:
    """Set skip_kind and task of the skipped and the Ansible results that have neither, in chunks by id."""
    query = (
        sa.select(results.c.id, results.c.status, results.c.step, results.c.step_type, results.c.summary)
        .where(
            sa.or_(results.c.status == "skipped", results.c.step_type.like("ansible%")),
            results.c.skip_kind.is_(None),
            results.c.task.is_(None),
        )
        .order_by(results.c.id)
        .limit(CHUNK)
    )
    update = (
        results.update()
        .where(results.c.id == sa.bindparam("row_id"))
        .values(skip_kind=sa.bindparam("kind"), task=sa.bindparam("name"))
    )
    last = -1
    while True:
        rows = connection.execute(query.where(results.c.id > last)).all()
        if not rows:
            return
        changes: list[dict[str, Any]] = []
        for row in rows:
            kind, task = derive(row.status, row.step, row.step_type, row.summary)
            if kind is not None or task is not None:
                changes.append({"row_id": row.id, "kind": kind, "name": task})
        if changes:
            connection.execute(update, changes)
        last = int(rows[-1].id)
