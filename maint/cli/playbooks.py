"""``maint playbooks`` and ``maint checks``: what can be run."""

from __future__ import annotations

import click

from maint.cli.completion import playbook_names
from maint.cli.options import echo_json, format_option, project_dir


@click.group()
def playbooks() -> None:
    """Built-in and project playbooks."""


@playbooks.command("list")
@format_option
def list_playbooks(output_format: str) -> None:
    """Every playbook found by name (the project's playbooks/, beside maint.yml, override built-in ones)."""
    from maint import playbooks as module

    loaded = [(name, module.load(str(path))) for name, path in sorted(module.available(project_dir()).items())]
    if output_format == "json":
        echo_json([
            {
                "name": name,
                "path": str(playbook.path),
                "builtin": playbook.builtin,
                "description": playbook.description,
                "steps": [step.id for step in playbook.steps],
            }
            for name, playbook in loaded
        ])
        return
    from maint.reports.text import table

    rows = [
        [name, "built-in" if playbook.builtin else str(playbook.path), len(playbook.steps), playbook.description]
        for name, playbook in loaded
    ]
    click.echo(table(["NAME", "SOURCE", "STEPS", "DESCRIPTION"], rows))


@playbooks.command("show")
@click.argument("name", shell_complete=playbook_names)
def show_playbook(name: str) -> None:
    """Print a playbook's file."""
    from maint import playbooks as module

    path = module.resolve(name, project_dir())
    click.echo(f"# {path}", err=True)
    click.echo(path.read_text(encoding="utf-8"), nl=False)


@click.group()
def checks() -> None:
    """Step types (checks and tasks) that playbooks can use."""


@checks.command("list")
@format_option
def list_checks(output_format: str) -> None:
    """The registered step types and their parameters."""
    from maint import registry

    found = []
    for name in registry.names(registry.STEP_TYPES):
        step_type = registry.load(registry.STEP_TYPES, name)
        if step_type is None:
            continue
        found.append({
            "type": name,
            "description": step_type.description,
            "params": {
                key: {"required": param.required, "default": _plain(param.default), "help": param.help}
                for key, param in step_type.params.items()
            },
        })
    if output_format == "json":
        echo_json(found)
        return
    for item in found:
        click.echo(f"{item['type']}: {item['description']}")
        for key, param in item["params"].items():
            default = "required" if param["required"] else f"default {param['default']}"
            click.echo(f"    {key} ({default}): {param['help']}")


def _plain(value: object) -> object:
    if isinstance(value, frozenset):
        return sorted(value)
    return value
