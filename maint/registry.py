"""Finds step types, executors and ticket backends through entry points; built-in ones register like any plugin."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any

STEP_TYPES = "maint.step_types"
EXECUTORS = "maint.executors"
TICKET_BACKENDS = "maint.ticket_backends"


@functools.cache
def _group(group: str) -> dict[str, Any]:
    return {entry.name: entry for entry in entry_points(group=group)}


def names(group: str) -> list[str]:
    """The registered names in ``group``, sorted."""
    return sorted(_group(group))


def load(group: str, name: str) -> Any | None:
    """The object registered as ``name`` in ``group``, or None when nothing is."""
    entry = _group(group).get(name)
    return entry.load() if entry is not None else None
