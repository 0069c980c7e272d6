"""``maint tickets``: the reactive tickets maint keeps for failing (host, check) pairs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from maint.cli.options import TIMEOUT, db_option, echo_json, format_option, project_dir, reading_store
from maint.terminal import styled

if TYPE_CHECKING:
    from maint.config import Config
    from maint.store import Store

STATUSES = ("open", "acknowledged", "escalated", "resolved", "active", "all")


def _open_store(db_url: str | None, read_only: int | None = None, empty_json: Any = None) -> tuple[Store, Config]:
    """The store and maint.yml; with ``read_only`` (the exit code without a store) the store is not created (see
    :func:`maint.cli.options.reading_store`)."""
    from maint import config
    from maint.store import Store

    loaded = config.load()
    return (Store(db_url) if read_only is None else reading_store(db_url, read_only, empty_json)), loaded


def _ticket_id(value: str) -> int:
    try:
        return int(value.lstrip("#"))
    except ValueError:
        raise click.BadParameter(f"expected a ticket number such as 12 or #12, got {value!r}") from None


@click.group()
def tickets() -> None:
    """List, show and work the tickets maint opened (the local ticket store).

    Ticket actions go to the external backends routed in maint.yml through the outbox;
    `maint tickets sync` delivers what is still waiting.
    """


@tickets.command("list")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(STATUSES), default=("active",), show_default=True,
    help="Tickets with this status (repeatable; active = open, acknowledged or escalated).",
)  # fmt: skip
@click.option("--tier", "tiers", multiple=True, type=click.Choice(["L1", "L2", "L3"]), help="Only this tier.")
@click.option("--host", help="Only tickets of this host.")
@click.option("--check", help="Only tickets of this check (step id).")
@click.option("-n", "--last", "limit", type=int, default=200, show_default=True, help="At most this many.")
@format_option
@db_option
def list_tickets(
    statuses: tuple[str, ...], tiers: tuple[str, ...], host: str | None, check: str | None, limit: int,
    output_format: str, db_url: str | None,
) -> None:
    """Tickets, newest first (default: the active ones)."""
    from maint.reports.text import tickets_table
    from maint.store.tickets import ACTIVE

    store, _ = _open_store(db_url, read_only=0, empty_json=[] if output_format == "json" else None)
    wanted: list[str] = []
    for status in statuses:
        if status == "all":
            wanted = []
            break
        wanted.extend(ACTIVE if status == "active" else [status])
    found = [ticket.as_dict() for ticket in store.find_tickets(wanted, tiers, host, check, limit)]
    if output_format == "json":
        echo_json(found)
    elif found:
        click.echo(tickets_table(found))
    else:
        click.echo("no tickets match", err=True)


@tickets.command("show")
@click.argument("ticket_id")
@format_option
@db_option
def show_ticket(ticket_id: str, output_format: str, db_url: str | None) -> None:
    """One ticket with its history and its deliveries to external backends."""
    from maint.errors import ExitCode

    number = _ticket_id(ticket_id)
    store, _ = _open_store(db_url, read_only=ExitCode.BAD_INPUT)
    found = store.ticket_history(number)
    if found is None:
        from maint.errors import BadInput

        raise BadInput(f"no ticket #{number} in {store.url}", hint="see 'maint tickets list --status all'")
    ticket, deliveries = found.ticket, found.deliveries
    history = [
        {"id": event.id, "at": event.at, "action": event.action, "actor": event.actor, "run_id": event.run_id,
         "text": event.text, "data": dict(event.data)}
        for event in found.events
    ]  # fmt: skip
    document: dict[str, Any] = {**ticket.as_dict(), "runbook": ticket.runbook, "history": history,
                                "deliveries": deliveries}  # fmt: skip
    if output_format == "json":
        echo_json(document)
        return
    click.echo(f"ticket #{ticket.id} {ticket.status}{' (flapping)' if ticket.flapping else ''}: "
               f"{ticket.check} on {ticket.host}")  # fmt: skip
    click.echo(f"  key {ticket.key}, tier {ticket.tier}, severity {ticket.severity}, {ticket.occurrences} "
               f"occurrence(s), opened {ticket.opened}, updated {ticket.updated}")  # fmt: skip
    click.echo(f"  {ticket.summary}")
    for name, ref in ticket.refs.items():
        click.echo(f"  {name}: {ref}")
    click.echo("history:")
    for event in history:
        run = f" (run {event['run_id']})" if event["run_id"] else ""
        click.echo(f"  {event['at']}  {event['action']:<12} {event['actor']}{run}: {event['text']}")
    if deliveries:
        click.echo("deliveries:")
        for row in deliveries:
            state = f"sent {row['sent']}" if row["status"] == "sent" else f"pending ({row['attempts']} attempts"
            if row["status"] != "sent":
                state += f", last error: {row['last_error']})" if row["last_error"] else ")"
            click.echo(f"  event {row['event_id']} {row['action']:<10} -> {row['backend']}: {state}")


def _act(ticket_id: str, action: str, text: str, db_url: str | None, deliver: bool) -> None:
    from maint.clock import utc_now
    from maint.provenance import operator_name
    from maint.tickets import act
    from maint.tickets.outbox import deliver as deliver_outbox

    store, loaded = _open_store(db_url)
    ticket = act(store, loaded, _ticket_id(ticket_id), action, operator_name(), utc_now(), text, project_dir())
    click.echo(f"ticket #{ticket.id}: {ticket.status}, tier {ticket.tier}")
    if deliver:
        report = deliver_outbox(store, loaded, utc_now)
        for warning in report.warnings:
            styled(f"maint: warning: {warning}", fg="yellow")


@tickets.command("ack")
@click.argument("ticket_id")
@click.option("-m", "--note", default="", help="A note for the acknowledgement.")
@click.option("--no-sync", "deliver", is_flag=True, flag_value=False, default=True, help="Only queue it.")
@db_option
def ack(ticket_id: str, note: str, deliver: bool, db_url: str | None) -> None:
    """Acknowledge a ticket: someone is on it (recorded with your user name)."""
    _act(ticket_id, "acknowledged", note, db_url, deliver)


@tickets.command("comment")
@click.argument("ticket_id")
@click.argument("text")
@click.option("--no-sync", "deliver", is_flag=True, flag_value=False, default=True, help="Only queue it.")
@db_option
def comment(ticket_id: str, text: str, deliver: bool, db_url: str | None) -> None:
    """Add a comment to a ticket (and to its external tickets)."""
    if not text.strip():
        raise click.BadParameter("the comment is empty", param_hint="TEXT")
    _act(ticket_id, "comment", text, db_url, deliver)


@tickets.command("escalate")
@click.argument("ticket_id")
@click.option("-m", "--note", default="", help="Why.")
@click.option("--no-sync", "deliver", is_flag=True, flag_value=False, default=True, help="Only queue it.")
@db_option
def escalate(ticket_id: str, note: str, deliver: bool, db_url: str | None) -> None:
    """Move a ticket one tier up (L1 -> L2 -> L3)."""
    _act(ticket_id, "escalated", note, db_url, deliver)


@tickets.command("resolve")
@click.argument("ticket_id")
@click.option("-m", "--note", default="", help="How it was resolved.")
@click.option("--no-sync", "deliver", is_flag=True, flag_value=False, default=True, help="Only queue it.")
@db_option
def resolve(ticket_id: str, note: str, deliver: bool, db_url: str | None) -> None:
    """Resolve a ticket by hand (a later failure reopens it within tickets.reopen_within)."""
    _act(ticket_id, "resolved", note, db_url, deliver)


@tickets.command("sync")
@click.option("--backend", "backends", multiple=True, help="Only this backend (repeatable).")
@click.option("--within", type=TIMEOUT, default=300.0, show_default=True,
              help="Give up after this many seconds (or a duration such as 10m; at most 7d).")
@format_option
@db_option
def sync(backends: tuple[str, ...], within: float, output_format: str, db_url: str | None) -> int:
    """Deliver the ticket actions waiting in the outbox, in order, without duplicates.

    Exits 0 when the outbox is empty afterwards, 4 when actions still wait (a backend is down).
    """
    from maint.clock import utc_now
    from maint.errors import ExitCode
    from maint.tickets.outbox import deliver

    store, loaded = _open_store(db_url)
    report = deliver(store, loaded, utc_now, budget=within, only=list(backends) or None)
    if output_format == "json":
        echo_json({"delivered": report.sent, "pending": report.pending, "failed": report.failed_backends})
    else:
        for warning in report.warnings:
            styled(f"maint: warning: {warning}", fg="yellow")
        click.echo(f"delivered {report.sent} ticket actions; {report.pending} waiting in the outbox")
    return int(ExitCode.FAILED) if report.pending else 0
