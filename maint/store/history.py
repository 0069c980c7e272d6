"""Queries over the recorded history: runs filtered by host, check, time and status, the rows of
``maint stats``, and what a run's report adds to the run (the ticket actions it took, the trend).

Filtering happens in SQL (plain SQLAlchemy Core, so SQLite and PostgreSQL alike); rows are streamed,
and a result's ``output`` is never read. Host and check patterns are shell-style (``web-*``,
``db-0?``, ``web-[12]*``): SQL narrows with LIKE, and :func:`fnmatch.fnmatchcase` decides, so a
pattern means the same on every database (SQLite's LIKE ignores case, PostgreSQL's does not).
Timestamps are compared as the stored text (ISO 8601 UTC with a Z), which sorts like time.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from maint import stats as stats_module
from maint.store.rows import run_dict, shown_status
from maint.store.schema import results, runs, ticket_events, tickets
from maint.store.tickets import ACTIVE

Connectable = Engine | Connection
RUN_STATUSES = ("running", "ok", "failed", "unreachable", "aborted", "interrupted", "not-started")
RESULT_STATUSES = ("ok", "warning", "failed", "error", "unreachable", "skipped")
# Rows fetched per round trip while streaming (a server-side cursor on PostgreSQL).
BATCH_ROWS = 10_000
STREAMED = {"stream_results": True, "yield_per": BATCH_ROWS}


@dataclass(frozen=True)
class RunFilter:
    """What ``maint runs list`` asks for; bounds are stored timestamps, patterns shell-style.

    Without ``host``/``check``, ``statuses`` are run statuses; with either, they are the statuses of
    the last attempt of a matching (host, step) in the run.
    """

    host: str | None = None
    check: str | None = None
    since: str | None = None
    until: str | None = None
    statuses: Sequence[str] = ()
    limit: int = 50

    @property
    def by_result(self) -> bool:
        """Whether runs are selected by their results (a host or check pattern was given)."""
        return self.host is not None or self.check is not None


def find_runs(connectable: Connectable, wanted: RunFilter) -> list[dict[str, Any]]:
    """The runs matching ``wanted``, newest first, at most ``wanted.limit``, without their results.

    Each is a run as :func:`maint.store.rows.run_dict` shapes it (without results); when selecting by results it also
    has ``matches``: the matching last attempts as ``{host, playbook, step, status}``. Raises
    SQLAlchemy errors of the store.
    """
    with _connected(connectable) as connection:
        if not wanted.by_result:
            found = [run_dict(row) for row in connection.execute(_runs_query(wanted, connection)).mappings()]
            if wanted.statuses:  # a killed controller's run is stored as running and shown as interrupted
                found = [run for run in found if run["status"] in wanted.statuses][: wanted.limit]
            return found
        matches = _matching_results(connection, wanted)
        if not matches:
            return []
        rows = connection.execute(sa.select(runs).where(runs.c.id.in_(list(matches)))).mappings().all()
    by_id = {row["id"]: run_dict(row) for row in rows}
    return [{**by_id[run_id], "matches": found} for run_id, found in matches.items()]


def result_rows(
    connectable: Connectable,
    since: str,
    until: str,
    host: str | None = None,
    check: str | None = None,
) -> Iterator[stats_module.ResultRow]:
    """Stream the rows :func:`maint.stats.summarize` needs: last attempts of runs started within
    [since, until] (stored timestamps), not skipped, matching the host and check patterns, ordered by
    run start (then run id, so a run's rows come together). Only failures carry their summary. Raises
    SQLAlchemy errors of the store.
    """
    with _connected(connectable) as connection:
        streamed = connection.execute(_results_query(since, until, host, check), execution_options=STREAMED)
        for row in streamed:
            if _accepts(row.host, host) and _accepts(row.step, check):
                yield stats_module.ResultRow(*row)


def ticket_rows(
    connectable: Connectable,
    since: str,
    until: str,
    host: str | None = None,
    check: str | None = None,
) -> list[stats_module.TicketRow]:
    """The tickets :func:`maint.stats.summarize` needs: resolved or opened within [since, until], or
    still active and opened before ``until``, matching the host and check patterns. Raises SQLAlchemy
    errors of the store.
    """
    with _connected(connectable) as connection:
        return [
            stats_module.TicketRow(*row) for row in connection.execute(_tickets_query(since, until, host, check))
            if _accepts(row.host, host) and _accepts(row.check, check)
        ]  # fmt: skip


def summarize(
    connectable: Connectable,
    since: str,
    until: str,
    host: str | None = None,
    check: str | None = None,
    top: int = 10,
) -> stats_module.Stats:
    """``maint stats``: the statistics of runs started within [since, until] (stored timestamps) for
    the hosts and checks matching the patterns, with the ``top`` recurring failures. Raises SQLAlchemy
    errors of the store.
    """
    with _connected(connectable) as connection:
        found_tickets = ticket_rows(connection, since, until, host, check)
        return stats_module.summarize(
            result_rows(connection, since, until, host, check), found_tickets, since, until, top
        )


def touched_tickets(connection: sa.Connection, run_id: str) -> list[dict[str, Any]]:
    """Every ticket action a run took (opened, occurrence, escalated, resolved, ...), in order.

    Gets an open connection and the full run id; returns one mapping per action with the ticket's
    current fields (``id``, ``key``, ``host``, ``check``, ``tier``, ``severity``, ``status``,
    ``refs``, ...) and the action's ``action``, ``at`` and ``text``. Raises nothing of its own.
    """
    query = (
        sa.select(
            tickets.c.id, tickets.c.key, tickets.c.host, tickets.c.check, tickets.c.playbook, tickets.c.tier,
            tickets.c.severity, tickets.c.status, tickets.c.summary, tickets.c.occurrences, tickets.c.opened,
            tickets.c.updated, tickets.c.resolved, tickets.c.refs, ticket_events.c.id.label("event_id"),
            ticket_events.c.action, ticket_events.c.at, ticket_events.c.actor, ticket_events.c.text,
        )
        .select_from(ticket_events.join(tickets, ticket_events.c.ticket_id == tickets.c.id))
        .where(ticket_events.c.run_id == run_id)
        .order_by(ticket_events.c.id)
    )  # fmt: skip
    return [{**row, "refs": dict(row["refs"] or {})} for row in connection.execute(query).mappings()]


def trend(connection: sa.Connection, run: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` latest runs of the same playbooks (same names, same order) that started no later
    than ``run``, oldest first: ``id``, ``started``, ``status``, ``exit_code`` and ``counts``
    (final status counts; empty while a run is running).

    Gets an open connection and a run document; raises nothing of its own.
    """
    names = [playbook["name"] for playbook in run["playbooks"]]
    query = (
        sa.select(runs.c.id, runs.c.started, runs.c.status, runs.c.exit_code, runs.c.counts, runs.c.playbooks,
                  runs.c.controller, runs.c.options)
        .where(runs.c.started <= run["started"])
        .order_by(runs.c.started.desc(), runs.c.id.desc())
    )
    found: list[dict[str, Any]] = []
    # The playbook names sit in a JSON column that not every database can filter on: read newest
    # first in batches and stop at ``limit`` matches.
    result = connection.execution_options(yield_per=200).execute(query)
    try:
        for row in result.mappings():
            if [playbook["name"] for playbook in row["playbooks"]] != names:
                continue
            status, exit_code = shown_status(row)  # a killed controller's run: interrupted
            found.append({
                "id": row["id"], "started": row["started"], "status": status, "exit_code": exit_code,
                "counts": dict(row["counts"] or {}),
            })  # fmt: skip
            if len(found) >= limit:
                break
    finally:
        result.close()
    found.reverse()
    return found


def like_pattern(pattern: str) -> str:
    """A SQL LIKE pattern (escape character ``\\``) matching at least what the shell-style ``pattern``
    matches: ``*`` becomes ``%``, ``?`` and a ``[...]`` set become ``_``; LIKE's own ``%``, ``_`` and
    ``\\`` are escaped. Raises nothing.
    """
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            parts.append("%")
        elif char == "?":
            parts.append("_")
        elif char == "[":
            # fnmatch's rule: a set may start with ! and a ] right after [ or [! is a member.
            end = index + 1
            if end < len(pattern) and pattern[end] == "!":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            end = pattern.find("]", end)
            if end == -1:
                parts.append("[")
            else:
                parts.append("_")
                index = end
        elif char in "%_\\":
            parts.append("\\" + char)
        else:
            parts.append(char)
        index += 1
    return "".join(parts)


@contextlib.contextmanager
def _connected(connectable: Connectable) -> Iterator[Connection]:
    if isinstance(connectable, Connection):
        yield connectable
    else:
        with connectable.connect() as connection:
            yield connection


def _newest_first() -> tuple[Any, ...]:
    return runs.c.started.desc(), runs.c.id.desc()


def _within(query: sa.Select[Any], since: str | None, until: str | None) -> sa.Select[Any]:
    if since is not None:
        query = query.where(runs.c.started >= since)
    if until is not None:
        query = query.where(runs.c.started <= until)
    return query


def _pattern(column: sa.ColumnElement[str], pattern: str) -> sa.ColumnElement[bool]:
    # A pattern without wildcards is a name: equality lets the database use its index.
    if not any(char in pattern for char in "*?["):
        return column == pattern
    return column.like(like_pattern(pattern), escape="\\")


def _matching(
    query: sa.Select[Any],
    host_column: sa.ColumnElement[str],
    host: str | None,
    check_column: sa.ColumnElement[str],
    check: str | None,
) -> sa.Select[Any]:
    if host is not None:
        query = query.where(_pattern(host_column, host))
    if check is not None:
        query = query.where(_pattern(check_column, check))
    return query


def _accepts(name: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(name, pattern)


def _last_attempt() -> sa.ColumnElement[bool]:
    """No later attempt of the same (run, host, playbook, step): the unique index answers it."""
    later = results.alias("later")
    return ~sa.exists().where(
        later.c.run_id == results.c.run_id,
        later.c.host == results.c.host,
        later.c.playbook == results.c.playbook,
        later.c.step == results.c.step,
        later.c.attempt > results.c.attempt,
    )


def _runs_query(wanted: RunFilter, connection: Connection) -> sa.Select[Any]:
    query = _within(sa.select(runs), wanted.since, wanted.until)
    limit = wanted.limit
    if wanted.statuses:
        statuses = set(wanted.statuses)
        if statuses & {"running", "interrupted"}:
            # Stored running runs are shown as interrupted when their controller was killed: read them
            # all, find_runs keeps those whose shown status was asked for (running runs are few).
            statuses.add("running")
            running = sa.select(sa.func.count()).select_from(runs).where(runs.c.status == "running")
            limit += connection.execute(running).scalar_one()
        query = query.where(runs.c.status.in_(sorted(statuses)))
    return query.order_by(*_newest_first()).limit(limit)


def _results_query(since: str, until: str, host: str | None, check: str | None) -> sa.Select[Any]:
    failing = results.c.status.in_(sorted(stats_module.FAILURES))
    query = (
        sa.select(
            results.c.host, results.c.step, results.c.step_type, results.c.status, runs.c.started,
            results.c.run_id, sa.case((failing, results.c.summary), else_=sa.null()).label("summary"),
        )
        .join(runs, runs.c.id == results.c.run_id)
        .where(results.c.status.not_in(sorted(stats_module.IGNORED)), _last_attempt())
        # Run order, not series order: SQLite then reads each run's rows together from the table
        # instead of hopping through it by the (host, step) index (4 s instead of 16 s for 2M rows).
        .order_by(runs.c.started, runs.c.id)
    )  # fmt: skip
    return _within(_matching(query, results.c.host, host, results.c.step, check), since, until)


def _tickets_query(since: str, until: str, host: str | None, check: str | None) -> sa.Select[Any]:
    query = sa.select(
        tickets.c.host, tickets.c.check, tickets.c.step_type, tickets.c.status, tickets.c.opened, tickets.c.resolved
    ).where(
        sa.or_(
            tickets.c.resolved.between(since, until),
            tickets.c.opened.between(since, until),
            sa.and_(tickets.c.status.in_(ACTIVE), tickets.c.opened <= until),
        )
    )
    return _matching(query, tickets.c.host, host, tickets.c.check, check).order_by(tickets.c.id)


def _matches_query(wanted: RunFilter) -> sa.Select[Any]:
    query = (
        sa.select(runs.c.id, results.c.host, results.c.playbook, results.c.step, results.c.status)
        .join(results, results.c.run_id == runs.c.id)
        .where(_last_attempt())
        .order_by(*_newest_first(), results.c.host, results.c.playbook, results.c.step)
    )
    if wanted.statuses:
        query = query.where(results.c.status.in_(list(wanted.statuses)))
    return _within(
        _matching(query, results.c.host, wanted.host, results.c.step, wanted.check), wanted.since, wanted.until
    )


def _matching_results(connection: Connection, wanted: RunFilter) -> dict[str, list[dict[str, str]]]:
    """Run id -> its matching last attempts, for the newest ``wanted.limit`` runs that have any."""
    found: dict[str, list[dict[str, str]]] = {}
    streamed = connection.execute(_matches_query(wanted), execution_options=STREAMED)
    with streamed:
        for row in streamed:
            if not (_accepts(row.host, wanted.host) and _accepts(row.step, wanted.check)):
                continue
            if row.id not in found:
                if len(found) == wanted.limit:
                    break  # rows come newest run first: the rest belong to older runs
                found[row.id] = []
            found[row.id].append({"host": row.host, "playbook": row.playbook, "step": row.step, "status": row.status})
    return found
