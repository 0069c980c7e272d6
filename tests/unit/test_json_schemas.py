"""The JSON Schemas maint publishes for its ``--format json`` documents are themselves valid (Draft 2020-12),
ship with the package, and every ``$ref`` between them resolves."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
from json_documents import registry, validate
from jsonschema import Draft202012Validator

from maint.reports.documents import SCHEMA_VERSION, SCHEMAS, versioned

NAMES = sorted(path.name for path in SCHEMAS.glob("*.schema.json"))


def test_the_schemas_are_there_and_packaged() -> None:
    assert {"run.schema.json", "runs-list.schema.json", "error.schema.json", "tickets-list.schema.json",
            "ticket.schema.json"} <= set(NAMES)  # fmt: skip
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).parents[2] / "setup.cfg")
    assert "data/schemas/*.json" in setup["options.package_data"]["maint"]


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_valid_draft_2020_12_and_its_references_resolve(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    resolver = registry().resolver()
    for reference in _references(schema):
        target = reference if reference.partition("#")[0] else name + reference
        resolver.lookup(target)  # raises when the file or the pointer is missing


def test_a_document_of_another_version_or_without_one_is_refused() -> None:
    error = {"error": {"kind": "bad-input", "message": "x", "hint": None}, "exit_code": 3}
    validate(versioned(error), "error")
    with pytest.raises(Exception, match="schema_version"):
        validate(error, "error")
    with pytest.raises(Exception, match=str(SCHEMA_VERSION)):
        validate({**error, "schema_version": SCHEMA_VERSION + 1}, "error")


def test_versioned_puts_the_version_first_in_objects_and_in_each_object_of_a_list() -> None:
    assert list(versioned({"id": 1})) == ["schema_version", "id"]
    assert versioned([{"id": 1}, "x"]) == [{"schema_version": SCHEMA_VERSION, "id": 1}, "x"]


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []
