"""``maint config``: show and validate maint.yml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from maint.cli.options import echo_json, format_option
from maint.terminal import styled


@click.group()
def config() -> None:
    """Show and validate the project's maint.yml (or $MAINT_CONFIG)."""


@config.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def validate(path: Path | None) -> int:
    """Check maint.yml and print every problem with its line (exit 3 when there is one)."""
    from maint import config as config_module
    from maint.errors import ExitCode

    try:
        loaded = config_module.load(Path.cwd(), path)
    except config_module.ConfigError as error:
        for problem in error.errors:
            styled(f"maint: error: {problem}", fg="red")
        return int(ExitCode.BAD_INPUT)
    where = loaded.path or "no maint.yml (defaults)"
    notifiers = len(loaded.data.get("notify") or [])
    click.echo(f"{where}: valid ({len(loaded.backends)} ticket backends, {notifiers} notifiers)")
    return 0


@config.command("show")
@format_option
def show(output_format: str) -> None:
    """The effective configuration: every option with its value and what it means (notification URLs masked)."""
    from maint import config as config_module
    from maint.notify.notifications import masked, masked_url

    loaded = config_module.load(Path.cwd())
    data = dict(loaded.data)
    data["notify"] = masked(data.get("notify"))
    data["pings"] = {event: masked_url(url) if url else url for event, url in (data.get("pings") or {}).items()}
    if output_format == "json":
        echo_json({"path": str(loaded.path) if loaded.path else None, **data})
        return
    click.echo(f"# {loaded.path or 'no maint.yml: defaults'}")
    for path, help_text, _default in config_module.describe():
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        click.echo(f"{path} = {json.dumps(value, default=str)}")
        click.echo(f"    {help_text}")
