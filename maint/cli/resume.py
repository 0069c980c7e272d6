"""``maint resume`` and ``maint rerun``: finish an interrupted or aborted run, or run its failures again
(the library's :mod:`maint.run.continuation` decides what)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from maint.cli.completion import run_ids
from maint.cli.options import (
    F,
    ask_become_pass_option,
    become_from_options,
    db_option,
    format_option,
    junit_xml_option,
    parse_extra_vars,
    project_dir,
    vault_from_options,
    vault_option,
)
from maint.cli.run import execute
from maint.cli.verbosity import verbose_option


def _options(reason: str | None, allow_changed: bool, db_url: str | None) -> dict[str, Any]:
    return {
        "reason": reason, "allow_changed": allow_changed, "db_url": db_url, "argv": ["maint", *sys.argv[1:]],
        "project_dir": project_dir(), "vault": vault_from_options(), "become_password": become_from_options()[1],
    }  # fmt: skip


def again_options(verb: str) -> Callable[[F], F]:
    """The options resume and rerun share: -e, the vault options, --allow-changed, --reason, --junit-xml, --format,
    --db."""

    def decorate(function: F) -> F:
        for option in reversed((
            click.option("-e", "--extra-vars", "extra", multiple=True, metavar="KEY=VALUE",
                         help="Give secret variables again (they are never recorded)."),
            vault_option,
            ask_become_pass_option,
            verbose_option,
            click.option("--allow-changed", is_flag=True,
                         help=f"{verb} even if a playbook changed since (recorded)."),
            click.option("--reason", metavar="TEXT", help="Why (recorded; default: the run's own reason)."),
            junit_xml_option, format_option, db_option,
        )):  # fmt: skip
            function = option(function)
        return function

    return decorate


@click.command()
@click.argument("run_id", shell_complete=run_ids)
@again_options("Resume")
def resume(
    run_id: str, extra: tuple[str, ...], allow_changed: bool, reason: str | None, junit_xml: Path | None,
    output_format: str, db_url: str | None,
) -> int:
    """Continue an interrupted or aborted run: only the (host, step) pairs it did not finish.

    The results are added to the same run, with the same playbooks (refused if one changed, unless
    --allow-changed), inventory, limit and variables.
    """
    from maint.run import continuation

    document = continuation.load(run_id, db_url)
    request = continuation.resumption(document, parse_extra_vars(extra), **_options(reason, allow_changed, db_url))
    return execute(request, output_format, junit_xml=junit_xml)


@click.command()
@click.argument("run_id", shell_complete=run_ids)
@click.option("--failed", "failed_only", is_flag=True, required=True,
              help="Only the (host, step) pairs that failed, could not run or were unreachable.")  # fmt: skip
@again_options("Rerun")
def rerun(
    run_id: str, failed_only: bool, extra: tuple[str, ...], allow_changed: bool, reason: str | None,
    junit_xml: Path | None, output_format: str, db_url: str | None,
) -> int:
    """Run the failed (host, step) pairs of a run again, as a new run linked to it."""
    from maint.run import continuation

    document = continuation.load(run_id, db_url)
    request = continuation.rerun(document, parse_extra_vars(extra), **_options(reason, allow_changed, db_url))
    return execute(request, output_format, junit_xml=junit_xml)
