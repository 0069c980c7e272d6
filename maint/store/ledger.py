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

Retention (:func:`maint.store.retention.prune`) deletes old runs and leaves a checkpoint entry that
names what was deleted; the oldest entries whose rows are all gone are dropped and the checkpoint
keeps the hash the remaining chain starts from.

The writer (:mod:`maint.store.ledger_writer`: append, seal) and the verifier
(:mod:`maint.store.ledger_verifier`: verify, export) share only the format defined in
:mod:`maint.store.schema`; this module gathers their names in one place.
"""

from __future__ import annotations

from maint.signing import NAMESPACE as NAMESPACE
from maint.signing import sign as sign
from maint.signing import signed_message as signed_message
from maint.store.ledger_verifier import Problem as Problem
from maint.store.ledger_verifier import Verification as Verification
from maint.store.ledger_verifier import describe as describe
from maint.store.ledger_verifier import export as export
from maint.store.ledger_verifier import verify as verify
from maint.store.ledger_writer import append as append
from maint.store.ledger_writer import append_deleted as append_deleted
from maint.store.ledger_writer import ensure_head as ensure_head
from maint.store.ledger_writer import now_text as now_text
from maint.store.ledger_writer import run_seal as run_seal
from maint.store.ledger_writer import seal as seal
from maint.store.schema import ADDED_COLUMNS as ADDED_COLUMNS
from maint.store.schema import CHANGING as CHANGING
from maint.store.schema import CHUNK as CHUNK
from maint.store.schema import DELETED as DELETED
from maint.store.schema import FIRST_KINDS as FIRST_KINDS
from maint.store.schema import GENESIS as GENESIS
from maint.store.schema import REF_LENGTH as REF_LENGTH
from maint.store.schema import STATE_KINDS as STATE_KINDS
from maint.store.schema import TABLES as TABLES
from maint.store.schema import canonical as canonical
from maint.store.schema import checkpoints as checkpoints
from maint.store.schema import coverage as coverage
from maint.store.schema import covered_form as covered_form
from maint.store.schema import entry_hash as entry_hash
from maint.store.schema import head as head
from maint.store.schema import ledger as ledger
from maint.store.schema import ledger_head as ledger_head
from maint.store.schema import row_digest as row_digest
from maint.store.schema import signatures as signatures
