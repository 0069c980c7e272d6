"""Alert state, tickets, their history and the outbox, in the same store as the runs.

Tables:

- ``alerts``: one row per dedup key (``HOST/CHECK``), the state :mod:`maint.alerts` computes.
- ``tickets``: maint's own ticket per failing (host, check); at most one active (open,
  acknowledged, escalated) per key. ``refs`` holds the external systems' references.
- ``ticket_events``: the history of each ticket (opened, occurrence, escalated, ...), append-only.
- ``outbox``: one row per (event, external backend) to deliver, in event order, with attempts and
  the last error; delivered rows stay, marked sent, as the proof of delivery.

Every write of a ticket or alert-state row, and every deletion of one, appends a ledger entry in the
same transaction (:mod:`maint.store.ledger_writer`), like the runs, results, events and deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from maint.alerts import AlertState
from maint.store import ledger_writer
from maint.store.schema import alerts as alerts
from maint.store.schema import outbox as outbox
from maint.store.schema import ticket_events as ticket_events
from maint.store.schema import tickets as tickets

ACTIVE = ("open", "acknowledged", "escalated")

@dataclass
class Ticket:
    """maint's own ticket (a row of ``tickets``), mutable while the policy works on it."""

    key: str
    host: str
    check: str
    step_type: str
    playbook: str
    tier: str
    severity: str
    status: str
    summary: str
    opened: str
    updated: str
    tier_since: str
    occurrences: int = 1
    tier_occurrences: int = 1
    flapping: bool = False
    resolved: str | None = None
    first_run: str | None = None
    last_run: str | None = None
    groups: list[str] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)
    runbook: str = ""
    id: int | None = None

    @property
    def active(self) -> bool:
        """Open, acknowledged or escalated (not resolved)."""
        return self.status in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``maint tickets list --format json``."""
        return {
            "id": self.id,
            "key": self.key,
            "host": self.host,
            "check": self.check,
            "type": self.step_type,
            "playbook": self.playbook,
            "tier": self.tier,
            "severity": self.severity,
            "status": self.status,
            "flapping": self.flapping,
            "summary": self.summary,
            "occurrences": self.occurrences,
            "opened": self.opened,
            "updated": self.updated,
            "resolved": self.resolved,
            "first_run": self.first_run,
            "last_run": self.last_run,
            "refs": dict(self.refs),
        }


@dataclass(frozen=True)
class Event:
    """One entry of a ticket's history."""

    action: str  # opened, occurrence, escalated, flapping, acknowledged, comment, resolved, reopened
    at: str
    actor: str
    text: str
    run_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    ticket_id: int | None = None


def _ticket(row: sa.RowMapping) -> Ticket:
    values = dict(row)
    values["groups"] = list(values["groups"] or [])
    values["refs"] = dict(values["refs"] or {})
    return Ticket(**values)


def load_alerts(connection: sa.Connection, keys: Iterable[str]) -> dict[str, AlertState]:
    """The stored alert state of each of ``keys`` that has one."""
    wanted = list(keys)
    found: dict[str, AlertState] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(sa.select(alerts).where(alerts.c.key.in_(wanted[start : start + 500])))
        for row in rows.mappings():
            values = dict(row)
            values["history"] = tuple(values["history"])
            found[row["key"]] = AlertState(**values)
    return found


def save_alerts(
    connection: sa.Connection, states: Iterable[AlertState], forget: Iterable[str] = (), run_id: str | None = None
) -> None:
    """Insert or replace the alert state of each of ``states``; delete the state of the ``forget`` keys.
    Each row written or deleted gets its ledger entry, naming ``run_id``, the run that observed it."""
    rows = [{**asdict(state), "history": list(state.history)} for state in states]
    forgotten = list(forget)
    keys = [row["key"] for row in rows] + forgotten
    for start in range(0, len(keys), 500):
        connection.execute(alerts.delete().where(alerts.c.key.in_(keys[start : start + 500])))
    if rows:
        # The rows as stored come back from the insert: the ledger digests them without a re-read.
        stored = connection.execute(
            alerts.insert().returning(*alerts.c, sort_by_parameter_order=True), rows
        ).mappings().all()
        ledger_writer.append(connection, "alert-state", [row["key"] for row in stored], rows=stored, run_id=run_id)
    if forgotten:
        ledger_writer.append_deleted(connection, "alert-state", forgotten, run_id=run_id)


