"""Stored rows in the JSON shapes the commands show: a run (as ``runs list`` and ``runs show`` have it)
and a result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from maint.errors import ExitCode
from maint.processes import run_stale


def shown_status(row: Mapping[str, Any] | sa.RowMapping) -> tuple[str, int | None]:
    """A run row's status and exit code as readers see them: a ``running`` run of this controller whose
    process is gone (the controller was killed) is ``interrupted`` (130). The next run on this
    controller records that in the store (:meth:`Store.reap_stale_runs`); every listing shows it now."""
    if run_stale(row["status"], row["controller"], row["options"]):
        return "interrupted", int(ExitCode.INTERRUPTED)
    return row["status"], row["exit_code"]


def run_dict(row: Mapping[str, Any] | sa.RowMapping) -> dict[str, Any]:
    """A ``runs`` row as the JSON shape of a run (without results); a ``running`` run of this controller
    whose process is gone shows as ``interrupted`` (exit code 130)."""
    status, exit_code = shown_status(row)
    return {
        "id": row["id"],
        "status": status,
        "exit_code": exit_code,
        "started": row["started"],
        "finished": row["finished"],
        "operator": row["operator"],
        "controller": row["controller"],
        "reason": row["reason"],
        "argv": list(row["argv"]),
        "playbooks": list(row["playbooks"]),
        "inventory": dict(row["inventory"]),
        "maint_version": row["maint_version"],
        "ci": dict(row["ci"]),
        "options": dict(row["options"]),
        "hosts": list(row["hosts"]),
        "counts": dict(row["counts"] or {}),
    }


def result_dict(row: sa.RowMapping) -> dict[str, Any]:
    """A ``results`` row as the JSON shape of a result in a run document."""
    return {
        "host": row["host"],
        "playbook": row["playbook"],
        "step": row["step"],
        "type": row["step_type"],
        "status": row["status"],
        "exit_code": row["exit_code"],
        "summary": row["summary"],
        "metrics": dict(row["metrics"]),
        "duration": round(row["duration"], 4),
        "started": row["started"],
        "attempt": row["attempt"],
        "severity": row["severity"],
        "tier": row["tier"],
        "output": row["output"],
        "skip_kind": row["skip_kind"],
        "task": row["task"],
        "command": row["command"],
    }
