"""The ledger's verifier: recompute the chain, compare every entry with the row it covers, check the
seals, and export the entries with their records. :mod:`maint.store.ledger` describes the chain.

It imports only the store's schema (where the ledger's format is defined), not the writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from maint import signing
from maint.errors import BadInput
from maint.store.schema import (
    ADDED_COLUMNS,
    CHANGING,
    CHUNK,
    DELETED,
    GENESIS,
    TABLES,
    checkpoints,
    coverage,
    covered_form,
    entry_hash,
    head,
    ledger,
    outbox,
    runs,
    signatures,
)


@dataclass(frozen=True)
class Problem:
    """One place where the record and the ledger disagree; ``seq`` is the entry (None: no entry)."""

    seq: int | None
    message: str
    primary: bool = False  # explains the problems after it (a truncated ledger): reported first

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready data."""
        return {"entry": self.seq, "message": self.message}


@dataclass
class Verification:
    """What :func:`verify` found: entries checked, the head, signatures verified and every problem."""

    entries: int = 0
    first_seq: int = 1
    head_seq: int = 0
    head_hash: str = GENESIS
    signatures: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def first(self) -> Problem | None:
        """The problem at the lowest entry number (problems without an entry come last)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda problem: (not problem.primary, problem.seq is None, problem.seq or 0))

    def as_dict(self) -> dict[str, Any]:
        """The verification as JSON-ready data (problems ordered by entry)."""
        ordered = sorted(self.problems, key=lambda problem: (problem.seq is None, problem.seq or 0))
        return {
            "intact": self.intact, "entries": self.entries, "first_entry": self.first_seq,
            "head": {"entry": self.head_seq, "hash": self.head_hash}, "signatures_verified": self.signatures,
            "problems": [problem.as_dict() for problem in ordered],
        }  # fmt: skip


def describe(kind: str, row: Mapping[str, Any] | sa.RowMapping | None, ref: str, run_id: str | None) -> str:
    """Words naming the row an entry covers, e.g. ``result 41 (run 20261124-..., web-03 root-disk)`` or
    ``ticket #3 (lab2/virus-scan)``."""
    if kind == "run":
        return f"run {ref}"
    if kind == "result":
        where = f", {row['host']} {row['step']}" if row is not None else ""
        return f"result {ref} (run {run_id}{where})"
    if kind == "ticket":
        what = f", {row['action']} of ticket {row['ticket_id']}" if row is not None else ""
        return f"ticket event {ref}{what}"
    if kind == "delivery":
        what = f" to {row['backend']} of ticket {row['ticket_id']}" if row is not None else ""
        return f"delivery {ref}{what}"
    if kind == "ticket-state":
        return f"ticket #{ref} ({row['key']})" if row is not None else f"ticket #{ref}"
    if kind == "alert-state":
        return f"the alert state of {ref}"
    return f"prune checkpoint {ref}"


