"""Failure statistics over a period of recorded runs: per host, per check, and the top recurring failures.

Pure: :func:`summarize` is given result rows (in run order), ticket rows and the period, and does
no I/O; the clock is a parameter of :func:`parse_bound`. :mod:`maint.store.history` streams the rows
from the store.

Definitions (docs/history.md repeats them):

- Results considered: those of runs started within [since, until]; of each (run, host, playbook,
  step) only the last attempt. ``failed`` and ``error`` are failures; ``unreachable`` is counted per
  host (runs in which the host was unreachable) and is neither a check result nor a failure;
  ``skipped`` is ignored. ``results`` counts ok, warning, failed and error.
- A check is a step id with its type; a series is one (host, check), ordered by run start.
- A failure episode is a maximal streak of consecutive failing results of one series (an ok or a
  warning ends it; unreachable and skipped results neither end nor extend it).
- MTBF: mean hours between the starts of consecutive episodes of a series; a host pools the
  intervals of all its series, a check those over all hosts. None without any interval.
- MTTR: mean hours from opened to resolved of the tickets resolved within the period; with the
  number of those tickets (``tickets_resolved``) and of tickets still active (``tickets_active``).
- Top recurring failures: checks with at least one failure, by episodes then failures.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

FAILURES = frozenset({"failed", "error"})
UNREACHABLE = "unreachable"
IGNORED = frozenset({"skipped"})
ACTIVE_TICKETS = frozenset({"open", "acknowledged", "escalated"})
# How many host names a top entry lists (the count is always complete).
HOST_NAMES_SHOWN = 5

_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


class ResultRow(NamedTuple):
    """The columns of one result that the statistics need; ``started`` is the run's start."""

    host: str
    step: str
    step_type: str
    status: str
    started: str
    run_id: str
    summary: str | None = None  # only failures need it; the store sends None for the others


class TicketRow(NamedTuple):
    """The columns of one ticket that the statistics need."""

    host: str
    check: str
    step_type: str
    status: str
    opened: str
    resolved: str | None


@dataclass(frozen=True)
class Period:
    """The runs considered: started within [since, until], both inclusive, in UTC."""

    since: dt.datetime
    until: dt.datetime


@dataclass(frozen=True)
class HostStats:
    """One host's line: its results over every check."""

    host: str
    results: int
    failures: int
    failure_rate: float | None
    episodes: int
    unreachable: int
    mtbf_hours: float | None
    mttr_hours: float | None
    tickets_resolved: int
    tickets_active: int


@dataclass(frozen=True)
class CheckStats:
    """One check's line (step id and type): its results over every host."""

    check: str
    type: str
    hosts: int
    results: int
    failures: int
    failure_rate: float | None
    episodes: int
    mtbf_hours: float | None
    mttr_hours: float | None
    tickets_resolved: int
    tickets_active: int


@dataclass(frozen=True)
class RecurringFailure:
    """One entry of the top recurring failures: what support hands back to maintenance."""

    check: str
    type: str
    episodes: int
    failures: int
    hosts_affected: int
    hosts: list[str]
    last_seen: str | None
    summary: str | None
    tickets_opened: int


