"""Lab faults and healthy host state for the backups checks."""

from __future__ import annotations

from maint.lab import Fault

FAULTS: dict[str, Fault] = {}
