"""The run's record: the run opened (or refused) in the store, its results written as they arrive and
counted, the steps that never ran marked skipped, the run's end, and the ledger's seal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from maint import __version__
from maint.clock import Clock, timestamp
from maint.config import Config
from maint.errors import ExitCode, MaintError, StoreUnavailable
from maint.processes import process_alive
from maint.provenance import ci_metadata, operator_name
from maint.run.ansible import fleet_records
from maint.run.controls import WindowGuard
from maint.run.fleet import Arrival
from maint.run.host import Remediations
from maint.run.plan import PlannedStep, RunPlan
from maint.run.request import INTERRUPTED, NotStarted, RunInterrupted
from maint.run.results import Results, final_status
from maint.secrets import redact_argv, redact_vars
from maint.store import ResultRecord, RunDocument, RunRecord, SkipKind, Store, final_counts, spool
from maint.store.classify import step_id
from maint.store.rows import run_dict


class RunObserver(Protocol):
    """Receives progress: the CLI renders it, tests may record it."""

    def run_started(self, run: RunRecord, hosts: int, steps: int) -> None:
        """The run is recorded and about to start."""

    def result(self, record: ResultRecord) -> None:
        """A result was recorded."""

    def host_finished(self, host: str) -> None:
        """Every step of ``host`` has a result."""

    # Optional: ``waiting(message)``, told once when ``--wait`` queues behind a run on the same hosts.


class Recorder:
    """Writes one run to ``store``: :meth:`begin`, then :meth:`write` per arrival, then one of
    :meth:`finish`, :meth:`interrupted` or :meth:`spooled`."""

    def __init__(
        self, plan: RunPlan, store: Store, config: Config, results: Results, observer: RunObserver | None,
        clock: Clock,
    ) -> None:  # fmt: skip
        self.plan = plan
        self.store = store
        self.config = config
        self.results = results
        self.observer = observer
        self.clock = clock
        self.record: RunRecord | None = None
        self.counts: Counter[str] = Counter()
        self._last: dict[tuple[str, str, str], str] = {}
        self._unwritten: list[ResultRecord] = []

    @property
    def run_id(self) -> str:
        return self.plan.run_id

    def begin(
        self, started: dt.datetime, window: WindowGuard, on_failure: Callable[[], None], remediations: Remediations,
        announce: Callable[[str], None],
    ) -> None:  # fmt: skip
        """Record the run as started (or a resumed run as running again) and hand the store its spool;
        load the remediation limits; then ``announce(run_id)`` and tell the observer. When its ``window`` is
        closed the run is recorded as not-started and NotStarted raised. A store that cannot be written
        raises StoreUnavailable: no step ran."""
        request = self.plan.request
        store = self.store
        try:
            store.reap_stale_runs(socket.gethostname(), process_alive, timestamp(self.clock()))
            refusal = window.open()
            record = self.record = self._run_record(started)
            if request.resume:
                store.reopen_run(self.run_id, {"at": record.started, "operator": record.operator,
                                               "argv": list(record.argv), "pid": os.getpid(),
                                               "reason": request.reason, "ci": record.ci,
                                               "allow_changed": request.allow_changed})  # fmt: skip
            else:
                store.create_run(record)
            # From here a store that cannot be written stops the run, and its results go to a spool.
            store.spool = spool.RunSpool(store.url, self.run_id, request.project_dir, on_failure=on_failure)
            if refusal:
                store.finish_run(self.run_id, "not-started", int(ExitCode.NOT_STARTED), record.started, {})
                self.seal()
                refused = NotStarted(f"run {self.run_id} not started: {refusal}",
                                     hint="use --ignore-window to force it; that is recorded in the run")  # fmt: skip
                refused.run = store.get_run(self.run_id).as_dict()
                raise refused
            keys = remediations.keys(self.plan.work)
            if keys:
                remediations.alerts = store.load_alerts(keys)
        except StoreUnavailable as error:
            verb = "resumed" if request.resume else "started"
            raise StoreUnavailable(error.store, error.cause, message=(
                f"store {error.store} could not be written ({error.cause}): run {self.run_id} not {verb}, "
                "no step ran")) from None  # fmt: skip
        announce(self.run_id)
        if self.observer:
            self.observer.run_started(record, len(self.plan.work), self.plan.total_steps)

    def write(self, arrival: Arrival) -> None:
        """Write what arrived in one transaction, count it and tell the observer."""
        self._unwritten = arrival.results
        self.store.add_results(arrival.results)
        self._unwritten = []
        for result in arrival.results:
            pair = (result.host, result.playbook, result.step)
            if result.attempt > 1 and pair in self._last:
                # A check run again after its remediation: the later attempt is its result.
                self.counts[self._last[pair]] -= 1
            self._last[pair] = result.status
            self.counts[result.status] += 1
            if self.observer:
                self.observer.result(result)
        for host in arrival.done:
            if self.observer:
                self.observer.host_finished(host)

    def interrupted(self, in_flight: Sequence[ResultRecord]) -> RunInterrupted:
        """After SIGINT/SIGTERM: record what finished (``in_flight``: what arrived since), every planned step
        without a result as skipped ("interrupted: ..."), and the run's end; returns the error to raise."""
        self.store.add_results([*self._unwritten, *in_flight])
        self._unwritten = []
        done: dict[str, set[str]] = {}
        for result in self.store.get_run(self.run_id).results:
            if result["attempt"] > self.plan.request.attempt_offset:
                done.setdefault(result["host"], set()).add(step_id(result["step"], result["task"]))
        self._skip_unfinished(lambda host, planned: planned.step.id in done.get(host, set()), INTERRUPTED)
        counts = Counter(final_counts(self.store.get_run(self.run_id).results))
        self.store.finish_run(self.run_id, "interrupted", int(ExitCode.INTERRUPTED), timestamp(self.clock()), counts)
        self.seal()
        stopped = RunInterrupted(
            f"run {self.run_id} interrupted after {sum(counts.values())} of {self.plan.total_steps} results; "
            "what finished is recorded"
        )
        stopped.run = self.store.get_run(self.run_id).as_dict()
        return stopped

    def spooled(self) -> None:
        """The store could not be written: spool the steps that did not run as skipped (resume runs them)
        and the run's end, then raise the spool's StoreUnavailable (exit 8)."""
        assert self.store.spool is not None
        seen = self.store.spool.seen
        self._skip_unfinished(lambda host, planned: (host, planned.playbook.name, planned.step.id) in seen,
                              spool.INTERRUPTED)  # fmt: skip
        self.store.finish_run(self.run_id, "interrupted", int(ExitCode.STORE_UNAVAILABLE), timestamp(self.clock()), {})

    def finish(self, aborted: str, ended: dt.datetime) -> RunDocument:
        """Record the run's end (``aborted``: why batches were skipped) and return its document."""
        counts = +self.counts  # a check superseded by its second attempt leaves a zero count
        if self.plan.request.resume:
            counts = Counter(final_counts(self.store.get_run(self.run_id).results))
        status, exit_code = ("aborted", ExitCode.ABORTED) if aborted else final_status(counts)
        self.store.finish_run(self.run_id, status, int(exit_code), timestamp(ended), counts)
        return self.store.get_run(self.run_id)

    def seal(self) -> list[str]:
        """Sign the ledger's head for this run when maint.yml names a signing key; a failure is a warning
        (the run is recorded either way; ``maint audit verify --signers`` reports the missing signature)."""
        key = self.config.signing_key
        if key is None:
            return []
        try:
            self.store.seal(self.run_id, key)
        except MaintError as error:
            return [f"run {self.run_id} not signed: {error}"]
        return []

    def ledger_seal(self) -> dict[str, Any] | None:
        """The ledger's seal of this run (its head entry), for the run document."""
        return self.store.run_seal(self.run_id)

    def _skip_unfinished(self, finished: Callable[[str, PlannedStep], bool], reason: str) -> None:
        """Record every planned step that is not ``finished(host, step)`` as skipped with ``reason``, unseen
        by the observer (the progress display has reported every host already)."""
        unfinished = {
            host: left for host, planned in self.plan.work.items()
            if (left := [step for step in planned if not finished(host, step)])
        }  # fmt: skip
        if unfinished:
            self.store.add_results(self.results.skipped(unfinished, reason, SkipKind.INTERRUPTED))

    def _run_record(self, started: dt.datetime) -> RunRecord:
        return run_record(self.plan, started)


