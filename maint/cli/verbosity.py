"""``-v``: how much of each step a command shows (a small module: the ``maint`` group imports it for ``--help``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

VERBOSITY_KEY = "maint.verbosity"


def _remember_verbosity(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
    root = context.find_root()
    root.meta[VERBOSITY_KEY] = max(int(root.meta.get(VERBOSITY_KEY, 0)), int(value or 0))
    if root.meta[VERBOSITY_KEY] >= 3:
        from maint.terminal import show_debug_log

        show_debug_log()
    return value


def verbose_option(function: F) -> F:
    """``-v`` (repeatable), on the ``maint`` group and on the commands that run or show steps: ``-v`` shows the
    command each step ran, ``-vv`` its output too, ``-vvv`` also how each host was reached (connection,
    authentication, privilege escalation)."""
    return click.option(
        "-v", "--verbose", "verbosity", count=True, expose_value=False, callback=_remember_verbosity,
        help="Show each step's command (-v), its output (-vv), and connection details (-vvv).",
    )(function)  # fmt: skip


def verbosity() -> int:
    """How many ``-v`` the running command was given (on the group and the command together)."""
    context = click.get_current_context(silent=True)
    return int(context.find_root().meta.get(VERBOSITY_KEY, 0)) if context is not None else 0