def latest_tickets(connection: sa.Connection, keys: Iterable[str]) -> dict[str, Ticket]:
    """For each key, its active ticket, else its most recently resolved one."""
    wanted = list(keys)
    found: dict[str, Ticket] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(
            sa.select(tickets).where(tickets.c.key.in_(wanted[start : start + 500])).order_by(tickets.c.id)
        )
        for row in rows.mappings():
            ticket = _ticket(row)
            current = found.get(ticket.key)
            if current is None or not current.active:
                found[ticket.key] = ticket
    return found


def save_ticket(connection: sa.Connection, ticket: Ticket, run_id: str | None = None) -> Ticket:
    """Insert a new ticket (setting its id) or update an existing one, with its ledger entry naming
    ``run_id`` (the run that changed it; None for an operator's action)."""
    values = asdict(ticket)
    values.pop("id")
    written = (
        tickets.insert().values(**values) if ticket.id is None
        else tickets.update().where(tickets.c.id == ticket.id).values(**values)
    )  # fmt: skip
    row = connection.execute(written.returning(*tickets.c)).mappings().one()
    ticket.id = int(row["id"])
    ledger_writer.append(connection, "ticket-state", [ticket.id], rows=[row], run_id=run_id)
    return ticket


def add_event(connection: sa.Connection, ticket_id: int, event: Event) -> int:
    """Append ``event`` to a ticket's history; returns the event id."""
    values = {
        "ticket_id": ticket_id, "at": event.at, "action": event.action, "actor": event.actor,
        "run_id": event.run_id, "text": event.text, "data": dict(event.data),
    }  # fmt: skip
    inserted = connection.execute(ticket_events.insert().values(**values)).inserted_primary_key
    assert inserted is not None
    ledger_writer.append(connection, "ticket", [int(inserted[0])])
    return int(inserted[0])


# The messages to queue for one event of a saved ticket, given the event's id: (backend, message) for
# each backend the ticket is routed to (:func:`maint.tickets.render_message` renders them).
Messages = Callable[[Ticket, Event, int], Iterable[tuple[str, Mapping[str, Any]]]]


@dataclass(frozen=True)
class Reaction:
    """What a run's finding changes in the store: the alert state to keep for its key (None: none), whether
    the stored state is deleted, and the ticket with its new events (recorded when there are events)."""

    key: str
    state: AlertState | None
    forget: bool
    ticket: Ticket | None
    events: Sequence[Event]
    run_id: str | None
    messages: Messages


# Given the stored alert state and the latest ticket of each key that has them, the reactions to record.
Plan = Callable[[Mapping[str, AlertState], Mapping[str, Ticket]], Sequence[Reaction]]


@dataclass(frozen=True)
class TicketHistory:
    """A ticket as ``maint tickets show`` has it: the ticket, its events and its outbox rows."""

    ticket: Ticket
    events: list[Event]
    deliveries: list[dict[str, Any]]


def record_events(
    connection: sa.Connection, ticket: Ticket, events: Sequence[Event], run_id: str | None, messages: Messages
) -> Ticket:
    """Save the ticket (its ledger entry naming ``run_id``), append its events and queue the messages of
    each event, in the caller's transaction; returns the ticket with its id."""
    ticket = save_ticket(connection, ticket, run_id)
    assert ticket.id is not None
    for event in events:
        event_id = add_event(connection, ticket.id, event)
        for backend, message in messages(ticket, event, event_id):
            enqueue(connection, event_id, ticket.id, backend, message, event.at)
    return ticket


def record_reactions(
    connection: sa.Connection, keys: Sequence[str], plan: Plan, run_id: str
) -> list[tuple[Ticket, Sequence[Event]]]:
    """Read the alert state and the latest ticket of ``keys``, let ``plan`` decide, and record its
    reactions in order (each ticket with its events and messages, then the alert state, naming
    ``run_id``), in the caller's transaction. Returns each recorded ticket with its events."""
    reactions = plan(load_alerts(connection, keys), latest_tickets(connection, keys))
    recorded: list[tuple[Ticket, Sequence[Event]]] = []
    for reaction in reactions:
        if reaction.ticket is not None and reaction.events:
            ticket = record_events(connection, reaction.ticket, reaction.events, reaction.run_id, reaction.messages)
            recorded.append((ticket, reaction.events))
    states = [reaction.state for reaction in reactions if reaction.state is not None]
    forget = [reaction.key for reaction in reactions if reaction.forget]
    save_alerts(connection, states, forget, run_id)
    return recorded


def change_ticket(
    connection: sa.Connection, ticket_id: int, change: Callable[[Ticket], tuple[Ticket, Event]], messages: Messages
) -> Ticket | None:
    """Apply ``change`` (an operator's action) to the ticket with this id and record the changed ticket with
    its event and messages, in the caller's transaction; None when there is no such ticket."""
    ticket = get_ticket(connection, ticket_id)
    if ticket is None:
        return None
    changed, event = change(ticket)
    return record_events(connection, changed, [event], None, messages)


