"""The ledger: a SHA-256 hash chain over every run, result, ticket and alert state in the store.

Each write of a run row (start, end, resume), each result, each ticket event, each delivery to a
ticketing system, each write of a ticket row and of an alert-state row appends an entry in the same
transaction as the row itself::

    digest = SHA-256(canonical JSON of the row as stored)
    hash   = SHA-256("seq|at|kind|ref|run_id|digest|prev")      prev = the previous entry's hash

so the record and its proof are written together or not at all. Rows that maint changes after
their first write (runs, deliveries, tickets, alert state) are compared with their last entry; a
ticket or alert-state row that maint deletes (a check healthy again, a prune) gets an entry whose
digest is :data:`DELETED`. :func:`verify` recomputes the chain and compares every entry with the
row it covers; it names the first entry that does not match (a row edited or deleted, an entry
altered, removed, inserted or moved) and every row the ledger does not cover. The chain's head at
the end of a run can be signed with an SSH key (``ssh-keygen -Y sign``), so a rewritten chain
cannot pass as the original.

A result recorded before schema revision maint_0002 added its ``skip_kind`` and ``task`` columns keeps
the digest of its row without them, and the two must hold what :func:`maint.store.classify.derive`
reads from the rest of the row (:func:`covered_form`); a result recorded since is digested whole.

Retention (:func:`prune`) deletes old runs and leaves a checkpoint entry that names what was
deleted; the oldest entries whose rows are all gone are dropped and the checkpoint keeps the hash
the remaining chain starts from.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from maint import clock
from maint.errors import BadInput
from maint.store.classify import derive
from maint.store.schema import REF_LENGTH as REF_LENGTH
from maint.store.schema import (
    SCHEMA_LOCK,
    alerts,
    outbox,
    results,
    runs,
    ticket_events,
    tickets,
)
from maint.store.schema import checkpoints as checkpoints
from maint.store.schema import coverage as coverage
from maint.store.schema import ledger as ledger
from maint.store.schema import ledger_head as ledger_head
from maint.store.schema import signatures as signatures

GENESIS = "0" * 64
# The digest of an entry that records the deletion of its row (no row's digest: every row's canonical
# JSON hashes to something else).
DELETED = "0" * 64
NAMESPACE = "maint-ledger"  # the ssh-keygen -Y namespace of maint's signatures
CHUNK = 2000

# kind -> (table, key column, run id column or None: the writer names the run)
TABLES: dict[str, tuple[sa.Table, sa.Column[Any], sa.Column[Any] | None]] = {
    "run": (runs, runs.c.id, runs.c.id),
    "result": (results, results.c.id, results.c.run_id),
    "ticket": (ticket_events, ticket_events.c.id, ticket_events.c.run_id),
    "delivery": (outbox, outbox.c.id, None),
    "prune": (checkpoints, checkpoints.c.id, None),
    "ticket-state": (tickets, tickets.c.id, None),
    "alert-state": (alerts, alerts.c.key, None),
}
FIRST_KINDS = ("run", "result", "ticket", "delivery")  # covered since the ledger's first version
# Current state rather than history: maint writes these rows again and deletes them (a deletion is an
# entry of its own); a store whose ledger predates their coverage adopts them when opened.
STATE_KINDS = ("ticket-state", "alert-state")
# Rows written again after their first entry: each is compared with its last entry.
CHANGING = frozenset({"run", "delivery", "ticket-state", "alert-state"})


now_text = clock.now_text  # the current time as stored (maint.clock)


def canonical(row: Mapping[str, Any] | sa.RowMapping) -> str:
    """A row as canonical JSON: sorted keys, no spaces, UTF-8 text, whole numbers written alike whether
    int or float (the input of its digest)."""
    return json.dumps(_numbers(dict(row)), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _numbers(value: Any) -> Any:
    # SQLite hands a REAL column's 0 back as int 0 from INSERT ... RETURNING but as 0.0 from a SELECT;
    # the digest must not depend on which read it saw.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers(item) for item in value]
    return value


def row_digest(row: Mapping[str, Any] | sa.RowMapping) -> str:
    """SHA-256 (hex) of a row's canonical JSON."""
    return hashlib.sha256(canonical(row).encode("utf-8")).hexdigest()


