"""Loaded YAML checked against a schema section: every error with its path and line, defaults for the rest."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from maint.config.schema import Field, Items, Section
from maint.errors import BadInput
from maint.yamlfile import LineDict, LineList


class ConfigError(BadInput):
    """maint.yml is invalid; ``errors`` holds every problem found (the message shows the first)."""

    def __init__(self, errors: Sequence[str], source: str) -> None:
        more = f" (and {len(errors) - 1} more: run 'maint config validate')" if len(errors) > 1 else ""
        super().__init__(errors[0] + more)
        self.errors = list(errors)
        self.source = source


def _where(source: str, line: int | None, path: str) -> str:
    return f"{source}:{line}: At '{path}'" if line else f"{source}: At '{path}'"


def _validate(section: Section, data: Any, prefix: str, source: str, errors: list[str]) -> dict[str, Any]:
    line = getattr(data, "line", None)
    if not isinstance(data, dict):
        errors.append(f"{_where(source, line, prefix or 'top level')}: expected a mapping, got {data!r}")
        return _defaults(section)
    result: dict[str, Any] = {}
    for key in data:
        if key not in section.fields:
            close = difflib.get_close_matches(str(key), list(section.fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(section.fields)}"
            key_line = data.line_of(key) if isinstance(data, LineDict) else line
            errors.append(f"{_where(source, key_line, prefix + str(key))}: unknown option ({hint})")
    for name, spec in section.fields.items():
        path = prefix + name
        key_line = data.line_of(name) if isinstance(data, LineDict) else line
        if name not in data or data[name] is None:
            result[name] = _default(spec)
            continue
        value = data[name]
        if isinstance(spec, Section):
            if not isinstance(value, dict):
                errors.append(f"{_where(source, key_line, path)}: expected a mapping, got {value!r}")
                result[name] = _defaults(spec)
                continue
            result[name] = _validate(spec, value, path + ".", source, errors)
        elif isinstance(spec, Items):
            if not isinstance(value, list):
                errors.append(f"{_where(source, key_line, path)}: expected a list of mappings")
                result[name] = []
                continue
            items = []
            for index, item in enumerate(value):
                item_line = value.item_lines[index] if isinstance(value, LineList) else key_line
                if not isinstance(item, dict):
                    errors.append(f"{_where(source, item_line, f'{path}[{index}]')}: expected a mapping")
                    continue
                checked = _validate(spec.item, item, f"{path}[{index}].", source, errors)
                # A key left empty (``tier:``) is as if absent, not a None the rule's users trip over.
                items.append({key: checked[key] for key in item if key in checked and checked[key] is not None})
            result[name] = items
        else:
            try:
                result[name] = spec.check(value)
            except ValueError as error:
                errors.append(f"{_where(source, key_line, path)}: {error}")
                result[name] = _default(spec)
    return result


def _default(spec: Field | Section | Items) -> Any:
    if isinstance(spec, Section):
        return _defaults(spec)
    if isinstance(spec, Items):
        return list(spec.default or [])
    if spec.default is None:
        return None
    try:
        return spec.check(spec.default)
    except ValueError:
        return spec.default


def _defaults(section: Section) -> dict[str, Any]:
    return {name: _default(spec) for name, spec in section.fields.items()}


def _raw(data: Any, *keys: str) -> Any:
    """The raw (line-aware) value at ``keys`` in the loaded YAML, or None."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data