def ticket_history(connection: sa.Connection, ticket_id: int) -> TicketHistory | None:
    """The ticket with this id with its history and deliveries, or None."""
    ticket = get_ticket(connection, ticket_id)
    if ticket is None:
        return None
    return TicketHistory(ticket, events_of(connection, ticket_id), deliveries_of(connection, ticket_id))


def enqueue(
    connection: sa.Connection, event_id: int, ticket_id: int, backend: str, message: Mapping[str, Any], now: str
) -> None:
    """Queue one action for one external backend."""
    connection.execute(
        outbox.insert().values(
            event_id=event_id, ticket_id=ticket_id, backend=backend, message=dict(message), status="pending",
            attempts=0, created=now,
        )
    )  # fmt: skip


def get_ticket(connection: sa.Connection, ticket_id: int) -> Ticket | None:
    """The ticket with this id, or None."""
    row = connection.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).mappings().first()
    return _ticket(row) if row else None


def find_tickets(
    connection: sa.Connection,
    statuses: Sequence[str] = (),
    tiers: Sequence[str] = (),
    host: str | None = None,
    check: str | None = None,
    limit: int | None = None,
) -> list[Ticket]:
    """Tickets filtered by status, tier, host and check; newest first."""
    query = sa.select(tickets).order_by(tickets.c.id.desc())
    if statuses:
        query = query.where(tickets.c.status.in_(list(statuses)))
    if tiers:
        query = query.where(tickets.c.tier.in_(list(tiers)))
    if host:
        query = query.where(tickets.c.host == host)
    if check:
        query = query.where(tickets.c.check == check)
    if limit:
        query = query.limit(limit)
    return [_ticket(row) for row in connection.execute(query).mappings()]


def events_of(connection: sa.Connection, ticket_id: int) -> list[Event]:
    """A ticket's history, oldest first."""
    rows = connection.execute(
        sa.select(ticket_events).where(ticket_events.c.ticket_id == ticket_id).order_by(ticket_events.c.id)
    ).mappings()
    return [Event(**{**dict(row), "data": dict(row["data"] or {})}) for row in rows]


def deliveries_of(connection: sa.Connection, ticket_id: int) -> list[dict[str, Any]]:
    """A ticket's outbox rows (delivered and pending), oldest first."""
    rows = connection.execute(
        sa.select(outbox).where(outbox.c.ticket_id == ticket_id).order_by(outbox.c.id)
    ).mappings()
    return [
        {key: row[key] for key in ("id", "event_id", "backend", "status", "attempts", "last_error", "sent", "ref")}
        | {"action": row["message"].get("action")}
        for row in rows
    ]


def pending(connection: sa.Connection, backends: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Outbox rows still to deliver, in the order they were queued."""
    query = sa.select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id)
    if backends is not None:
        query = query.where(outbox.c.backend.in_(list(backends)))
    return [dict(row) for row in connection.execute(query).mappings()]


def pending_count(connection: sa.Connection) -> int:
    """How many outbox rows wait for delivery."""
    query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "pending")
    return int(connection.execute(query).scalar() or 0)


def mark_sent(connection: sa.Connection, row_id: int, ticket_id: int, backend: str, ref: str, now: str) -> None:
    """Record a delivery and remember the backend's reference on the ticket."""
    connection.execute(
        outbox.update().where(outbox.c.id == row_id).values(
            status="sent", sent=now, last_attempt=now, ref=ref, attempts=outbox.c.attempts + 1, last_error=None
        )
    )  # fmt: skip
    refs = connection.execute(sa.select(tickets.c.refs).where(tickets.c.id == ticket_id)).scalar() or {}
    if ref and refs.get(backend) != ref:
        row = connection.execute(
            tickets.update().where(tickets.c.id == ticket_id).values(refs={**refs, backend: ref}).returning(*tickets.c)
        ).mappings().one()
        ledger_writer.append(connection, "ticket-state", [ticket_id], rows=[row])
    ledger_writer.append(connection, "delivery", [row_id])


def mark_failed(connection: sa.Connection, row_id: int, error: str, now: str) -> None:
    """Record a failed attempt; the row stays pending."""
    connection.execute(
        outbox.update().where(outbox.c.id == row_id).values(
            attempts=outbox.c.attempts + 1, last_error=error, last_attempt=now
        )
    )  # fmt: skip
