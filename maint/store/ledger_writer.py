"""The ledger's writer: every write of a covered row appends its entry in the same transaction, and a
run's end (or a prune) can be sealed with an SSH signature. :mod:`maint.store.ledger` describes the chain.

It imports only the store's schema (where the ledger's format is defined), not the verifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from maint import clock, signing
from maint.store.schema import (
    CHUNK,
    DELETED,
    FIRST_KINDS,
    GENESIS,
    REF_LENGTH,
    SCHEMA_LOCK,
    STATE_KINDS,
    TABLES,
    coverage,
    entry_hash,
    head,
    ledger,
    ledger_head,
    outbox,
    row_digest,
    signatures,
)

now_text = clock.now_text  # the current time as stored (maint.clock)


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


# -- seals ------------------------------------------------------------------------------------------


def seal(connection: sa.Connection, run_id: str | None, key: Path) -> tuple[int, str]:
    """Sign the chain's current head for ``run_id`` (None: a prune checkpoint) and store the signature;
    returns the signed entry's number and hash. Raises BadInput when signing fails."""
    seq, hash_ = head(connection)
    signature, fingerprint = signing.sign(key, signing.signed_message(seq, hash_, run_id))
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