def verify(
    connection: sa.Connection, signers: Path | None = None, anchor: tuple[int, str] | None = None
) -> Verification:
    """Recompute the chain and compare every entry with its row.

    ``signers`` (an ssh-keygen allowed_signers file) also verifies every stored signature and requires
    one for every finished run; ``anchor`` (entry number, hash) kept elsewhere proves that entry is
    still in the chain. Raises BadInput when ``signers`` cannot be read.
    """
    report = Verification()
    checkpoint_rows = connection.execute(sa.select(checkpoints).order_by(checkpoints.c.id)).mappings().all()
    pruned: dict[str, set[str]] = {"run": set(), "ticket": set(), "delivery": set()}
    base_seq, base_hash = 0, GENESIS
    for checkpoint in checkpoint_rows:
        pruned["run"].update(checkpoint["runs"])
        pruned["ticket"].update(str(item) for item in checkpoint["events"])
        pruned["delivery"].update(str(item) for item in checkpoint["deliveries"])
        if checkpoint["base_seq"] > base_seq:
            base_seq, base_hash = int(checkpoint["base_seq"]), str(checkpoint["base_hash"])
    report.first_seq = base_seq + 1
    expected_seq, expected_prev = base_seq + 1, base_hash
    last_of: dict[tuple[str, str], sa.RowMapping] = {}  # changing rows: the last entry counts
    for chunk in _chunks(connection):
        rows = _rows_of(connection, chunk)
        for entry in chunk:
            seq, kind, ref = int(entry["seq"]), str(entry["kind"]), str(entry["ref"])
            report.entries += 1
            if seq != expected_seq:
                if seq > expected_seq:
                    single = seq == expected_seq + 1
                    missing = f"entry {expected_seq}" if single else f"entries {expected_seq}-{seq - 1}"
                    report.problems.append(Problem(expected_seq, f"{missing} deleted from the ledger"))
                else:
                    report.problems.append(Problem(seq, f"entry {seq} is out of order"))
            row = rows.get((kind, ref))
            name = describe(kind, row, ref, entry["run_id"])
            recomputed = entry_hash(seq, entry["at"], kind, ref, entry["run_id"], entry["digest"], entry["prev"])
            if recomputed != entry["hash"]:
                report.problems.append(Problem(seq, f"entry {seq} ({name}) was altered: its hash does not match"))
            elif entry["prev"] != expected_prev and seq == expected_seq:
                report.problems.append(Problem(
                    seq, f"entry {seq} ({name}) does not follow entry {seq - 1}: an entry was inserted, "
                    "deleted or moved before it"))  # fmt: skip
            elif entry["prev"] != expected_prev:
                report.problems.append(Problem(seq, f"entry {seq} ({name}) does not follow the entry before it"))
            expected_seq, expected_prev = seq + 1, str(entry["hash"])
            report.head_seq, report.head_hash = seq, str(entry["hash"])
            if kind in CHANGING:
                last_of[(kind, ref)] = entry
                continue
            _compare(report, entry, row, name, pruned)
    # Runs, deliveries, tickets and alert state change after their first entry: each is compared with
    # its last entry, read in chunks.
    latest = list(last_of.values())
    for start in range(0, len(latest), CHUNK):
        part = latest[start : start + CHUNK]
        rows = _rows_of(connection, part)
        for entry in part:
            kind, ref = str(entry["kind"]), str(entry["ref"])
            row = rows.get((kind, ref))
            _compare(report, entry, row, describe(kind, row, ref, entry["run_id"]), pruned)
    _repeated(connection, report)
    _uncovered(connection, report)
    _coverage_restarted(connection, report)
    stored_seq, stored_hash = head(connection)
    if (stored_seq, stored_hash) != (report.head_seq, report.head_hash) and report.entries:
        if stored_seq > report.head_seq:
            message = (f"the ledger ends at entry {report.head_seq} but {stored_seq} entries were written: "
                       f"entries {report.head_seq + 1}-{stored_seq} were removed (truncated)")  # fmt: skip
            report.problems.append(Problem(report.head_seq + 1, message, primary=True))
        else:
            report.problems.append(Problem(None, f"the ledger's head (entry {stored_seq}) does not match its last "
                                                 f"entry {report.head_seq}"))  # fmt: skip
    if anchor is not None:
        _check_anchor(connection, report, anchor)
    if signers is not None:
        _check_signatures(connection, report, signers)
    return report


def _chunks(connection: sa.Connection) -> Iterator[list[sa.RowMapping]]:
    last = -1
    while True:
        chunk = connection.execute(
            sa.select(ledger).where(ledger.c.seq > last).order_by(ledger.c.seq).limit(CHUNK)
        ).mappings().all()
        if not chunk:
            return
        yield list(chunk)
        last = int(chunk[-1]["seq"])


def _rows_of(connection: sa.Connection, chunk: Iterable[sa.RowMapping]) -> dict[tuple[str, str], Any]:
    wanted: dict[str, set[str]] = {}
    for entry in chunk:
        wanted.setdefault(str(entry["kind"]), set()).add(str(entry["ref"]))
    found: dict[tuple[str, str], Any] = {}
    for kind, refs in wanted.items():
        if kind not in TABLES:
            continue
        table, key_column, _ = TABLES[kind]
        keys: list[Any] = sorted(refs) if _text_key(kind) else sorted(int(ref) for ref in refs if ref.isdigit())
        for row in connection.execute(sa.select(table).where(key_column.in_(keys))).mappings():
            found[(kind, str(row[key_column.name]))] = row
    return found


