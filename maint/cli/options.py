"""Options shared by several commands, and small rendering helpers."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

F = TypeVar("F", bound=Callable[..., Any])


def db_option(function: F) -> F:
    """``--db URL``: the store (default: $MAINT_DB, else maint.yml's store, else sqlite:///.maint/maint.db)."""
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        help="Store URL (SQLAlchemy). Default: $MAINT_DB, else 'store' in maint.yml, else sqlite:///.maint/maint.db.",
    )(function)


def format_option(function: F) -> F:
    """``--format text|json``."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format; json writes only JSON to stdout.",
    )(function)


def inventory_option(function: F) -> F:
    """``-i/--inventory`` (repeatable; default $MAINT_INVENTORY)."""
    return click.option(
        "-i",
        "--inventory",
        "inventory",
        multiple=True,
        metavar="INVENTORY",
        help="Ansible inventory: INI/YAML file, directory, script or 'host1,host2,' (repeatable). "
        "Default: $MAINT_INVENTORY.",
    )(function)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def parse_extra_vars(values: tuple[str, ...]) -> dict[str, Any]:
    """Ansible-style ``-e`` values: ``key=value [key=value ...]``, a JSON/YAML mapping, or ``@file``."""
    result: dict[str, Any] = {}
    for value in values:
        text = value.strip()
        if text.startswith("@"):
            path = Path(text[1:])
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as error:
                raise click.BadParameter(f"cannot read {path}: {error.strerror}", param_hint="-e") from None
            except yaml.YAMLError as error:
                raise click.BadParameter(f"{path} is not valid YAML: {error}", param_hint="-e") from None
            if not isinstance(loaded, dict):
                raise click.BadParameter(f"{path} must hold a mapping of variables", param_hint="-e")
            result.update(loaded)
        elif text.startswith("{"):
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError:
                loaded = None
            if not isinstance(loaded, dict):
                raise click.BadParameter(f"not a JSON/YAML mapping: {value}", param_hint="-e")
            result.update(loaded)
        else:
            for pair in shlex.split(text):
                key, sep, item = pair.partition("=")
                if not sep or not key.isidentifier():
                    raise click.BadParameter(
                        f"expected KEY=VALUE, a JSON mapping or @file, got {pair!r}", param_hint="-e"
                    )
                result[key] = item
    return result