@dataclass(frozen=True)
class Stats:
    """The whole answer of ``maint stats``."""

    since: str
    until: str
    hosts: list[HostStats]
    checks: list[CheckStats]
    top: list[RecurringFailure]

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape: ``since``, ``until``, ``hosts``, ``checks``, ``top`` (None for unknown numbers)."""
        return asdict(self)


@dataclass
class _Tally:
    results: int = 0
    failures: int = 0
    episodes: int = 0
    unreachable: int = 0
    interval_hours: float = 0.0
    intervals: int = 0
    repair_hours: float = 0.0
    tickets_resolved: int = 0
    tickets_active: int = 0
    unreachable_run: str | None = None


@dataclass
class _CheckTally(_Tally):
    hosts: int = 0
    affected: set[str] = field(default_factory=set)
    last_seen: str | None = None
    summaries: Counter[str] = field(default_factory=Counter)
    tickets_opened: int = 0


@dataclass
class _Series:
    """The state of one (host, check) series while its results stream by."""

    host: _Tally
    check: _CheckTally
    failing: bool = False
    last_episode: dt.datetime | None = None


def parse_bound(value: str, now: dt.datetime, *, end_of_day: bool = False) -> dt.datetime:
    """A period bound from ``--since``/``--until`` text.

    Given an age (``30d``, ``12h``, ``2w``, ``90m``; a bare number is seconds) it returns ``now`` minus
    that age; given an ISO 8601 date or time it returns that moment (UTC when it has no offset). A date
    alone means its midnight, or with ``end_of_day`` its last millisecond, so ``--until 2026-03-31``
    includes that day. ``now`` must be timezone-aware. Raises ValueError for anything else.
    """
    from maint.checks import duration

    try:
        return now - dt.timedelta(seconds=duration(value))
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected an age like 30d, 12h or 2w, or an ISO date/time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if end_of_day and _DATE_ONLY.match(value):
        moment += dt.timedelta(days=1, milliseconds=-1)
    return moment.astimezone(dt.UTC)


def summarize(
    results: Iterable[ResultRow], tickets: Iterable[TicketRow], since: str, until: str, top: int = 10
) -> Stats:
    """Per-host and per-check statistics and the ``top`` recurring failures (see the module's definitions).

    ``results`` are the last attempts of the period's results ordered by run start (a run's rows
    together); they are read once, keeping a few numbers per series, host and check, never the rows.
    ``tickets`` are the tickets resolved within the period, still active, or opened within it. ``since``
    and ``until`` are the stored timestamps of the period's bounds. Raises ValueError when the results
    are not ordered by run start.
    """
    hosts: dict[str, _Tally] = {}
    checks: dict[tuple[str, str], _CheckTally] = {}
    every_series: dict[tuple[str, str, str], _Series] = {}
    previous_start = ""

    for host, step, step_type, status, started, run_id, summary in results:
        if started < previous_start:
            raise ValueError(f"results must be ordered by run start: {started} came after {previous_start}")
        previous_start = started
        series = every_series.get((host, step, step_type))
        if series is None:
            host_tally = hosts.setdefault(host, _Tally())
            check_tally = checks.setdefault((step, step_type), _CheckTally())
            check_tally.hosts += 1
            series = every_series[host, step, step_type] = _Series(host_tally, check_tally)
        if status in IGNORED:
            continue
        host_tally, check_tally = series.host, series.check
        if status == UNREACHABLE:
            # A run's rows come together: one unreachable count per run, whatever its number of checks.
            if host_tally.unreachable_run != run_id:
                host_tally.unreachable_run = run_id
                host_tally.unreachable += 1
            continue
        host_tally.results += 1
        check_tally.results += 1
        if status not in FAILURES:
            series.failing = False
            continue
        host_tally.failures += 1
        check_tally.failures += 1
        check_tally.affected.add(host)
        check_tally.last_seen = started
        if summary:
            check_tally.summaries[summary] += 1
        if not series.failing:
            series.failing = True
            host_tally.episodes += 1
            check_tally.episodes += 1
            episode_start = _parse(started)
            if series.last_episode is not None:
                hours = (episode_start - series.last_episode).total_seconds() / 3600
                for tally in (host_tally, check_tally):
                    tally.interval_hours += hours
                    tally.intervals += 1
            series.last_episode = episode_start

    for ticket in tickets:
        host_tally = hosts.setdefault(ticket.host, _Tally())
        check_tally = checks.setdefault((ticket.check, ticket.step_type), _CheckTally())
        if since <= ticket.opened <= until:
            check_tally.tickets_opened += 1
        if ticket.status in ACTIVE_TICKETS and ticket.opened <= until:
            host_tally.tickets_active += 1
            check_tally.tickets_active += 1
        elif ticket.status == "resolved" and ticket.resolved and since <= ticket.resolved <= until:
            hours = (_parse(ticket.resolved) - _parse(ticket.opened)).total_seconds() / 3600
            for tally in (host_tally, check_tally):
                tally.repair_hours += hours
                tally.tickets_resolved += 1

    host_lines = [_host_stats(name, tally) for name, tally in hosts.items()]
    host_lines.sort(key=lambda line: (-line.episodes, -line.failures, -line.unreachable, line.host))
    check_lines = [_check_stats(step, step_type, tally) for (step, step_type), tally in checks.items()]
    check_lines.sort(key=lambda line: (-line.episodes, -line.failures, line.check, line.type))
    recurring = [_recurring(step, step_type, tally) for (step, step_type), tally in checks.items() if tally.failures]
    recurring.sort(key=lambda entry: (-entry.episodes, -entry.failures, entry.check, entry.type))
    return Stats(since=since, until=until, hosts=host_lines, checks=check_lines, top=recurring[:top])


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment)


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


def _rate(failures: int, results: int) -> float | None:
    return round(failures / results, 4) if results else None


def _host_stats(host: str, tally: _Tally) -> HostStats:
    return HostStats(
        host=host, results=tally.results, failures=tally.failures,
        failure_rate=_rate(tally.failures, tally.results), episodes=tally.episodes, unreachable=tally.unreachable,
        mtbf_hours=_mean(tally.interval_hours, tally.intervals),
        mttr_hours=_mean(tally.repair_hours, tally.tickets_resolved),
        tickets_resolved=tally.tickets_resolved, tickets_active=tally.tickets_active,
    )  # fmt: skip


def _check_stats(step: str, step_type: str, tally: _CheckTally) -> CheckStats:
    return CheckStats(
        check=step, type=step_type, hosts=tally.hosts, results=tally.results, failures=tally.failures,
        failure_rate=_rate(tally.failures, tally.results), episodes=tally.episodes,
        mtbf_hours=_mean(tally.interval_hours, tally.intervals),
        mttr_hours=_mean(tally.repair_hours, tally.tickets_resolved),
        tickets_resolved=tally.tickets_resolved, tickets_active=tally.tickets_active,
    )  # fmt: skip


def _recurring(step: str, step_type: str, tally: _CheckTally) -> RecurringFailure:
    # The most frequent summary; ties go to the alphabetically first, whatever order the store sent.
    summary = min(tally.summaries.items(), key=lambda item: (-item[1], item[0]))[0] if tally.summaries else None
    return RecurringFailure(
        check=step, type=step_type, episodes=tally.episodes, failures=tally.failures,
        hosts_affected=len(tally.affected), hosts=sorted(tally.affected)[:HOST_NAMES_SHOWN],
        last_seen=tally.last_seen, summary=summary, tickets_opened=tally.tickets_opened,
    )  # fmt: skip