def _text_key(kind: str) -> bool:
    """Whether ``kind``'s rows are keyed by text (run ids, alert keys) rather than by an integer id."""
    return isinstance(TABLES[kind][1].type, sa.String)


def _is_pruned(kind: str, ref: str, run_id: str | None, pruned: Mapping[str, set[str]]) -> bool:
    if kind in ("run", "result"):
        return run_id in pruned["run"]
    return ref in pruned.get(kind, set())


def _compare(
    report: Verification, entry: sa.RowMapping, row: Any, name: str, pruned: Mapping[str, set[str]]
) -> None:
    """Record a problem when the row an entry covers is gone (and not pruned) or differs from its digest,
    or when the entry records the row's deletion and it is there."""
    seq, kind, ref = int(entry["seq"]), str(entry["kind"]), str(entry["ref"])
    if entry["digest"] == DELETED:
        if row is not None:
            report.problems.append(Problem(seq, f"entry {seq} records that {name} was deleted, but it is there: "
                                                "added again after the fact"))  # fmt: skip
    elif row is None:
        if not _is_pruned(kind, ref, entry["run_id"], pruned):
            report.problems.append(Problem(seq, f"entry {seq}: {name} was deleted"))
    elif covered_form(kind, row, entry["digest"]) is None:
        report.problems.append(Problem(seq, f"entry {seq}: {name} was changed after it was recorded"))


def _repeated(connection: sa.Connection, report: Verification) -> None:
    """Results and ticket events recorded by more than one entry (a copied entry); found in SQL so
    that memory stays flat however long the ledger is."""
    query = (
        sa.select(ledger.c.kind, ledger.c.ref, sa.func.max(ledger.c.seq))
        .where(ledger.c.kind.in_(["result", "ticket"]))
        .group_by(ledger.c.kind, ledger.c.ref)
        .having(sa.func.count() > 1)
        .limit(20)
    )
    for kind, ref, seq in connection.execute(query):
        report.problems.append(Problem(int(seq), f"entry {seq} records {kind} {ref} a second time"))


def _uncovered(connection: sa.Connection, report: Verification) -> None:
    """Rows that no entry covers: inserted behind maint's back, or their entries were removed."""
    for kind, (table, key_column, run_column) in TABLES.items():
        reference = key_column if _text_key(kind) else sa.cast(key_column, sa.String)
        query = (
            sa.select(table)
            .outerjoin(ledger, sa.and_(ledger.c.kind == kind, ledger.c.ref == reference))
            .where(ledger.c.seq.is_(None))
            .order_by(key_column)
            .limit(20)
        )
        if kind == "delivery":
            query = query.where(outbox.c.status == "sent")
        for row in connection.execute(query).mappings():
            ref = str(row[key_column.name])
            run_id = row[run_column.name] if run_column is not None else None
            report.problems.append(Problem(
                None, f"{describe(kind, row, ref, run_id)} is not in the ledger (added after the fact, or the "
                f"ledger was cut after entry {report.head_seq})"))  # fmt: skip


def _coverage_restarted(connection: sa.Connection, report: Verification) -> None:
    """Entries of a kind from before the ledger began to cover it: the record of its coverage was removed,
    so that opening the store adopted the rows again as they are now (which would pass an edited row)."""
    for kind, since in connection.execute(sa.select(coverage.c.kind, coverage.c.seq)):
        first = connection.execute(
            sa.select(sa.func.min(ledger.c.seq)).where(ledger.c.kind == kind, ledger.c.seq <= since)
        ).scalar()
        if first is not None:
            report.problems.append(Problem(int(first), f"entry {first} covers a {kind} row before the ledger began "
                                                       f"to cover them (after entry {since}): that coverage was "
                                                       "removed and the rows adopted again"))  # fmt: skip


def _check_anchor(connection: sa.Connection, report: Verification, anchor: tuple[int, str]) -> None:
    seq, expected = anchor
    stored = connection.execute(sa.select(ledger.c.hash).where(ledger.c.seq == seq)).scalar()
    if stored is None and seq < report.first_seq:
        return  # pruned since: the checkpoint's chain start vouches for it
    if stored is None:
        report.problems.append(Problem(seq, f"entry {seq} given with --head is not in the ledger (removed)"))
    elif stored != expected:
        report.problems.append(Problem(seq, f"entry {seq} has hash {stored[:16]}..., not the {expected[:16]}... "
                                            "given with --head"))  # fmt: skip


