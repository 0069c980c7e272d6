"""The run store: runs and their per-(host, step) results, in SQLAlchemy Core.

SQLite is the default (``maint.db`` in the state directory: the project's ``.maint/`` beside its maint.yml,
else the user's state directory, see :mod:`maint.config.discovery`); any SQLAlchemy URL works
(``postgresql://...``). Results are appended as they arrive, so a crash leaves a complete record of
what ran.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maint.errors import BadInput, ExitCode, StoreUnavailable
from maint.processes import run_pid
from maint.secrets import mask_url_credentials
from maint.store import history, ledger_verifier, ledger_writer, retention, schema, tickets
from maint.store import ledger as ledger
from maint.store import migrations as migrations
from maint.store import spool as spool
from maint.store.classify import SkipKind as SkipKind
from maint.store.classify import derive
from maint.store.opening import (
    DAMAGED_HINT,
    check_maint_store,
    damaged,
    default_busy_timeout,
    engine_options,
    sqlite_pragmas,
)
from maint.store.opening import DEFAULT_BUSY_TIMEOUT as DEFAULT_BUSY_TIMEOUT
from maint.store.opening import DEFAULT_FILE as DEFAULT_FILE
from maint.store.opening import Location as Location
from maint.store.opening import StoreMissing as StoreMissing
from maint.store.opening import failure_cause as failure_cause
from maint.store.opening import locate as locate
from maint.store.opening import prepare_location as prepare_location
from maint.store.opening import resolve_url as resolve_url
from maint.store.records import ResultRecord as ResultRecord
from maint.store.records import RunDocument as RunDocument
from maint.store.records import RunRecord as RunRecord
from maint.store.records import final_counts as final_counts
from maint.store.records import last_attempts as last_attempts
from maint.store.rows import result_dict
from maint.store.rows import run_dict as run_dict
from maint.store.rows import shown_status as shown_status
from maint.store.schema import SCHEMA_LOCK as SCHEMA_LOCK
from maint.store.schema import metadata as metadata
from maint.store.schema import results as results
from maint.store.schema import runs as runs

if TYPE_CHECKING:
    from maint.alerts import AlertState
    from maint.stats import Stats

class Store:
    """Reads and writes runs and results. One instance per process; safe to use from one thread.

    Code outside :mod:`maint.store` reaches the database through the methods here; each decides its
    own transaction (:meth:`transaction`, :meth:`reading`) and hands the connection to the module of
    :mod:`maint.store` that does the work.

    Opening a store upgrades its schema to the newest revision (:mod:`maint.store.migrations`; a new
    store is created at it) unless ``upgrade`` is False (``maint db current`` only looks); a store of a
    newer maint is BadInput. With ``create`` False (commands that only read) a missing SQLite store is not
    created: :class:`StoreMissing` says where it was looked for. Every database error that means the store
    cannot be used right now (locked past the busy timeout, disk full, unable to open, connection lost) is
    raised as :class:`StoreUnavailable`. While a run's ``spool`` is set, results and the run's end that cannot
    be written go to it instead (:mod:`maint.store.spool`); opening a store records the spools left by earlier runs.
    """

    def __init__(
        self, url: str | None = None, busy_timeout: float | None = None, upgrade: bool = True, create: bool = True,
    ) -> None:  # fmt: skip
        self.location = locate(url)
        self.url = self.location.url
        self.safe_url = mask_url_credentials(self.url)  # the URL as every message shows it
        self.spool: spool.RunSpool | None = None
        self.unrecorded: dict[str, Path] = {}  # run id -> its spool file that could not be recorded yet
        path = prepare_location(self.url, create, self.location.origin)
        parsed = sa.engine.make_url(self.url)
        self.busy_timeout = default_busy_timeout() if busy_timeout is None else busy_timeout
        try:
            self.engine: Engine = sa.create_engine(self.url, **engine_options(parsed, self.busy_timeout))
        except (sa.exc.ArgumentError, ImportError) as error:
            raise BadInput(f"cannot use store URL {self.safe_url!r}: {error}") from None
        sa.event.listen(self.engine, "handle_error", self._unavailable)
        shown = str(path) if path is not None else self.safe_url
        self.upgraded: migrations.Upgrade | None = None  # what opening the store did to its schema
        try:
            # One query when the store is at the newest revision. Otherwise its tables are looked at
            # first, before the pragmas: WAL mode would change a file that is not maint's.
            revision = migrations.current(self.engine)
            if revision != migrations.HEAD:
                check_maint_store(self.engine, shown, revision)
            if self.engine.dialect.name == "sqlite":
                self.engine.dispose()  # the connection that checked has no pragmas
                sa.event.listen(self.engine, "connect", functools.partial(sqlite_pragmas, self.busy_timeout))
            if revision != migrations.HEAD and upgrade:
                self.upgraded = migrations.upgrade(self.engine, shown)
            if revision is not None or self.upgraded is not None:
                # The ledger's head, which every write moves: a damaged store is reported here, when it is
                # opened, rather than by whichever later statement first reads a damaged page.
                with self.engine.connect() as connection:
                    schema.head(connection)
        except sa.exc.OperationalError as error:
            raise BadInput(f"cannot open store {self.safe_url}: {error.orig}") from None
        except sa.exc.DatabaseError as error:
            if "not a database" in str(error.orig):  # SQLite's word for a file that is no database at all
                raise BadInput(
                    f"{shown} is not a maint store ({error.orig})",
                    hint="point --db, $MAINT_DB or maint.yml's store at a maint store or at a new file",
                ) from None
            raise BadInput(f"store {shown} is damaged: {error.orig}", hint=DAMAGED_HINT) from None
        # Spools of runs that could not write this store: recorded now if it can be written again (not
        # when the store is only looked at, maybe at an older revision).
        if upgrade:
            _, self.unrecorded = spool.import_spools(self)

    def _unavailable(self, context: sa.engine.ExceptionContext) -> None:
        """SQLAlchemy's error hook: a store that cannot be used now raises StoreUnavailable, one line; a damaged
        one (its pages unreadable, found by whichever statement reads them first) is BadInput."""
        if damaged(context.original_exception):
            shown = spool.sqlite_file(self.url) or self.safe_url
            raise BadInput(f"store {shown} is damaged: {context.original_exception}", hint=DAMAGED_HINT) from None
        cause = failure_cause(context.original_exception, context.is_disconnect, spool.sqlite_file(self.url))
        if cause:
            hint = None
            if "lock" in cause:
                hint = f"another process held it for more than store_busy_timeout, {self.busy_timeout:g}s"
            raise StoreUnavailable(self.safe_url, cause, hint=hint) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction: committed when the block ends, rolled back when it raises.

        Every statement waits for a locked store up to the busy timeout; a store that cannot be written
        (locked past it, disk full, connection lost) raises StoreUnavailable, from a statement or the
        commit, and nothing of the transaction is kept.
        """
        with self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A connection for reads, returned to the pool when the block ends (anything not committed is
        rolled back). Raises StoreUnavailable as :meth:`transaction` does."""
        with self.engine.connect() as connection:
            yield connection

    def schema_revision(self) -> str | None:
        """The store's schema revision: the one it records, else the first (maint 0.1.0's schema, which
        recorded none) when it has maint's tables; None for a new store without tables."""
        revision = migrations.current(self.engine)
        if revision is None and runs.name in sa.inspect(self.engine).get_table_names():
            return migrations.FIRST
        return revision

    def create_run(self, run: RunRecord) -> None:
        """Insert a new run (status ``running``) and its ledger entry."""
        with self.transaction() as connection:
            connection.execute(runs.insert().values(**asdict(run)))
            ledger_writer.append(connection, "run", [run.id])

    def add_results(self, records: Iterable[ResultRecord]) -> None:
        """Append results and their ledger entries in one transaction (to the spool while the run's
        spool is set and the store cannot be written)."""
        records = list(records)
        run_spool = self.spool
        if run_spool is not None:
            run_spool.note(records)
            if run_spool.active:
                run_spool.write_results(records)
                return
        # A shallow copy per record: dataclasses.asdict deep-copies every value (a tenth of the store's CPU).
        rows = [{**record.__dict__, "metrics": dict(record.metrics)} for record in records]
        if rows:
            try:
                with self.transaction() as connection:
                    _insert_results(connection, rows)
            except StoreUnavailable as error:
                if run_spool is None:
                    raise
                run_spool.start(error)
                run_spool.write_results(records)

    def finish_run(
        self, run_id: str, status: str, exit_code: int, finished: str, counts: Mapping[str, int]
    ) -> None:
        """Set a run's final status, exit code, end time and status counts.

        With the run's spool set and the store not writable, the end is spooled and the spool's
        StoreUnavailable (naming the spool file) is raised.
        """
        run_spool = self.spool
        if run_spool is not None and run_spool.active:
            run_spool.write_finish(status, exit_code, finished)
            raise run_spool.failure()
        try:
            self._finish_run(run_id, status, exit_code, finished, counts)
        except StoreUnavailable as error:
            if run_spool is None:
                raise
            run_spool.start(error)
            run_spool.write_finish(status, exit_code, finished)
            raise run_spool.failure() from None

    def import_spooled(
        self, run_id: str, spooled: Sequence[Mapping[str, Any]], finish: Mapping[str, Any] | None
    ) -> bool:
        """Record a spool's results (those the store does not have yet) and its run's end; False when
        the store has no such run. Raises StoreUnavailable while the store cannot be written."""
        with self.reading() as connection:
            if connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                return False
        columns = {column.name for column in results.c} - {"id"}
        with self.transaction() as connection:
            present = {
                tuple(row) for row in connection.execute(
                    sa.select(results.c.host, results.c.playbook, results.c.step, results.c.attempt)
                    .where(results.c.run_id == run_id)
                )
            }  # fmt: skip
            rows = []
            for line in spooled:
                row = {name: value for name, value in line.items() if name in columns}
                key = (row.get("host"), row.get("playbook"), row.get("step"), row.get("attempt"))
                if row.get("run_id") != run_id or key in present:
                    continue  # already recorded (by the run itself, or an import that did not finish)
                present.add(key)
                rows.append(row)
            if rows:
                _insert_results(connection, rows)
        if finish is not None:
            with self.reading() as connection:
                stored = connection.execute(
                    sa.select(results.c.host, results.c.playbook, results.c.step, results.c.attempt,
                              results.c.status).where(results.c.run_id == run_id)
                ).mappings().all()  # fmt: skip
            self._finish_run(run_id, str(finish["status"]), int(finish["exit_code"]), str(finish["finished"]),
                             final_counts(dict(row) for row in stored))  # fmt: skip
        return True

    def _finish_run(
        self, run_id: str, status: str, exit_code: int, finished: str, counts: Mapping[str, int]
    ) -> None:
        with self.transaction() as connection:
            connection.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status=status, exit_code=exit_code, finished=finished, counts=dict(counts))
            )
            ledger_writer.append(connection, "run", [run_id])

    def reopen_run(self, run_id: str, resumed: Mapping[str, Any]) -> None:
        """Set a run back to ``running`` for ``maint resume``, noting who resumed it when in its options."""
        with self.transaction() as connection:
            options = connection.execute(sa.select(runs.c.options).where(runs.c.id == run_id)).scalar() or {}
            history = [*options.get("resumed", []), dict(resumed)]
            connection.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="running", finished=None, exit_code=None, options={**options, "resumed": history})
            )
            ledger_writer.append(connection, "run", [run_id])

    def reap_stale_runs(self, controller: str, alive: Callable[[int], bool], finished: str) -> list[str]:
        """Mark ``running`` runs of this controller whose process is gone as ``interrupted``; returns their ids.

        A controller killed with SIGKILL cannot record its own end: the next maint command does. A run
        whose spool could not be recorded yet is left running: its end is in the spool.
        """
        with self.reading() as connection:
            rows = connection.execute(
                sa.select(runs.c.id, runs.c.controller, runs.c.options).where(runs.c.status == "running")
            ).all()
        stale = [
            row.id for row in rows
            if row.controller == controller and (pid := run_pid(row.options)) is not None and not alive(pid)
            and row.id not in self.unrecorded
        ]  # fmt: skip
        for run_id in stale:
            counts = final_counts(self.get_run(run_id).results)
            self._finish_run(run_id, "interrupted", int(ExitCode.INTERRUPTED), finished, counts)
        return stale

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the run whose id is or starts with ``prefix`` (``last``: the newest run); BadInput
        if none or several."""
        with self.reading() as connection:
            exact = connection.execute(sa.select(runs.c.id).where(runs.c.id == prefix)).scalar()
            if exact:
                return str(exact)
            if prefix == "last":  # run ids start with their date, so no id begins with "last"
                newest = connection.execute(
                    sa.select(runs.c.id).order_by(runs.c.started.desc(), runs.c.id.desc()).limit(1)
                ).scalar()
                if newest is None:
                    raise BadInput(f"no run recorded in {self.url} yet", hint="see 'maint runs list'")
                return str(newest)
            like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = connection.execute(
                sa.select(runs.c.id).where(runs.c.id.like(like, escape="\\")).limit(2)
            ).scalars().all()
        if not found:
            raise BadInput(f"no run with id '{prefix}' in {self.url}", hint="see 'maint runs list'")
        if len(found) > 1:
            raise BadInput(f"run id '{prefix}' is ambiguous", hint="give more characters")
        return str(found[0])

    def get_run(self, run_id: str) -> RunDocument:
        """The run and all its results, in the order they were recorded."""
        full_id = self.resolve_run_id(run_id)
        with self.reading() as connection:
            run_row = connection.execute(sa.select(runs).where(runs.c.id == full_id)).mappings().one()
            result_rows = connection.execute(
                sa.select(results).where(results.c.run_id == full_id).order_by(results.c.id)
            ).mappings().all()
            seal = ledger_writer.run_seal(connection, full_id)
        return RunDocument(run=run_dict(run_row), results=[result_dict(row) for row in result_rows], ledger=seal)

    def report_document(self, run_id: str, trend_runs: int) -> dict[str, Any]:
        """The run document of :meth:`get_run` plus ``tickets`` (each ticket action the run took) and
        ``trend`` (the latest ``trend_runs`` runs of the same playbooks up to this one, oldest first):
        :func:`maint.reports.gather.report_document`. Raises BadInput when no run or several match."""
        document = self.get_run(run_id).as_dict()
        with self.reading() as connection:
            document["tickets"] = history.touched_tickets(connection, document["id"])
            document["trend"] = history.trend(connection, document, trend_runs)
        return document

    def find_runs(self, wanted: history.RunFilter) -> list[dict[str, Any]]:
        """The runs matching ``wanted``, newest first, without their results (:func:`history.find_runs`)."""
        with self.reading() as connection:
            return history.find_runs(connection, wanted)

    def summarize(
        self, since: str, until: str, host: str | None = None, check: str | None = None, top: int = 10
    ) -> Stats:
        """``maint stats`` over the runs started within [since, until] (:func:`history.summarize`)."""
        with self.reading() as connection:
            return history.summarize(connection, since, until, host, check, top)

    def prune(
        self, keep_last: int | None, cutoff: str | None, operator: str, argv: Sequence[str],
        signing_key: Path | None = None, dry_run: bool = False,
    ) -> retention.PruneReport:
        """Delete old runs and long-resolved tickets in one transaction, leaving a ledger checkpoint
        (:func:`retention.prune`)."""
        with self.transaction() as connection:
            return retention.prune(connection, keep_last, cutoff, operator, argv, signing_key, dry_run)

    # -- the ledger ---------------------------------------------------------------------------------

    def seal(self, run_id: str | None, key: Path) -> tuple[int, str]:
        """Sign the ledger's head for ``run_id`` (None: a prune checkpoint) and store the signature;
        returns the signed entry's number and hash. Raises BadInput when signing fails."""
        with self.transaction() as connection:
            return ledger_writer.seal(connection, run_id, key)

    def run_seal(self, run_id: str) -> dict[str, Any] | None:
        """The ledger facts of a run: ``{"seq", "hash", "signed", "signer"}`` of the entry that sealed
        it, or None (:func:`ledger_writer.run_seal`)."""
        with self.reading() as connection:
            return ledger_writer.run_seal(connection, run_id)

    def verify_ledger(
        self, signers: Path | None = None, anchor: tuple[int, str] | None = None
    ) -> ledger_verifier.Verification:
        """Recompute the chain and compare every entry with its row (:func:`ledger_verifier.verify`).
        Raises BadInput when ``signers`` cannot be read."""
        with self.reading() as connection:
            return ledger_verifier.verify(connection, signers, anchor)

    @contextlib.contextmanager
    def ledger_entries(self, since: str | None = None, until: str | None = None) -> Iterator[Iterator[dict[str, Any]]]:
        """The ledger's entries within [since, until] with the records they cover, in chain order
        (:func:`ledger_verifier.export`), read while the block runs."""
        with self.reading() as connection:
            yield ledger_verifier.export(connection, since, until)

    # -- alert state and tickets --------------------------------------------------------------------

    def load_alerts(self, keys: Iterable[str]) -> dict[str, AlertState]:
        """The stored alert state of each of ``keys`` that has one."""
        with self.reading() as connection:
            return tickets.load_alerts(connection, keys)

    def record_reactions(
        self, keys: Sequence[str], plan: tickets.Plan, run_id: str
    ) -> list[tuple[tickets.Ticket, Sequence[tickets.Event]]]:
        """A run's reactions to its findings, in one transaction: ``plan`` gets the alert state and the
        latest ticket of ``keys`` and decides; its tickets, events, messages and alert state are recorded
        (:func:`tickets.record_reactions`). Returns each recorded ticket with its events."""
        with self.transaction() as connection:
            return tickets.record_reactions(connection, keys, plan, run_id)

    def change_ticket(
        self, ticket_id: int, change: Callable[[tickets.Ticket], tuple[tickets.Ticket, tickets.Event]],
        messages: tickets.Messages,
    ) -> tickets.Ticket | None:
        """An operator's action on a ticket, in one transaction: ``change`` gives the changed ticket and its
        event, recorded with their messages; None when there is no such ticket."""
        with self.transaction() as connection:
            return tickets.change_ticket(connection, ticket_id, change, messages)

    def get_ticket(self, ticket_id: int) -> tickets.Ticket | None:
        """The ticket with this id, or None."""
        with self.reading() as connection:
            return tickets.get_ticket(connection, ticket_id)

    def find_tickets(
        self, statuses: Sequence[str] = (), tiers: Sequence[str] = (), host: str | None = None,
        check: str | None = None, limit: int | None = None,
    ) -> list[tickets.Ticket]:
        """Tickets filtered by status, tier, host and check; newest first."""
        with self.reading() as connection:
            return tickets.find_tickets(connection, statuses, tiers, host, check, limit)

    def ticket_history(self, ticket_id: int) -> tickets.TicketHistory | None:
        """The ticket with this id with its history and its deliveries, or None."""
        with self.reading() as connection:
            return tickets.ticket_history(connection, ticket_id)

    # -- the outbox ---------------------------------------------------------------------------------

    def pending_deliveries(self, backends: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Outbox rows still to deliver (to ``backends`` only, when given), in the order they were queued."""
        with self.reading() as connection:
            return tickets.pending(connection, backends)

    def pending_count(self) -> int:
        """How many outbox rows wait for delivery."""
        with self.reading() as connection:
            return tickets.pending_count(connection)

    def mark_sent(self, row_id: int, ticket_id: int, backend: str, ref: str, now: str) -> None:
        """Record a delivery (and the backend's reference on the ticket) with their ledger entries."""
        with self.transaction() as connection:
            tickets.mark_sent(connection, row_id, ticket_id, backend, ref, now)

    def mark_failed(self, row_id: int, error: str, now: str) -> None:
        """Record a failed delivery attempt; the row stays pending."""
        with self.transaction() as connection:
            tickets.mark_failed(connection, row_id, error, now)

    def close(self) -> None:
        """Dispose of the connection pool (and close the run's spool file)."""
        if self.spool is not None:
            self.spool.close()
        self.engine.dispose()


def _insert_results(connection: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert result rows and append their ledger entries, in the caller's transaction. The skip_kind and
    task that a row leaves None are derived from its status, step and summary."""
    for row in rows:
        if row.get("skip_kind") is None or row.get("task") is None:
            kind, task = derive(row["status"], row["step"], row["step_type"], row["summary"])
            row["skip_kind"] = row.get("skip_kind") or kind
            row["task"] = row.get("task") or task
    # The rows as stored come back with their ids: the ledger digests them without a re-read.
    stored = connection.execute(
        results.insert().returning(*results.c, sort_by_parameter_order=True), rows
    ).mappings().all()
    ledger_writer.append(connection, "result", [row["id"] for row in stored], rows=stored)