# Columns a schema revision added to a kind's rows after the ledger began to cover them, and how their
# values follow from the row's other columns. An entry written before the revision holds the digest of
# the row without them; the revision filled them in with exactly these values (maint_0002: a result's
# skip_kind and task, from its status, step, step type and summary).
ADDED_COLUMNS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], tuple[Any, ...]]]] = {
    "result": (("skip_kind", "task"), lambda row: derive(row["status"], row["step"], row["step_type"], row["summary"])),
}


def covered_form(kind: str, row: Mapping[str, Any], digest: str) -> Mapping[str, Any] | None:
    """The form of ``row`` (of ``kind``) that an entry's ``digest`` covers: the row as stored, or for a
    row recorded before a revision added columns to its table (:data:`ADDED_COLUMNS`), the row without
    them, provided they hold the values that follow from the rest (so they were not edited either).
    None when the row matches neither: it was changed after it was recorded."""
    if row_digest(row) == digest:
        return row
    if kind in ADDED_COLUMNS:
        columns, derived = ADDED_COLUMNS[kind]
        earlier = {name: value for name, value in row.items() if name not in columns}
        if row_digest(earlier) == digest and tuple(row[name] for name in columns) == derived(row):
            return earlier
    return None


def entry_hash(seq: int, at: str, kind: str, ref: str, run_id: str | None, digest: str, prev: str) -> str:
    """SHA-256 (hex) of one entry's fields and its predecessor's hash."""
    text = f"{seq}|{at}|{kind}|{ref}|{run_id or ''}|{digest}|{prev}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ensure_head(connection: sa.Connection) -> None:
    """Create the head row of a new ledger and bring an older store's ledger up to date: rows the
    ledger did not cover yet (all of them in a store written before the ledger existed, the ticket and
    alert-state rows in a store from before they were covered) are adopted, appended in key order,
    so that the chain covers them from now on."""
    _widen_refs(connection)
    created = False
    if connection.execute(sa.select(ledger_head.c.seq).where(ledger_head.c.id == 1)).first() is None:
        try:
            with connection.begin_nested():
                connection.execute(ledger_head.insert().values(id=1, seq=0, hash=GENESIS))
            created = True
        except sa.exc.IntegrityError:
            pass  # another process created it first (and adopts)
    if created:
        connection.execute(coverage.delete())  # what a removed ledger covered says nothing about this one
        for kind in FIRST_KINDS:
            _adopt(connection, kind)
    covered = set(connection.execute(sa.select(coverage.c.kind)).scalars())
    for kind in STATE_KINDS:
        if kind not in covered and _claim(connection, kind):
            _adopt(connection, kind)


def _claim(connection: sa.Connection, kind: str) -> bool:
    """Record that the ledger covers ``kind`` from its current head on, unless another process opening the
    store did so first; True when this one did (and adopts the rows, in the same transaction)."""
    if connection.dialect.name == "postgresql":
        # Serialise processes opening the store at once: the next one's insert sees this one's row.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
    # One statement reads and writes: SQLite takes its write lock for both (a read before it in the same
    # transaction would make a waiting writer fail with "database is locked").
    claimed = connection.execute(coverage.insert().from_select(
        ["kind", "seq", "at"],
        sa.select(sa.literal(kind), ledger_head.c.seq, sa.literal(now_text()))
        .where(ledger_head.c.id == 1, ~sa.exists().where(coverage.c.kind == kind)),
    ).returning(coverage.c.kind)).first()  # fmt: skip
    return claimed is not None


def _adopt(connection: sa.Connection, kind: str) -> None:
    _, key, _ = TABLES[kind]
    query = sa.select(key).order_by(key)
    if kind == "delivery":
        query = query.where(outbox.c.status == "sent")
    keys = list(connection.execute(query).scalars())
    for start in range(0, len(keys), CHUNK):
        append(connection, kind, keys[start : start + CHUNK])


def _widen_refs(connection: sa.Connection) -> None:
    """Widen ``ledger.ref`` of a PostgreSQL store created when it held at most 64 characters (an alert's
    key is longer); SQLite does not enforce the length."""
    if connection.dialect.name != "postgresql":
        return
    length = connection.execute(sa.text(
        "SELECT character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'ledger' AND column_name = 'ref'"
    )).scalar()  # fmt: skip
    if length is not None and int(length) < REF_LENGTH:
        connection.execute(sa.text(f"ALTER TABLE ledger ALTER COLUMN ref TYPE VARCHAR({REF_LENGTH})"))


