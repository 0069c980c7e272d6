"""The JSON documents of ``--format json`` (a command prints exactly one on stdout, whatever the outcome).

Every document carries ``schema_version`` (:data:`SCHEMA_VERSION`): an object at its top level, each item of a
listing (a listing stays a JSON list). A command that ends with an error prints the error document instead of
its own (:func:`error_document`): ``{"schema_version", "error": {...}, "exit_code"}``, and, when the error is
about a run (a closed window, busy hosts, an interrupt), the run's document with ``error`` added. The human
line still goes to stderr. The documents' JSON Schemas ship in the package (``maint/data/schemas/``,
:func:`schema_path`); ``maint report --format json`` carries the version too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maint.errors import ExitCode

# Raised when a field is removed, renamed or changes type; adding a field keeps it.
SCHEMA_VERSION = 1
SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "schemas"


def schema_path(name: str) -> Path:
    """The JSON Schema file of the document ``name`` (``run``, ``runs-list``, ``error``, ...)."""
    return SCHEMAS / f"{name}.schema.json"


def versioned(data: Any) -> Any:
    """``data`` with ``schema_version`` first: in an object, or in each object of a list."""
    if isinstance(data, dict):
        return {"schema_version": SCHEMA_VERSION, **data}
    if isinstance(data, list):
        return [versioned(item) if isinstance(item, dict) else item for item in data]
    return data


def error_document(error: BaseException, exit_code: int, message: str, **details: Any) -> dict[str, Any]:
    """The document of a command that ended with ``error`` (``message``: the line shown on stderr, without the
    hint). ``error`` holds ``kind`` (the exit code's name: bad-input, not-started, ...), ``message``, ``hint``,
    ``source`` and ``line`` (bad input), ``store`` and ``cause`` (store unavailable) and the ``details`` given
    (``debug_log`` for an internal error). A run the error is about is the document itself, with ``error``
    added; else ``run_id`` names it when known."""
    try:
        kind = ExitCode(exit_code).name.lower().replace("_", "-")
    except ValueError:
        kind = "error"
    described: dict[str, Any] = {"kind": kind, "message": message, "hint": getattr(error, "hint", None)}
    for name in ("source", "line", "store", "cause"):
        if hasattr(error, name):
            described[name] = getattr(error, name)
    described.update(details)
    run = getattr(error, "run", None)
    if run is not None:
        return {"schema_version": SCHEMA_VERSION, **run, "error": described, "exit_code": exit_code}
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "error": described, "exit_code": exit_code}
    run_id = getattr(error, "run_id", None)
    if run_id is not None:
        document["run_id"] = run_id
    return document
