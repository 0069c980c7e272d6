"""Checks on what ``--format json`` printed: exactly one document, valid against maint's published schema."""

from __future__ import annotations

import functools
import json
import subprocess
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from maint.reports.documents import SCHEMA_VERSION, SCHEMAS, schema_path


@functools.cache
def registry() -> Registry[Any]:
    """Every published schema under its file name, as the relative ``$ref``s between them name it."""
    return Registry().with_resources(
        (path.name, Resource.from_contents(json.loads(path.read_text(encoding="utf-8"))))
        for path in sorted(SCHEMAS.glob("*.schema.json"))
    )


def validate(document: Any, name: str) -> None:
    """Raise jsonschema's ValidationError unless ``document`` is valid against ``name``.schema.json."""
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    Draft202012Validator(schema, registry=registry()).validate(document)


def one_document(done: subprocess.CompletedProcess[str], code: int, schema: str) -> Any:
    """The command exited with ``code`` and its stdout is exactly one JSON document carrying ``schema_version``
    (an object; in a list, each object), valid against ``schema``; returns it."""
    assert done.returncode == code, (done.stdout, done.stderr)
    document = json.loads(done.stdout)  # raises on a second document after the first
    items = document if isinstance(document, list) else [document]
    assert all(item["schema_version"] == SCHEMA_VERSION for item in items), done.stdout
    validate(document, schema)
    return document


def error_document(done: subprocess.CompletedProcess[str], code: int, kind: str, schema: str = "error") -> Any:
    """``one_document`` of a command that failed: its ``error`` names ``kind``, its ``exit_code`` is ``code``,
    and stderr ends with the one ``maint:`` line of the error, without a traceback (as without --format json)."""
    document = one_document(done, code, schema)
    assert document["exit_code"] == code and document["error"]["kind"] == kind, document
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # A run that started said so first ("maint: run ID: 2 hosts, ..."); the error is the last line.
    assert lines and lines[-1].startswith("maint: ") and document["error"]["message"] in lines[-1], done.stderr
    assert all(line.startswith("maint: run ") for line in lines[:-1]), done.stderr
    return document
