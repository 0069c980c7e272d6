"""``maint exec``: one ad-hoc shell command on the hosts matching an Ansible host pattern, run and recorded
as a run is.

The command becomes the one ``command`` step of a playbook built in memory (:func:`maint.playbooks.adhoc`,
named ``exec`` in records), so it takes the path of ``maint run``: operator, reason and argv recorded, the
ledger, host locks, resume and rerun, the same exit codes; tickets only with ``--tickets``.

The words after ``--`` are the command. One word is taken as the shell command line it is (pipes, globs,
``$VARS`` and redirections act on the host: ``-- 'df -h | grep sd'``); several words are joined with
shell quoting (``shlex.join``), so each stays one argument as the local shell handed it over and none is
read again by the host's shell. ``{{ }}`` in the command is a template over host vars and -e vars, whose
values reach the shell as data (see maint.templating); ``--no-template`` sends braces as written.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from maint.cli.completion import host_patterns
from maint.cli.options import echo_json
from maint.cli.run import Progress, perform, request_fields, run_options
from maint.cli.verbosity import verbosity


def command_line(words: tuple[str, ...]) -> str:
    """The shell command line of the words after ``--``: one word as it is, several joined with shell quoting."""
    return words[0] if len(words) == 1 else shlex.join(words)


class Echo(Progress):
    """Prints each host's result as it is recorded, as Ansible's ad-hoc commands do: ``host | status | rc=N >>``
    and the recorded output (or, without output, the summary of a result that is not ok)."""

    def __init__(self) -> None:
        super().__init__(live=False)

    def result(self, record: Any) -> None:
        """Print ``record``'s host, status, exit code and output."""
        code = f" | rc={record.exit_code}" if record.exit_code is not None else ""
        click.echo(f"{record.host} | {record.status}{code} >>")
        body = record.output or ("" if record.status == "ok" else record.summary)
        if body:
            click.echo(body.rstrip("\n"))


@click.command("exec")
@click.argument("pattern", shell_complete=host_patterns)
@click.argument("words", nargs=-1, required=True, metavar="-- COMMAND...")
@run_options
@click.option("--no-template", "template", is_flag=True, flag_value=False, default=True,
              help="Send {{ }} in the command as written (default: a template over host vars and -e vars).")
@click.option("--tickets", is_flag=True, help="Keep alert state and open tickets for failures (default: off).")
def exec_command(pattern: str, words: tuple[str, ...], template: bool, tickets: bool, output_format: str,
                 **shared: Any) -> int:  # fmt: skip
    """Run COMMAND on the hosts matching PATTERN and record it as a run (playbook `exec`).

    One word after `--` is a shell command line (`-- 'df -h | grep sd'`); several are joined with shell
    quoting, each staying one argument. Prints `host | status | rc=N >>` and the output of each host as it
    finishes. Exit codes as for `maint run`: 0 ok, 3 bad input, 4 a command failed, 5 a host was unreachable
    (and nothing failed), 7 the hosts are busy with another run, 130 interrupted.
    """
    from maint.playbooks import adhoc
    from maint.reports.text import EXIT_MEANINGS, tickets_summary
    from maint.run import RunRequest

    playbook = adhoc(pattern, command_line(words), template)
    request = RunRequest(playbooks=[playbook], tickets=tickets, **request_fields(**shared))
    if output_format == "json":
        document = perform(request, Progress(live=False, verbosity=verbosity()))
        echo_json(document.as_dict())
    else:
        document = perform(request, Echo())
        if document.tickets is not None:
            click.echo(tickets_summary(document.tickets))
    run = document.run
    exit_code: int = run["exit_code"]
    counts = ", ".join(f"{count} {status}" for status, count in sorted((run.get("counts") or {}).items()))
    click.echo(f"maint: run {run['id']}: {run['status']} ({counts}); exit {exit_code}: "
               f"{EXIT_MEANINGS.get(exit_code, '')}", err=True)  # fmt: skip
    return exit_code
