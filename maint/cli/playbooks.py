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
    """The registered step types and their parameters, then the Python tasks of the project's maintfile.py
    with their arguments and docstrings."""
    from maint import registry
    from maint.tasks import project_tasks
    from maint.terminal import styled

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
    tasks, errors = project_tasks(project_dir())
    for task in tasks:
        found.append({
            "type": "python",
            "task": task.reference,
            "description": task.description,
            "check_mode": task.check_mode,
            "params": {
                argument.name: {"required": argument.required, "default": _json_value(argument.default), "help": ""}
                for argument in task.arguments
            },
        })
    for error in errors:
        styled(f"maint: warning: {error}", fg="yellow")
    if output_format == "json":
        echo_json(found)
        return
    for item in found:
        if "task" in item:
            check = "" if item["check_mode"] else " (not in check mode)"
            click.echo(f"python {item['task']}: {item['description'] or '(no docstring)'}{check}")
        else:
            click.echo(f"{item['type']}: {item['description']}")
        for key, param in item["params"].items():
            default = "required" if param["required"] else f"default {param['default']}"
            click.echo(f"    {key} ({default})" + (f": {param['help']}" if param["help"] else ""))


def _plain(value: object) -> object:
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def _json_value(value: object) -> object:
    """A task argument's default as JSON shows it: as it is when JSON has it, else its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
