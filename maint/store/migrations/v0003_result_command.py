"""Revision maint_0003: ``results.command``, the command a step sent to its host (secrets masked), shown by
``maint run -v`` and ``maint runs show -v``. Nullable; rows from before keep NULL (what they sent was not
recorded), so their ledger entries still verify (:func:`maint.store.ledger.covered_form`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.operations import Operations

revision = "maint_0003"
down_revision = "maint_0002"
summary = "results.command"


def upgrade(op: Operations) -> None:
    """Add the column (unless a store that lost its version table has it)."""
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("results")}
    if "command" not in present:
        op.add_column("results", sa.Column("command", sa.Text))