def _check_signatures(connection: sa.Connection, report: Verification, signers: Path) -> None:
    try:
        signers.read_bytes()
    except OSError as error:
        raise BadInput(
            f"cannot read {signers}: {error.strerror}", hint="give an ssh-keygen allowed_signers file"
        ) from None
    rows = connection.execute(sa.select(signatures).order_by(signatures.c.seq)).mappings().all()
    hashes = dict(connection.execute(
        sa.select(ledger.c.seq, ledger.c.hash).where(ledger.c.seq.in_([row["seq"] for row in rows]))
    ).all()) if rows else {}  # fmt: skip
    signed_up_to = 0  # a valid signature over entry N vouches for the whole chain up to N
    for row in rows:
        seq, what = int(row["seq"]), f"run {row['run_id']}" if row["run_id"] else "a prune checkpoint"
        if seq < report.first_seq:
            continue  # the entry was pruned; later signatures cover the chain that follows it
        if hashes.get(seq) != row["hash"]:
            report.problems.append(Problem(seq, f"the signature of {what} covers entry {seq} with another hash"))
            continue
        problem = signing.verify(signers, row["signature"], signing.signed_message(seq, row["hash"], row["run_id"]))
        if problem:
            report.problems.append(Problem(seq, f"the signature of {what} (entry {seq}) does not verify: {problem}"))
            continue
        report.signatures += 1
        signed_up_to = max(signed_up_to, seq)
    # Every finished run must lie within the signed chain: signed itself, or covered by a later
    # signature (runs from before signing was turned on are covered by the first one).
    last_entries = (
        sa.select(ledger.c.run_id, sa.func.max(ledger.c.seq).label("last"))
        .where(ledger.c.run_id.is_not(None))
        .group_by(ledger.c.run_id)
        .subquery()
    )
    finished = connection.execute(
        sa.select(runs.c.id, last_entries.c.last)
        .join(last_entries, last_entries.c.run_id == runs.c.id)
        .where(runs.c.status != "running", last_entries.c.last > signed_up_to)
        .order_by(last_entries.c.last)
    )
    for run_id, last in finished:
        where = f"the last valid signature covers entry {signed_up_to}" if signed_up_to else "no valid signature"
        report.problems.append(Problem(int(last), f"run {run_id} has no valid signature (its entries end at "
                                                  f"{last}; {where})"))  # fmt: skip


# -- export -----------------------------------------------------------------------------------------


def export(connection: sa.Connection, since: str | None = None, until: str | None = None) -> Iterator[dict[str, Any]]:
    """Every entry (in chain order) whose time is within [since, until], with the row it covers as
    ``record`` in the form its digest covers (:func:`covered_form`; None when the row was pruned or the
    entry records its deletion). Times compare as stored
    text (ISO 8601 UTC)."""
    last = -1
    while True:
        query = sa.select(ledger).where(ledger.c.seq > last).order_by(ledger.c.seq).limit(CHUNK)
        if since:
            query = query.where(ledger.c.at >= since)
        if until:
            query = query.where(ledger.c.at <= until)
        chunk = connection.execute(query).mappings().all()
        if not chunk:
            return
        rows = _rows_of(connection, chunk)
        for entry in chunk:
            # A deletion's record is none, also when a row with that key was written again later.
            row = None if entry["digest"] == DELETED else rows.get((str(entry["kind"]), str(entry["ref"])))
            if row is not None and entry["kind"] in ADDED_COLUMNS:
                row = covered_form(str(entry["kind"]), row, str(entry["digest"])) or row
            yield {
                "entry": entry["seq"], "at": entry["at"], "kind": entry["kind"], "ref": entry["ref"],
                "run_id": entry["run_id"], "digest": entry["digest"], "prev": entry["prev"], "hash": entry["hash"],
                "record": dict(row) if row is not None else None,
            }  # fmt: skip
        last = int(chunk[-1]["seq"])
