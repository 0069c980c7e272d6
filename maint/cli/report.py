"""``maint report``: one recorded run as HTML, JSON, JUnit XML or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from maint.cli.completion import run_ids
from maint.cli.options import db_option, project_dir, reading_store, remember_format
from maint.reports.formats import FORMATS, check_target, render_report, store_file, write_report


@click.command()
@click.argument("run_id", shell_complete=run_ids)
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="html", show_default=True, is_eager=True,
    callback=remember_format,
    help="html: a self-contained page; json: the run with tickets, trend and seal; junit: JUnit XML; "
    "csv: one row per result.",
)  # fmt: skip
@click.option(
    "-o", "--output", default="-", metavar="PATH", show_default=True,
    help="File to write (written to a temporary name, then renamed); '-' writes to stdout. An existing file "
    "is replaced only if it is a maint report (else exit 3; see --force).",
)  # fmt: skip
@click.option("--force", is_flag=True,
              help="Replace an existing file that is not a maint report (never the store in use).")
@db_option
def report(run_id: str, output_format: str, output: str, force: bool, db_url: str | None) -> None:
    """The report of run RUN_ID (a unique prefix is enough; `last`: the newest run) in one format.

    The HTML page comes from templates/report.html.j2: a project's own file (beside maint.yml) overrides the
    built-in one.
    """
    from maint.errors import ExitCode
    from maint.reports.gather import report_document

    store = reading_store(db_url, ExitCode.BAD_INPUT)
    try:
        if output != "-":  # refused before any work: the store itself, or a file that is not a report
            check_target(Path(output), force=force, store=store_file(store.url))
        document = report_document(store, run_id)
    finally:
        store.close()
    text = render_report(document, output_format, project_dir())
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_report(Path(output), text, force=force, store_url=store.url)
