"""The ``maint`` command line: the only place that prints and exits.

Command groups live in their own modules and are imported only when used, so ``maint --help`` and
light commands do not pay for paramiko, SQLAlchemy or ansible-core imports.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from maint import __version__
from maint.cli.verbosity import verbose_option
from maint.errors import ExitCode, MaintError

if TYPE_CHECKING:
    from maint.cli.options import Invocation

# The environment variable through which a shell asks for completions (maint.cli.completion).
COMPLETE_VARIABLE = "_MAINT_COMPLETE"

# name -> "module:attribute"; each module defines one click command or group.
COMMANDS: dict[str, str] = {
    "run": "maint.cli.run:run",
    "exec": "maint.cli.adhoc:exec_command",
    "resume": "maint.cli.resume:resume",
    "rerun": "maint.cli.resume:rerun",
    "runs": "maint.cli.runs:runs",
    "inventory": "maint.cli.inventory:inventory",
    "playbooks": "maint.cli.playbooks:playbooks",
    "checks": "maint.cli.playbooks:checks",
    "lab": "maint.cli.lab:lab",
    "tickets": "maint.cli.tickets:tickets",
    "completion": "maint.cli.completion:completion",
    "config": "maint.cli.config:config",
    "windows": "maint.cli.windows:windows",
    "schedule": "maint.cli.schedule:schedule",
    "report": "maint.cli.report:report",
    "stats": "maint.cli.stats:stats",
    "audit": "maint.cli.audit:audit",
    "db": "maint.cli.db:db",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


def _no_colour(context: click.Context, parameter: click.Parameter, value: bool) -> bool:
    if value:
        from maint.terminal import disable_colour

        disable_colour()
    return value


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="maint")
@verbose_option
@click.option("--no-color", "--no-colour", is_flag=True, expose_value=False, callback=_no_colour,
              help="No colour (also: the NO_COLOR environment variable; colour only on a terminal anyway).")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="The maint.yml to use (its directory is the project directory). Default: $MAINT_CONFIG, else "
    "./maint.yml, a parent directory's up to the repository root, ~/.config/maint/maint.yml, /etc/maint/maint.yml.",
)  # fmt: skip
def cli(config_file: Path | None) -> None:
    """Preventive maintenance for server fleets over SSH.

    Runs maintenance playbooks (checks and tasks) on the hosts of an Ansible inventory, records every
    result in a store, and exits with a code that says what happened (docs/exit-codes.md, or the manual pages).
    """
    from maint.config.discovery import choose

    choose(config_file)


def error_line(message: str) -> None:
    """Print one red ``maint: error: ...`` line on stderr."""
    from maint.terminal import styled

    styled(f"maint: error: {message}", fg="red")


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI and map every outcome to a documented exit code."""
    from maint.terminal import escaped_output

    if os.environ.get(COMPLETE_VARIABLE):
        # A shell asking for completions (maint.cli.completion): Click writes them as bytes, which the escaping
        # streams refuse; the candidates taken from data are sanitised where they are made.
        return cli.main(args=argv, prog_name="maint", complete_var=COMPLETE_VARIABLE)
    try:
        with escaped_output():  # nothing printed below passes a control sequence through raw
            return _main(argv)
    finally:
        # --config holds for this command only (main may be called again in the same process).
        discovery = sys.modules.get("maint.config.discovery")
        if discovery is not None:
            discovery.choose(None)


def _main(argv: list[str] | None) -> Any:
    from maint.cli.options import Invocation

    invocation = Invocation()
    try:
        result = cli.main(args=argv, prog_name="maint", standalone_mode=False, obj=invocation)
    except MaintError as error:
        if error.exit_code == ExitCode.NOT_STARTED:
            # A closed window or busy hosts: an expected outcome to report, not an error to page on.
            click.echo(f"maint: {error}", err=True)
        else:
            error_line(str(error))
        _error_document(invocation, error, int(error.exit_code), error.message)
        sys.exit(int(error.exit_code))
    except (click.exceptions.Abort, KeyboardInterrupt) as error:
        click.echo("maint: interrupted", err=True)
        _error_document(invocation, error, int(ExitCode.INTERRUPTED), "interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.exceptions.ClickException as error:
        error.show()
        _error_document(invocation, error, error.exit_code, error.format_message())
        sys.exit(error.exit_code)
    except click.exceptions.Exit as error:
        sys.exit(error.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as error:  # a bug: one line for the user, the traceback to a file
        from maint.cli.debuglog import debug_log_path, safe_error_text, write_traceback

        command = ["maint", *(sys.argv[1:] if argv is None else argv)]
        path = debug_log_path(command)
        written: str | None = str(path)
        try:
            write_traceback(error, command, path)
            where = f"traceback in {path}"
        except OSError:
            where = "traceback could not be written"
            written = None
        first_line = safe_error_text(error).partition("\n")[0]  # the rest (an SQL statement) is in the log
        message = f"internal error: {type(error).__name__}: {first_line}"
        error_line(f"{message} ({where})")
        _error_document(invocation, error, int(ExitCode.INTERNAL), message, debug_log=written)
        sys.exit(int(ExitCode.INTERNAL))
    if isinstance(result, int):
        sys.exit(result)
    sys.exit(0)


def _error_document(invocation: Invocation, error: BaseException, exit_code: int, message: str, **details: Any) -> None:
    """With ``--format json``, print the error document on stdout, unless the command printed its own."""
    from maint.reports.documents import error_document

    if invocation.output_format != "json" or invocation.printed:
        return
    with contextlib.suppress(BrokenPipeError):
        click.echo(json.dumps(error_document(error, exit_code, message, **details), indent=2, default=str))
