"""The ``ansible`` step: an existing Ansible playbook, run through ansible-runner on the selected hosts.

Unlike the other step types it does not run per host over maint's own connection: the engine
runs the playbook once for every host of the playbook's selection (the same inventory, limit,
forks and timeouts) and records one result per (host, task) from the runner's event stream.
"""

from __future__ import annotations

from typing import Any, ClassVar

from maint.checks import Param, StepType, flag, text
from maint.executors import CommandResult


def names(value: Any) -> tuple[str, ...]:
    """A name or a list of names (tags), also a comma-separated text."""
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def variables(value: Any) -> dict[str, Any]:
    """A mapping of extra variables for the Ansible playbook."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of variables, got {type(value).__name__}")
    return {str(key): item for key, item in value.items()}


class AnsibleStep(StepType):
    """Runs an Ansible playbook (a project file or a built-in one) through ansible-runner."""

    name = "ansible"
    description = "Task: run an existing Ansible playbook on the hosts (ansible-runner); one result per task."
    changes_host = True
    # Run once for all hosts of the playbook, by the engine, not per host over maint's connection.
    fleet: ClassVar[bool] = True
    params = {
        "playbook": Param(text, required=True, help="Ansible playbook file (relative to the project, or built-in)"),
        "extra_vars": Param(variables, {}, help="extra variables (-e) for the playbook"),
        "tags": Param(names, (), help="only tasks with these tags"),
        "skip_tags": Param(names, (), help="skip tasks with these tags"),
        "check": Param(flag, False, help="always run in check mode (--check --diff)"),
    }

    def command(self) -> str:
        """Not a shell command: the engine runs the playbook through ansible-runner."""
        raise NotImplementedError("the ansible step runs through ansible-runner, not a shell command")

    def in_check_mode(self) -> StepType | None:
        """Itself: ``maint run -C`` runs the playbook with ``--check --diff``."""
        return self

    def evaluate(self, result: CommandResult) -> Any:
        """Not used: results come from the runner's events."""
        raise NotImplementedError
