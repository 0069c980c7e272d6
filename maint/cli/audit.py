"""``maint audit``: prove the record unaltered, and hand it to the auditor's own tools."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import IO, Any

import click

from maint.cli.options import db_option, echo_json, format_option, reading_store, since_option
from maint.errors import ExitCode
from maint.reports.spreadsheet import spreadsheet_cell
from maint.terminal import escape_controls

EXPORT_COLUMNS = (
    "entry", "at", "kind", "ref", "run_id", "host", "playbook", "step", "status", "exit_code", "summary",
    "operator", "controller", "reason", "action", "actor", "backend", "hash", "prev",
)  # fmt: skip
# How an earlier export starts (jsonl, csv): -o replaces such a file without --force.
EXPORT_MARKERS = (
    re.compile(rb'^\{"entry": \d+, "at": '),
    re.compile(b"^" + ",".join(EXPORT_COLUMNS).encode() + b"\r?\n"),
)


@click.group()
def audit() -> None:
    """Verify the ledger (the hash chain over runs, results and ticket actions) and export it."""


@audit.command("verify")
@click.option("--signers", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="An ssh-keygen allowed_signers file: also verify the signatures; every finished run must lie "
              "within the signed chain.")
@click.option("--head", "anchor", metavar="ENTRY:HASH",
              help="An entry number and hash kept elsewhere (from an earlier verify): prove it is still there.")
@format_option
@db_option
def verify(signers: Path | None, anchor: str | None, output_format: str, db_url: str | None) -> int:
    """Recompute the chain; exit 0 when intact, 4 naming the first entry that does not match, 3 without a store."""
    expected = _anchor(anchor) if anchor else None
    store = reading_store(db_url, ExitCode.BAD_INPUT)
    report = store.verify_ledger(signers, expected)
    store.close()
    if output_format == "json":
        echo_json(report.as_dict())
    elif report.intact:
        signed = f"; {report.signatures} signatures verified" if signers else ""
        click.echo(f"ledger intact: {report.entries} entries ({report.first_seq}-{report.head_seq}), "
                   f"head {report.head_seq}:{report.head_hash}{signed}")  # fmt: skip
    else:
        first = report.first()
        assert first is not None
        click.echo(f"ledger broken: {first.message}")
        others = [problem for problem in report.as_dict()["problems"] if problem["message"] != first.message]
        for problem in others[:20]:
            click.echo(f"  also: {problem['message']}")
        if len(others) > 20:
            click.echo(f"  and {len(others) - 20} more (--format json lists all)")
    return int(ExitCode.OK if report.intact else ExitCode.FAILED)


@audit.command("export")
@since_option("--since", "Only entries from this time: an age (30d, 12h) or an ISO date/time.")
@since_option("--until", "Only entries up to this time: an age or an ISO date/time.")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="jsonl: one JSON object per entry with the full record; csv: one row per entry, main fields.")
@click.option("-o", "--output", "output", default="-", metavar="PATH",
              help="Write to PATH (default: stdout). An existing file is replaced only if it is an earlier export "
              "or maint report (else exit 3; see --force).")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace an existing file that is not an export (never the store in use).")
@db_option
def export(
    since: str | None, until: str | None, output_format: str, output: str, force: bool, db_url: str | None
) -> None:
    """Every ledger entry with the record it covers, in chain order."""
    from maint.reports.formats import open_report

    store = reading_store(db_url)
    handle: IO[str]
    try:
        handle = sys.stdout if output == "-" else open_report(Path(output), force=force, store_url=store.url,
                                                              markers=EXPORT_MARKERS)  # fmt: skip
    except BaseException:
        store.close()
        raise
    try:
        with store.ledger_entries(since, until) as entries:
            if output_format == "jsonl":
                for entry in entries:
                    # JSON's own escapes for the control characters it leaves raw (C1, DEL, bidi).
                    handle.write(escape_controls(json.dumps(entry, default=str, ensure_ascii=False)) + "\n")
            else:
                writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                for entry in entries:
                    writer.writerow(_flat(entry))
    finally:
        if handle is not sys.stdout:
            handle.close()
        store.close()


def _anchor(text: str) -> tuple[int, str]:
    number, sep, hash_ = text.partition(":")
    if not sep or not number.isdigit() or len(hash_) != 64:
        raise click.BadParameter("expected ENTRY:HASH as printed by 'maint audit verify', e.g. 1234:9f86d0...",
                                 param_hint="--head")  # fmt: skip
    return int(number), hash_.lower()


def _flat(entry: dict[str, Any]) -> dict[str, Any]:
    record = entry.get("record") or {}
    flat = {**{key: value for key, value in record.items() if key in EXPORT_COLUMNS}, **entry}
    flat.pop("record", None)
    for key, value in flat.items():
        flat[key] = spreadsheet_cell("" if value is None else str(value))
    return flat
