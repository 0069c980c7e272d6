"""``maint runs``: the recorded runs."""

from __future__ import annotations

import sys

import click

from maint.cli.completion import run_ids
from maint.cli.options import db_option, echo_json, format_option, period, reading_store, since_option
from maint.cli.verbosity import verbose_option, verbosity
from maint.terminal import styled


@click.group()
def runs() -> None:
    """List and show recorded runs."""


@runs.command("list")
@click.option("-n", "--last", "limit", type=int, default=50, show_default=True, help="How many runs.")
@click.option(
    "--host",
    "host_pattern",
    metavar="PATTERN",
    help="Only runs with a result of a host matching this shell-style pattern (web-*, db-0?).",
)
@click.option(
    "--check",
    "check_pattern",
    metavar="PATTERN",
    help="Only runs with a result of a step id matching this shell-style pattern.",
)
@click.option("--since", metavar="AGE|DATE", help="Runs started since this age or moment (30d, 12h, 2w, 2026-03-01).")
@click.option("--until", metavar="AGE|DATE", help="Runs started until this age or moment (a date includes its day).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="The run's status; with --host/--check, the status of a matching result's last attempt (repeatable).",
)
@format_option
@db_option
def list_runs(
    limit: int,
    host_pattern: str | None,
    check_pattern: str | None,
    since: str | None,
    until: str | None,
    statuses: tuple[str, ...],
    output_format: str,
    db_url: str | None,
) -> None:  # fmt: skip
    """The latest runs, newest first; filtered by host, check, time and status.

    `maint runs list --host web-03 --check root-disk --status failed --since 30d` lists the runs of the
    last 30 days in which web-03's root-disk failed (in its last attempt).
    """
    from maint.clock import utc_now
    from maint.reports.text import runs_table, table
    from maint.store.history import RESULT_STATUSES, RUN_STATUSES, RunFilter

    by_result = host_pattern is not None or check_pattern is not None
    known = RESULT_STATUSES if by_result else RUN_STATUSES
    for status in statuses:
        if status not in known:
            kind = "a result status (with --host/--check)" if by_result else "a run status"
            raise click.BadParameter(
                f"{status!r} is not {kind}: one of {', '.join(known)} (e.g. --status failed)", param_hint="--status"
            )
    start, end = period(since, until, utc_now())
    wanted = RunFilter(host_pattern, check_pattern, start, end, statuses, limit)
    store = reading_store(db_url, empty_json=[] if output_format == "json" else None)
    try:
        found = store.find_runs(wanted)
    finally:
        store.close()
    if output_format == "json":
        echo_json(found)
    elif found:
        click.echo(runs_table(found))
        if by_result:
            rows = [[run["id"], match["host"], match["step"], match["status"]]
                    for run in found for match in run["matches"]]  # fmt: skip
            click.echo("\nMatching results:\n" + table(["RUN", "HOST", "STEP", "STATUS"], rows))
    elif by_result or since or until or statuses:
        click.echo("no runs match", err=True)
    else:
        click.echo("no runs recorded yet", err=True)


@runs.command("show")
@click.argument("run_id", shell_complete=run_ids)
@verbose_option
@format_option
@db_option
def show_run(run_id: str, output_format: str, db_url: str | None) -> None:
    """One run with its audit facts and every result (RUN_ID may be a unique prefix, or `last`); -v lists
    every result with the command it ran, -vv with its output too."""
    from maint.errors import ExitCode
    from maint.reports.text import run_facts, run_summary

    store = reading_store(db_url, ExitCode.BAD_INPUT)
    document = store.get_run(run_id).as_dict()
    store.close()
    if output_format == "json":
        echo_json(document)
        return
    click.echo(run_facts(document))
    click.echo()
    click.echo(run_summary(document, problems_limit=10_000, verbosity=verbosity()))


@runs.command("prune")
@click.option("--keep-last", type=click.IntRange(0), metavar="N", help="Keep the newest N runs whatever their age.")
@since_option("--older-than", "Prune only runs started before this: an age (400d) or an ISO date. Tickets "
              "resolved before it go too.")
@click.option("--dry-run", is_flag=True, help="Say what would be pruned; change nothing.")
@format_option
@db_option
def prune(keep_last: int | None, older_than: str | None, dry_run: bool, output_format: str, db_url: str | None) -> None:
    """Delete old runs and their results; the ledger keeps a (signed) checkpoint naming what went.

    With both options a run is pruned when it is older than --older-than and not among the newest
    --keep-last. Running runs are never pruned.
    """
    from maint import config
    from maint.provenance import operator_name
    from maint.secrets import redact_argv
    from maint.store import Store

    if keep_last is None and older_than is None:
        raise click.UsageError("give --keep-last N, --older-than AGE or both")
    signing_key = config.load().signing_key
    store = Store(db_url)
    try:
        report = store.prune(keep_last, older_than, operator_name(), redact_argv(["maint", *sys.argv[1:]]),
                             signing_key, dry_run)  # fmt: skip
    finally:
        store.close()
    for warning in report.warnings:
        styled(f"maint: warning: {warning}", fg="yellow")
    if output_format == "json":
        echo_json(report.as_dict())
        return
    verb = "would prune" if dry_run else "pruned"
    click.echo(f"{verb} {len(report.runs)} runs ({report.results} results), {report.tickets} resolved tickets "
               f"({report.events} ticket events, {report.deliveries} deliveries)")  # fmt: skip
    if report.checkpoint is not None:
        signed = "signed" if report.signed else "not signed"
        click.echo(f"ledger: checkpoint {report.checkpoint} ({signed}); {report.entries_dropped} entries folded, "
                   f"the chain now starts after entry {report.base_seq}")  # fmt: skip
