"""What a run's report shows, read from the store: the run, the tickets it touched, the trend, its seal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from maint.store import runs, shown_status
from maint.store.tickets import ticket_events, tickets

if TYPE_CHECKING:
    from maint.store import Store

TREND_RUNS = 30


def report_document(store: Store, run_id: str) -> dict[str, Any]:
    """The report of one run: the run document of ``maint runs show --format json`` plus ``tickets``
    (each ticket action the run took), ``trend`` (status counts of the latest runs of the same
    playbooks, oldest first, up to and including this one) and ``ledger`` (the run's seal, or None).

    ``run_id`` may be a unique prefix. Raises BadInput when no run or several runs match.
    """
    document = store.get_run(run_id).as_dict()
    with store.engine.connect() as connection:
        document["tickets"] = touched_tickets(connection, document["id"])
        document["trend"] = trend(connection, document)
    return document


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


def trend(connection: sa.Connection, run: Mapping[str, Any], limit: int = TREND_RUNS) -> list[dict[str, Any]]:
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
