"""YAML loading that remembers line numbers, so bad input can name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from maint.errors import BadInput


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[str, int]
    # The line each value's text starts on: a block scalar (| or >) starts on the line after its key.
    value_lines: dict[str, int] = {}  # replaced per instance by the loader, never mutated

    def line_of(self, key: str) -> int:
        """The line of ``key``, or of the mapping when the key is absent."""
        return self.key_lines.get(key, self.line)

    def text_line(self, key: str) -> int:
        """The line where the text of ``key``'s value starts (line 1 of a multi-line template)."""
        return self.value_lines.get(key, self.line_of(key))


class LineList(list[Any]):
    """A sequence from YAML that knows the line of each item."""

    line: int = 0
    item_lines: list[int]


WORD_BOOLEANS = frozenset({"on", "off", "yes", "no", "y", "n"})


class _Loader(yaml.SafeLoader):
    """SafeLoader producing LineDict/LineList and rejecting duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.value_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if isinstance(key, bool) and isinstance(key_node, yaml.ScalarNode) and key_node.value.lower() in WORD_BOOLEANS:
            # YAML 1.1 reads a plain on/off/yes/no as a boolean; as a key it is the word (notify's ``on:``).
            key = key_node.value
        key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
        block = isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">")
        result.value_lines[key] = value_node.start_mark.line + 1 + (1 if block else 0)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text``; raises BadInput with ``source`` and the line of a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise BadInput(f"invalid YAML: {problem}", source=source, line=line) from None
    except yaml.YAMLError as error:
        raise BadInput(f"invalid YAML: {error}", source=source) from None
    except ValueError as error:  # an impossible date such as 2026-02-30, which YAML reads as a date
        raise BadInput(f"invalid value: {error}", source=source, hint="quote it to keep it as text") from None


def load_yaml_file(path: Path) -> tuple[Any, bytes]:
    """Read and parse a YAML file; returns the data and the raw bytes (for digests)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read: {error.strerror}", source=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"not UTF-8 text (byte {error.start})", source=str(path)) from None
    return load_yaml(text, str(path)), raw
