"""The ``notify`` list beyond the schema: each notifier's required ``urls``."""

from __future__ import annotations

from typing import Any

from maint.config.validation import _raw, _where
from maint.yamlfile import LineList


def _notify(data: Any, source: str, errors: list[str]) -> None:
    """Each notifier needs ``urls``: report those without, with their line."""
    section = _raw(data, "notify")
    if not isinstance(section, list):
        return
    for index, options in enumerate(section):
        if isinstance(options, dict) and options.get("urls") is None:
            line = section.item_lines[index] if isinstance(section, LineList) else None
            errors.append(f"{_where(source, line, f'notify[{index}].urls')}: required (the Apprise URLs to send to)")
