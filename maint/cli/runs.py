"""``maint runs``: the recorded runs."""

from __future__ import annotations

import click

from maint.cli.options import db_option, echo_json, format_option


@click.group()
def runs() -> None:
    """List and show recorded runs."""


@runs.command("list")
@click.option("-n", "--last", "limit", type=int, default=50, show_default=True, help="How many runs.")
@format_option
@db_option
def list_runs(limit: int, output_format: str, db_url: str | None) -> None:
    """The latest runs, newest first."""
    from maint.reports.text import runs_table
    from maint.store import Store

    found = Store(db_url).list_runs(limit)
    if output_format == "json":
        echo_json(found)
    elif found:
        click.echo(runs_table(found))
    else:
        click.echo("no runs recorded yet", err=True)


@runs.command("show")
@click.argument("run_id")
@format_option
@db_option
def show_run(run_id: str, output_format: str, db_url: str | None) -> None:
    """One run with its audit facts and every result (RUN_ID may be a unique prefix)."""
    from maint.reports.text import run_facts, run_summary
    from maint.store import Store

    document = Store(db_url).get_run(run_id).as_dict()
    if output_format == "json":
        echo_json(document)
        return
    click.echo(run_facts(document))
    click.echo()
    click.echo(run_summary(document, problems_limit=10_000))
