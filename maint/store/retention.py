"""Retention: delete old runs (and long-resolved tickets) while the ledger stays verifiable.

A prune writes a checkpoint row naming everything pruned so far and appends it to the chain, so
``maint audit verify`` knows which missing rows were deleted on purpose. The oldest ledger entries
whose rows are all gone are dropped; the checkpoint keeps the number and hash of the last one, from
which the remaining chain is verified. With ``audit.signing_key`` the new head is signed.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from maint.errors import MaintError
from maint.store import ledger_writer
from maint.store.schema import (
    DELETED,
    GENESIS,
    STATE_KINDS,
    checkpoints,
    ledger,
    outbox,
    results,
    runs,
    signatures,
    ticket_events,
    tickets,
)


@dataclass
class PruneReport:
    """What a prune deleted (or, with ``dry_run``, would delete)."""

    runs: list[str] = field(default_factory=list)
    results: int = 0
    tickets: int = 0
    events: int = 0
    deliveries: int = 0
    entries_dropped: int = 0
    checkpoint: int | None = None
    base_seq: int = 0
    signed: bool = False
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "dry_run": self.dry_run, "runs": self.runs, "results": self.results, "tickets": self.tickets,
            "ticket_events": self.events, "deliveries": self.deliveries, "ledger_entries_dropped": self.entries_dropped,
            "checkpoint": self.checkpoint, "chain_starts_after": self.base_seq, "signed": self.signed,
            "warnings": self.warnings,
        }  # fmt: skip


def select_runs(connection: sa.Connection, keep_last: int | None, cutoff: str | None) -> list[str]:
    """Ids of the finished runs to prune: all but the newest ``keep_last`` runs, and of those only the
    ones started before ``cutoff`` (stored timestamp text) when given. Running runs are never pruned."""
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.started, runs.c.status).order_by(runs.c.started.desc(), runs.c.id.desc())
    ).all()
    candidates = rows[keep_last:] if keep_last is not None else rows
    return [
        row.id for row in candidates
        if row.status != "running" and (cutoff is None or row.started < cutoff)
    ]  # fmt: skip


def prune(
    connection: sa.Connection,
    keep_last: int | None,
    cutoff: str | None,
    operator: str,
    argv: Sequence[str],
    signing_key: Path | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete the runs :func:`select_runs` picks with their results, and tickets resolved before
    ``cutoff`` with their events and deliveries; fold the ledger's fully pruned prefix into a new
    checkpoint entry (signed with ``signing_key`` when given). Runs in the caller's transaction."""
    report = PruneReport(dry_run=dry_run)
    report.runs = select_runs(connection, keep_last, cutoff)
    ticket_ids: list[int] = []
    if cutoff is not None:
        ticket_ids = list(connection.execute(
            sa.select(tickets.c.id).where(tickets.c.status == "resolved", tickets.c.resolved < cutoff)
        ).scalars())  # fmt: skip
    event_ids = _ids(connection, ticket_events.c.id, ticket_events.c.ticket_id, ticket_ids)
    delivery_ids = _ids(connection, outbox.c.id, outbox.c.ticket_id, ticket_ids)
    report.tickets, report.events, report.deliveries = len(ticket_ids), len(event_ids), len(delivery_ids)
    report.results = sum(
        int(connection.execute(
            sa.select(sa.func.count()).select_from(results).where(results.c.run_id.in_(part))
        ).scalar() or 0)
        for part in _parts(report.runs)
    )  # fmt: skip
    if dry_run or not (report.runs or ticket_ids):
        return report
    for part in _parts(report.runs):
        connection.execute(results.delete().where(results.c.run_id.in_(part)))
        connection.execute(runs.delete().where(runs.c.id.in_(part)))
    for part in _parts(ticket_ids):
        connection.execute(outbox.delete().where(outbox.c.ticket_id.in_(part)))
        connection.execute(ticket_events.delete().where(ticket_events.c.ticket_id.in_(part)))
        connection.execute(tickets.delete().where(tickets.c.id.in_(part)))
    ledger_writer.append_deleted(connection, "ticket-state", ticket_ids)

    earlier = connection.execute(sa.select(checkpoints).order_by(checkpoints.c.id)).mappings().all()
    pruned_runs = {*(run_id for row in earlier for run_id in row["runs"]), *report.runs}
    pruned_events = {*(int(item) for row in earlier for item in row["events"]), *event_ids}
    pruned_deliveries = {*(int(item) for row in earlier for item in row["deliveries"]), *delivery_ids}
    base_seq, base_hash = max(((int(row["base_seq"]), str(row["base_hash"])) for row in earlier),
                              default=(0, GENESIS))  # fmt: skip
    folded_checkpoints: list[int] = []
    latest = _latest_entries(connection)
    # The oldest entries whose rows are all gone leave the chain; the checkpoint keeps where it resumes.
    for entry in connection.execute(
        sa.select(ledger.c.seq, ledger.c.kind, ledger.c.ref, ledger.c.run_id, ledger.c.digest, ledger.c.hash)
        .order_by(ledger.c.seq)
    ):  # fmt: skip
        if entry.kind in STATE_KINDS:
            # A ticket or alert-state row is verified against its last entry only: an earlier one, or a
            # last one that records the deletion, vouches for nothing that is still there.
            gone = latest[(entry.kind, entry.ref)] != entry.seq or entry.digest == DELETED
        elif entry.kind in ("run", "result"):
            gone = entry.run_id in pruned_runs
        elif entry.kind == "ticket":
            gone = int(entry.ref) in pruned_events
        elif entry.kind == "delivery":
            gone = int(entry.ref) in pruned_deliveries
        else:  # an earlier checkpoint: this one carries everything it named
            gone = True
            folded_checkpoints.append(int(entry.ref))
        if not gone:
            break
        base_seq, base_hash = int(entry.seq), str(entry.hash)
        report.entries_dropped += 1
    if report.entries_dropped:
        connection.execute(ledger.delete().where(ledger.c.seq <= base_seq))
        connection.execute(signatures.delete().where(signatures.c.seq <= base_seq))
        connection.execute(checkpoints.delete().where(checkpoints.c.id.in_(folded_checkpoints)))
    inserted = connection.execute(checkpoints.insert().values(
        at=ledger_writer.now_text(), operator=operator, controller=socket.gethostname(), argv=list(argv),
        rule={"keep_last": keep_last, "older_than": cutoff},
        runs=sorted(pruned_runs), events=sorted(pruned_events), deliveries=sorted(pruned_deliveries),
        counts={"runs": len(report.runs), "results": report.results, "tickets": report.tickets,
                "ticket_events": report.events, "deliveries": report.deliveries,
                "ledger_entries_dropped": report.entries_dropped},
        base_seq=base_seq, base_hash=base_hash,
    )).inserted_primary_key  # fmt: skip
    assert inserted is not None
    report.checkpoint, report.base_seq = int(inserted[0]), base_seq
    ledger_writer.append(connection, "prune", [report.checkpoint])
    if signing_key is not None:
        try:
            ledger_writer.seal(connection, None, signing_key)
            report.signed = True
        except MaintError as error:
            report.warnings.append(f"prune checkpoint {report.checkpoint} not signed: {error}")
    return report


def _latest_entries(connection: sa.Connection) -> dict[tuple[str, str], int]:
    """The last entry of each ticket and alert-state row, by (kind, ref)."""
    query = (
        sa.select(ledger.c.kind, ledger.c.ref, sa.func.max(ledger.c.seq))
        .where(ledger.c.kind.in_(STATE_KINDS))
        .group_by(ledger.c.kind, ledger.c.ref)
    )
    return {(kind, ref): int(seq) for kind, ref, seq in connection.execute(query)}


def _ids(connection: sa.Connection, column: sa.Column[Any], parent: sa.Column[Any], parents: list[int]) -> list[int]:
    found: list[int] = []
    for part in _parts(parents):
        found.extend(int(value) for value in connection.execute(sa.select(column).where(parent.in_(part))).scalars())
    return found


def _parts(items: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    # Bounded IN lists: SQLite limits the number of bound parameters of a statement.
    return [items[start : start + size] for start in range(0, len(items), size)]