def unrecorded_document(plan: RunPlan, started: dt.datetime, status: str, exit_code: ExitCode) -> dict[str, Any]:
    """The document of ``plan``'s run that was never recorded (its hosts were busy): the fields a recorded run's
    document has (:func:`maint.store.rows.run_dict`), with ``status`` and ``exit_code``, no results."""
    fields = {**dataclasses.asdict(run_record(plan, started)), "status": status, "exit_code": int(exit_code),
              "finished": None, "counts": {}}  # fmt: skip
    return RunDocument(run=run_dict(fields)).as_dict()


def run_record(plan: RunPlan, started: dt.datetime) -> RunRecord:
    """The facts of ``plan``'s run as it starts at ``started`` (who, what, where, why), secrets redacted."""
    request = plan.request
    return RunRecord(
        id=plan.run_id,
        started=timestamp(started),
        operator=operator_name(),
        controller=socket.gethostname(),
        argv=redact_argv(request.argv),
        reason=request.reason,
        playbooks=[
            {"name": p.name, "path": str(p.path), "digest": p.digest, "builtin": p.builtin,
             **({"exec": dict(p.adhoc)} if p.adhoc is not None else {})}
            for p in plan.playbooks
        ],
        inventory={"sources": [str(source) for source in request.inventory], "digest": plan.inventory_digest},
        maint_version=__version__,
        ci=ci_metadata(os.environ),
        options={
            "limit": request.limit,
            "forks": request.forks,
            "extra_vars": redact_vars(request.extra_vars),
            "connect_timeout": request.connect_timeout,
            "step_timeout": request.step_timeout,
            "check_mode": request.check_mode,
            "serial": list(plan.serial),
            "max_fail_percentage": plan.max_fail,
            "pid": os.getpid(),
            **({"window": request.window, "ignore_window": request.ignore_window} if request.window else {}),
            **({"rerun_of": request.rerun_of} if request.rerun_of else {}),
            **({"refs": list(request.refs)} if request.refs else {}),
            **({"tags": list(request.tags)} if request.tags else {}),
            **({"skip_tags": list(request.skip_tags)} if request.skip_tags else {}),
            **({"become": request.become.recorded()} if request.become.recorded() else {}),
            **({"allow_changed": True} if request.allow_changed else {}),
            # ansible-runner's record of each Ansible step (events, stdout, status; files 0600)
            **fleet_records(plan),
        },
        hosts=list(plan.work),
    )