def append(
    connection: sa.Connection, kind: str, keys: Sequence[Any], at: str | None = None,
    rows: Sequence[sa.RowMapping] | None = None, run_id: str | None = None,
) -> int:
    """Append one entry per row (``keys`` of ``kind``'s table, in that order) inside the caller's
    transaction, after the rows were written; returns the last entry's sequence number. ``rows`` are
    those rows as the database returned them (INSERT/UPDATE ... RETURNING), which saves reading them
    again. ``run_id`` is the run that wrote them, for the kinds whose rows do not name it."""
    table, key_column, run_column = TABLES[kind]
    if keys and rows is None:
        rows = connection.execute(sa.select(table).where(key_column.in_(list(keys)))).mappings().all()
    by_key = {row[key_column.name]: row for row in rows or ()}
    return _chain(connection, kind, [
        (key, by_key[key][run_column.name] if run_column is not None else run_id, row_digest(by_key[key]))
        for key in keys
    ], at)  # fmt: skip


def append_deleted(connection: sa.Connection, kind: str, keys: Sequence[Any], run_id: str | None = None) -> int:
    """Append one entry per row of ``kind`` (a ticket or alert-state row) that maint deleted, inside the
    caller's transaction: its digest is :data:`DELETED`, so the row's absence verifies and its return
    does not. Returns the last entry's sequence number."""
    return _chain(connection, kind, [(key, run_id, DELETED) for key in keys], None)


def _chain(connection: sa.Connection, kind: str, items: Sequence[tuple[Any, str | None, str]], at: str | None) -> int:
    """Append an entry for each (key, run id, digest) after the head, and move the head."""
    # Take the head's lock and read it in one statement (see ledger_head).
    head = connection.execute(
        ledger_head.update().where(ledger_head.c.id == 1).values(seq=ledger_head.c.seq)
        .returning(ledger_head.c.seq, ledger_head.c.hash)
    ).first()  # fmt: skip
    if head is None:  # a store created by a version without the ledger, opened without Store()
        ensure_head(connection)
        return _chain(connection, kind, items, at)
    if not items:
        return int(head.seq)
    at = at or now_text()
    seq, prev = int(head.seq), str(head.hash)
    entries = []
    for key, run_id, digest in items:
        seq += 1
        current = entry_hash(seq, at, kind, str(key), run_id, digest, prev)
        entries.append(
            {"seq": seq, "at": at, "kind": kind, "ref": str(key), "run_id": run_id, "digest": digest,
             "prev": prev, "hash": current}
        )  # fmt: skip
        prev = current
    connection.execute(ledger.insert(), entries)
    connection.execute(ledger_head.update().where(ledger_head.c.id == 1).values(seq=seq, hash=prev))
    return seq


def head(connection: sa.Connection) -> tuple[int, str]:
    """The last entry's sequence number and hash (0 and the genesis hash for an empty ledger)."""
    row = connection.execute(sa.select(ledger_head.c.seq, ledger_head.c.hash).where(ledger_head.c.id == 1)).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS)


# -- signing ----------------------------------------------------------------------------------------


def signed_message(seq: int, hash_: str, run_id: str | None) -> bytes:
    """The text a signature covers: the entry's number and hash, and the run it seals."""
    return f"maint ledger\nentry {seq}\nhash {hash_}\nrun {run_id or '-'}\n".encode()


def sign(key: Path, message: bytes, timeout: float = 30.0) -> tuple[str, str]:
    """Sign ``message`` with the SSH key ``key`` (a private key file, or a public key whose private
    half is in ssh-agent); returns the armoured signature and the key's fingerprint.

    Raises BadInput when ssh-keygen is missing or refuses (names the key and ssh-keygen's reason).
    """
    try:
        signed = subprocess.run(
            ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE],
            input=message, capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
        fingerprint = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BadInput("ssh-keygen not found", hint="install openssh-client to sign the ledger") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"signing with {key} took over {timeout:g} s", hint="is ssh-agent asking for a PIN?") from None
    if signed.returncode != 0 or b"BEGIN SSH SIGNATURE" not in signed.stdout:
        reason = _last_line(signed.stderr.decode("utf-8", "replace")) or f"exit {signed.returncode}"
        raise BadInput(f"cannot sign the ledger with {key}: {reason}", hint="check audit.signing_key in maint.yml")
    words = fingerprint.stdout.split()
    return signed.stdout.decode("ascii"), (words[1] if len(words) > 1 else "unknown")


