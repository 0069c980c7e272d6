"""``maint stats``: failure rates, episodes, MTBF and MTTR per host and per check, and the top
recurring failures, over a period of recorded runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from maint.cli.options import AGE_EXAMPLE, db_option, echo_json, format_option, period, reading_store

if TYPE_CHECKING:
    from maint.stats import Stats

@click.command("stats")
@click.option(
    "--since",
    default="90d",
    show_default=True,
    metavar="AGE|DATE",
    help=f"Runs started since this age or moment ({AGE_EXAMPLE}; UTC unless an offset is given).",
)
@click.option(
    "--until",
    metavar="AGE|DATE",
    help="Runs started until this age or moment (default: now; a date includes its whole day).",
)
@click.option("--host", "host_pattern", metavar="PATTERN", help="Only hosts matching this shell-style pattern.")
@click.option("--check", "check_pattern", metavar="PATTERN", help="Only step ids matching this shell-style pattern.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many recurring failures to list (and hosts in the text table).",
)
@format_option
@db_option
def stats(
    since: str,
    until: str | None,
    host_pattern: str | None,
    check_pattern: str | None,
    top: int,
    output_format: str,
    db_url: str | None,
) -> None:  # fmt: skip
    """Failure rates, episodes, MTBF and MTTR per host and per check, and the top recurring failures.

    Only the last attempt of each (run, host, playbook, step) counts; failed and error are failures,
    unreachable is counted per host, skipped is ignored. docs/history.md has every definition.
    """
    from maint.clock import timestamp, utc_now

    now = utc_now()
    start, end = period(since, until, now)
    assert start is not None  # --since has a default
    store = reading_store(db_url)
    try:
        found = store.summarize(start, end or timestamp(now), host_pattern, check_pattern, top)
    finally:
        store.close()
    if output_format == "json":
        echo_json(found.as_dict())
    else:
        click.echo(render(found, top))


def render(found: Stats, top: int) -> str:
    """The text of ``maint stats``: the period, then the hosts (worst ``top``), checks and top failures tables."""
    from maint.reports.text import table

    lines = [f"maint stats: runs started {_moment(found.since)} .. {_moment(found.until)} UTC"]
    if not found.hosts and not found.checks:
        return "\n".join([*lines, "no results in this period"])
    hosts = [
        [line.host, line.results, line.failures, _percent(line.failure_rate), line.episodes, line.unreachable,
         _number(line.mtbf_hours), _number(line.mttr_hours), line.tickets_resolved, line.tickets_active]
        for line in found.hosts[:top]
    ]  # fmt: skip
    lines += ["", table(["HOST", "RESULTS", "FAILURES", "RATE", "EPISODES", "UNREACHABLE", "MTBF(h)", "MTTR(h)",
                         "RESOLVED", "ACTIVE"], hosts, right=range(1, 10))]  # fmt: skip
    if len(found.hosts) > top:
        lines.append(f"... and {len(found.hosts) - top} more hosts (--top N, or --format json for all)")
    checks = [
        [line.check, line.type, line.hosts, line.results, line.failures, _percent(line.failure_rate), line.episodes,
         _number(line.mtbf_hours), _number(line.mttr_hours), line.tickets_resolved, line.tickets_active]
        for line in found.checks
    ]  # fmt: skip
    lines += ["", table(["CHECK", "TYPE", "HOSTS", "RESULTS", "FAILURES", "RATE", "EPISODES", "MTBF(h)", "MTTR(h)",
                         "RESOLVED", "ACTIVE"], checks, right=range(2, 11))]  # fmt: skip
    lines += ["", "Top recurring failures:"]
    if found.top:
        recurring = [
            [entry.check, entry.type, entry.episodes, entry.failures, _hosts(entry.hosts_affected, entry.hosts),
             _moment(entry.last_seen), entry.tickets_opened, (entry.summary or "")[:60]]
            for entry in found.top
        ]  # fmt: skip
        lines.append(table(["CHECK", "TYPE", "EPISODES", "FAILURES", "HOSTS", "LAST SEEN", "TICKETS", "SUMMARY"],
                           recurring, right=(2, 3, 6)))  # fmt: skip
    else:
        lines.append("none")
    return "\n".join(lines)


def _moment(stored: str | None) -> str:
    return stored[:16].replace("T", " ") if stored else "-"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _hosts(count: int, names: list[str]) -> str:
    shown = ",".join(names)
    return f"{count} ({shown}{',...' if count > len(names) else ''})"
