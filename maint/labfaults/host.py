"""Lab faults and healthy host state for the host checks."""

from __future__ import annotations

from maint.lab import Fault

FAULTS: dict[str, Fault] = {}