def seal(connection: sa.Connection, run_id: str | None, key: Path) -> tuple[int, str]:
    """Sign the chain's current head for ``run_id`` (None: a prune checkpoint) and store the signature;
    returns the signed entry's number and hash. Raises BadInput when signing fails."""
    seq, hash_ = head(connection)
    signature, fingerprint = sign(key, signed_message(seq, hash_, run_id))
    connection.execute(
        signatures.insert().values(seq=seq, run_id=run_id, hash=hash_, signature=signature, key=fingerprint,
                                   at=now_text())
    )  # fmt: skip
    return seq, hash_


def run_seal(connection: sa.Connection, run_id: str) -> dict[str, Any] | None:
    """The ledger facts of a run for reports: ``{"seq", "hash", "signed", "signer"}`` of the entry that
    sealed it (the chain's head when the run ended), or None when the run has no such entry."""
    signature = connection.execute(
        sa.select(signatures).where(signatures.c.run_id == run_id).order_by(signatures.c.seq.desc()).limit(1)
    ).mappings().first()
    if signature is not None:
        return {"seq": signature["seq"], "hash": signature["hash"], "signed": True, "signer": signature["key"]}
    last = connection.execute(
        sa.select(ledger.c.seq, ledger.c.hash).where(ledger.c.run_id == run_id).order_by(ledger.c.seq.desc()).limit(1)
    ).first()
    if last is None:
        return None
    return {"seq": int(last.seq), "hash": str(last.hash), "signed": False, "signer": None}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- verification -----------------------------------------------------------------------------------


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
    ).tuples().all()) if rows else {}  # fmt: skip
    signed_up_to = 0  # a valid signature over entry N vouches for the whole chain up to N
    for row in rows:
        seq, what = int(row["seq"]), f"run {row['run_id']}" if row["run_id"] else "a prune checkpoint"
        if seq < report.first_seq:
            continue  # the entry was pruned; later signatures cover the chain that follows it
        if hashes.get(seq) != row["hash"]:
            report.problems.append(Problem(seq, f"the signature of {what} covers entry {seq} with another hash"))
            continue
        problem = _verify_signature(signers, row["signature"], signed_message(seq, row["hash"], row["run_id"]))
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


def _verify_signature(signers: Path, signature: str, message: bytes) -> str:
    """'' when ``signature`` over ``message`` verifies against ``signers``, else ssh-keygen's reason."""
    with tempfile.TemporaryDirectory(prefix="maint-verify-") as directory:
        signature_file = Path(directory) / "ledger.sig"
        signature_file.write_text(signature, encoding="ascii")
        found = subprocess.run(
            ["ssh-keygen", "-Y", "find-principals", "-s", str(signature_file), "-f", str(signers)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        principals = [line.strip() for line in found.stdout.splitlines() if line.strip()]
        if found.returncode != 0 or not principals:
            return "its key is not in the signers file"
        checked = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principals[0], "-n", NAMESPACE,
             "-s", str(signature_file)],
            input=message, capture_output=True, timeout=30, check=False, env={**os.environ, "LC_ALL": "C"},
        )  # fmt: skip
    if checked.returncode != 0:
        return _last_line(checked.stderr.decode("utf-8", "replace")) or "incorrect signature"
    return ""


# -- export -----------------------------------------------------------------------------------------


def export(connection: sa.Connection, since: str | None = None, until: str | None = None) -> Iterator[dict[str, Any]]:
    """Every entry (in chain order) whose time is within [since, until], with the row it covers as
    ``record`` in the form its digest covers (:func:`covered_form`; None when the row was pruned or the
    entry records its deletion). Times compare as stored text (ISO 8601 UTC)."""
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
