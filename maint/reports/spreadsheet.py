"""A run's results as CSV: one row per result (every attempt), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from maint.terminal import escape_controls

COLUMNS = (
    "run_id", "host", "playbook", "step", "type", "attempt", "status", "exit_code", "severity", "tier",
    "started", "duration", "summary",
)  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection), so command output
# such as "=HYPERLINK(...)" in a summary must stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a CSV cell: control characters shown escaped (``\\u001b``: the file is read in
    terminals too), and text that a spreadsheet would run as a formula gets a leading ``'``.

    Numbers and None are left as they are (a negative number is not a formula). Raises nothing.
    """
    if isinstance(value, str):
        value = escape_controls(value)
        if value.startswith(FORMULA_STARTS):
            return "'" + value
    return value


def results_csv(document: Mapping[str, Any]) -> str:
    """The CSV text (header and one row per result, in recorded order) of a run document; raises nothing."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for result in document["results"]:
        row = {**result, "run_id": document["id"]}
        writer.writerow([spreadsheet_cell(row[column]) for column in COLUMNS])
    return buffer.getvalue()
