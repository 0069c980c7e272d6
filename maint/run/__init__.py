"""Plan, execute and record a maintenance run.

One worker thread per fork takes the next host, opens one connection, runs that host's steps over
it in order and hands each result to the main thread, which writes it to the store at once (in
small batches when results arrive together) and tells the observer. One host's failure is that
host's result: nothing a host does raises across the fleet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import queue
import secrets
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from maint import __version__, registry
from maint import config as config_module
from maint import playbooks as playbook_module
from maint.alerts import AlertState, dedup_key
from maint.batches import batches, crossed
from maint.checks import Outcome, ParamError, Status
from maint.clock import Clock as Clock
from maint.clock import timestamp as timestamp
from maint.clock import utc_now as utc_now
from maint.errors import BadInput, ExitCode, MaintError, StoreUnavailable
from maint.executors import CommandResult, Connection, Executor, HostHung, Unreachable, Unsupported
from maint.files import private_directory
from maint.inventory import Host
from maint.inventory.cache import open_inventory
from maint.locks import acquire, lock_directory, release
from maint.playbooks import DEFAULT_STEP_TIMEOUT, Playbook, Step
from maint.processes import process_alive as process_alive
from maint.provenance import ci_metadata as ci_metadata
from maint.provenance import in_ci as in_ci
from maint.provenance import operator_name as operator_name
from maint.secrets import mask, redact_argv, redact_vars, secret_variable_values
from maint.store import (
    ResultRecord,
    RunDocument,
    RunRecord,
    Store,
    final_counts,
    ledger,
    prepare_location,
    resolve_url,
    spool,
)
from maint.templating import RenderError
from maint.tickets import REMEDIATION_SUFFIX
from maint.tickets.policy import Policy

# Results arriving within this many seconds of the first one are written in one transaction.
BATCH_SECONDS = 0.05
BATCH_SIZE = 500
# The summary of a step the run was stopped in (or before): maint resume runs it again.
INTERRUPTED = "interrupted: the run was stopped before this step finished"
# How long an interrupted run waits for its hosts to end the steps in flight (SIGTERM, then SIGKILL).
STOP_GRACE = 6.0


class RunInterrupted(MaintError):
    """The run was stopped by SIGINT or SIGTERM; what finished is recorded, the run is resumable."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class RunRequest:
    """Everything ``maint run`` was asked to do."""

    playbooks: Sequence[str]
    inventory: Sequence[str]
    limit: str | None = None
    forks: int = 50
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    argv: Sequence[str] = ()
    connect_timeout: float = 10.0
    step_timeout: float | None = None
    db_url: str | None = None
    project_dir: Path = field(default_factory=Path.cwd)
    inventory_cache: bool = True
    check_mode: bool = False
    tickets: bool = True
    serial: tuple[str, ...] | None = None  # batch sizes (maint.batches); None: the playbooks' own
    max_fail_percentage: float | None = None
    # maint resume / rerun: the run continued (or rerun), the (host, playbook, step) pairs still to
    # run, and each playbook's digest in that run (a changed playbook is refused unless allowed).
    resume: str | None = None
    rerun_of: str | None = None
    only_pairs: frozenset[tuple[str, str, str]] | None = None
    done_pairs: frozenset[tuple[str, str, str]] = frozenset()
    digests: Mapping[str, str] = field(default_factory=dict)
    allow_changed: bool = False
    attempt_offset: int = 0
    wait: bool = False  # queue behind a run that works on the same hosts instead of refusing
    window: str | None = None  # the maintenance window (maint.yml) the run must keep to
    ignore_window: bool = False  # run although the window is closed (recorded)
    refs: Sequence[str] = ()  # change or ticket references the run is done under (CHG-1234)


class ReasonRequired(MaintError):
    """maint.yml's ``audit.require_reason`` and a manual run without ``--reason``."""

    exit_code = ExitCode.USAGE


class NotStarted(MaintError):
    """The run did not start: its maintenance window is closed (recorded as not-started)."""

    exit_code = ExitCode.NOT_STARTED


@dataclass(frozen=True)
class PlannedStep:
    """A step of a playbook, scheduled for a host."""

    playbook: Playbook
    step: Step


class RunObserver(Protocol):
    """Receives progress: the CLI renders it, tests may record it."""

    def run_started(self, run: RunRecord, hosts: int, steps: int) -> None:
        """The run is recorded and about to start."""

    def result(self, record: ResultRecord) -> None:
        """A result was recorded."""

    def host_finished(self, host: str) -> None:
        """Every step of ``host`` has a result."""

    # Optional: ``waiting(message)``, told once when ``--wait`` queues behind a run on the same hosts.


class _Done:
    """Sent by a worker when it finished a host."""

    __slots__ = ("host",)

    def __init__(self, host: str) -> None:
        self.host = host


def load_playbooks(references: Sequence[str], project_dir: Path) -> list[Playbook]:
    """Load each referenced playbook; BadInput on the first bad one."""
    if not references:
        raise BadInput("no playbook given", hint="e.g. maint run health -i inventory.ini")
    return [playbook_module.load(reference, project_dir) for reference in references]


Pairs = frozenset[tuple[str, str, str]]


def plan(
    playbooks: Sequence[Playbook], hosts_by_playbook: Mapping[str, Sequence[Host]], pairs: Pairs | None = None
) -> dict[str, list[PlannedStep]]:
    """Per host name, the steps to run in order: playbooks in the given order, steps as written.

    ``pairs`` (host, playbook, step id), when given, keeps only those (resume, rerun).
    """
    work: dict[str, list[PlannedStep]] = {}
    for playbook in playbooks:
        for host in hosts_by_playbook[playbook.name]:
            steps = [PlannedStep(playbook, step) for step in playbook.steps
                     if pairs is None or (host.name, playbook.name, step.id) in pairs]  # fmt: skip
            if steps:
                work.setdefault(host.name, []).extend(steps)
    return work


@dataclass(frozen=True)
class Phase:
    """A stretch of the run: per-host steps over maint's own connections, or one fleet step for many hosts.

    Steps run in playbook order; a fleet step (an Ansible playbook) is a barrier: it starts when
    every host has finished the steps before it, and the steps after it wait for it.
    """

    work: Mapping[str, list[PlannedStep]]
    fleet: PlannedStep | None = None
    hosts: tuple[str, ...] = ()


def phases(
    playbooks: Sequence[Playbook], hosts_by_playbook: Mapping[str, Sequence[Host]], pairs: Pairs | None = None
) -> list[Phase]:
    """The run's phases: consecutive per-host steps together, each fleet step on its own."""
    found: list[Phase] = []
    current: dict[str, list[PlannedStep]] = {}
    for playbook in playbooks:
        every = tuple(host.name for host in hosts_by_playbook[playbook.name])
        for step in playbook.steps:
            names = tuple(name for name in every if pairs is None or (name, playbook.name, step.id) in pairs)
            if step.step_class.fleet:
                if current:
                    found.append(Phase(work=current))
                    current = {}
                if names:
                    found.append(Phase(work={}, fleet=PlannedStep(playbook, step), hosts=names))
            else:
                for name in names:
                    current.setdefault(name, []).append(PlannedStep(playbook, step))
    if current:
        found.append(Phase(work=current))
    return found


# ansible_connection values that maint's executors serve under another name.
CONNECTION_ALIASES = {"smart": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh", "ssh": "ssh", "local": "local"}


def executor_for(host: Host, executors: dict[str, Executor], connect_timeout: float) -> Executor:
    """The executor the host's ``ansible_connection`` names (ssh when unset), found through the
    ``maint.executors`` entry points like any plugin's and made once per run with ``connect_timeout``.

    Raises Unsupported (that host's ``error``) for a connection no executor serves: maint never reaches
    a host differently from what its inventory says.
    """
    connection = str(host.vars.get("ansible_connection") or "ssh")
    kind = CONNECTION_ALIASES.get(connection, connection)
    if kind not in executors:
        factory = registry.load(registry.EXECUTORS, kind)
        if factory is None:
            known = ", ".join(registry.names(registry.EXECUTORS))
            raise Unsupported(f"ansible_connection={connection}: maint has no executor for it (known: {known}; "
                              "an executor plugin registers under the maint.executors entry points)")  # fmt: skip
        executors[kind] = factory(connect_timeout=connect_timeout)
    return executors[kind]


class Runner:
    """Executes one planned run. ``clock`` and ``executors`` (by the name ``ansible_connection`` selects:
    ``ssh``, ``local``, ...; the rest are found through entry points) are injectable, so records and the
    engine's behaviours are testable in-process (:class:`maint.testing.FakeExecutor`)."""

    def __init__(
        self, request: RunRequest, observer: RunObserver | None = None, clock: Clock = utc_now,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:  # fmt: skip
        self.request = request
        self.observer = observer
        self.clock = clock
        self._stop = threading.Event()  # start no new host or step
        # End the steps running on the hosts too (SIGINT, SIGTERM, the run ending early); a store that
        # cannot be written only stops the run: the steps in flight finish and are spooled.
        self._cancel = threading.Event()
        # Set once the run is in the store (or failed to get there): no command runs before.
        self._recorded = threading.Event()
        self._executors: dict[str, Executor] = dict(executors or {})
        self._executor_lock = threading.Lock()
        self.config = config_module.load(request.project_dir)
        self._policy = Policy.from_config(self.config.tickets)
        self._fleet_threads: list[threading.Thread] = []
        self._worker_threads: list[threading.Thread] = []
        # The window's close (no new host or step after it) and the end of its grace (running
        # steps are cut off then); None without a window.
        self._closes_at: dt.datetime | None = None
        self._grace_until: dt.datetime | None = None
        self._closed_reason = ""
        # (host, playbook, step) whose last result failed, could not run or was unreachable: the
        # batches' failure threshold counts their hosts.
        self._failed_pairs: set[tuple[str, str, str]] = set()
        # Alert state of the (host, check) pairs that have a remediation: its rate limit.
        self._alerts: dict[str, AlertState] = {}

    def _classification(self, planned: PlannedStep) -> tuple[str, str]:
        """The (tier, severity) of a step's results: maint.yml overrides, else the playbook's."""
        override = self.config.override(planned.step.id, planned.step.type)
        return override.get("tier", planned.step.tier), override.get("severity", planned.step.severity)

    def run(self) -> RunDocument:
        """Load, plan, execute and record; returns the run document.

        Raises BadInput before anything is recorded when an input is invalid, and RunInterrupted
        (after recording) on SIGINT/SIGTERM.
        """
        request = self.request
        if self.config.require_reason and not (request.reason or "").strip() and not in_ci(os.environ):
            raise ReasonRequired(
                f"{self.config.path or 'maint.yml'}: audit.require_reason is set: a manual run needs --reason",
                hint="e.g. --reason 'CHG-1234 kernel updates'",
            )
        playbooks = load_playbooks(request.playbooks, request.project_dir)
        names = [playbook.name for playbook in playbooks]
        if len(set(names)) != len(names):
            raise BadInput(f"the same playbook is named twice: {', '.join(names)}")
        if request.forks < 1:
            raise BadInput(f"--forks must be at least 1, got {request.forks}")
        cache_dir = request.project_dir / ".maint" / "cache" if request.inventory_cache else None
        inventory = open_inventory([str(source) for source in request.inventory], cache_dir,
                                   self.config.inventory_timeout)  # fmt: skip
        hosts_by_playbook = {
            playbook.name: inventory.select(playbook.hosts, request.limit) for playbook in playbooks
        }
        if request.window and not request.ignore_window:
            # A window covers its own hosts: the run works only those of them the selection has.
            from maint import windows

            window = windows.find_window(self.config.windows, request.window)
            covered = {host.name for host in inventory.select(window.hosts)}
            hosts_by_playbook = {
                name: [host for host in selected if host.name in covered]
                for name, selected in hosts_by_playbook.items()
            }
        inventory.save()
        self._check_digests(playbooks)
        only = request.only_pairs
        work = plan(playbooks, hosts_by_playbook, only)
        if request.done_pairs:
            only = frozenset(
                (host, p.playbook.name, p.step.id) for host, steps in work.items() for p in steps
            ) - request.done_pairs
            work = plan(playbooks, hosts_by_playbook, only)
        if not work and only is not None:
            raise BadInput(f"nothing left to run in {request.resume or request.rerun_of}",
                           hint="every (host, step) pair of it is done")  # fmt: skip
        if not work:
            patterns = ", ".join(sorted({playbook.hosts for playbook in playbooks}))
            limit = f" limited by '{request.limit}'" if request.limit else ""
            raise BadInput(
                f"no hosts matched '{patterns}'{limit} in {', '.join(map(str, request.inventory))}",
                hint="see 'maint inventory list -i ...'",
            )
        hosts = {host.name: host for selected in hosts_by_playbook.values() for host in selected}
        serial = request.serial if request.serial is not None else next(
            (playbook.serial for playbook in playbooks if playbook.serial), ()
        )
        max_fail = request.max_fail_percentage
        if max_fail is None:
            max_fail = next((p.max_fail_percentage for p in playbooks if p.max_fail_percentage is not None), None)
        host_batches = batches(list(work), serial)
        batch_stages = [
            phases(playbooks, {name: [h for h in selected if h.name in members]
                               for name, selected in hosts_by_playbook.items()}, only)
            for members in map(set, host_batches)
        ]  # fmt: skip
        ansible_playbooks = self._ansible_playbooks([stage for stages in batch_stages for stage in stages])
        started = self.clock()
        run_id = request.resume or f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        total_steps = sum(len(steps) for steps in work.values())
        results: queue.SimpleQueue[ResultRecord | _Done] = queue.SimpleQueue()
        # The store's location is checked before any host is locked; its lock registry sits beside it.
        store_url = resolve_url(request.db_url, self.config)
        locks = lock_directory(store_url, prepare_location(store_url))
        notice = getattr(self.observer, "waiting", None)  # an observer that shows what the run waits for
        acquire(locks, run_id, list(work), process_alive, timestamp(started), wait=request.wait, waiting=notice)
        started = self.clock()  # after any wait for the hosts: when the run really starts
        previous_term = _raise_on_sigterm()
        aborted = ""
        store: Store | None = None
        try:
            # Workers connect while the store opens (the key exchange is the hosts' CPU, the
            # store's import and schema check ours), but run no command before the run is recorded.
            first = batch_stages[0][0]
            if first.fleet is None:
                self._start_workers(run_id, first.work, hosts, results)
            try:
                store = Store(store_url, busy_timeout=self.config.store_busy_timeout)
                store.reap_stale_runs(socket.gethostname(), process_alive, timestamp(self.clock()))
                window_refusal = self._check_window()
                record = self._record(run_id, started, playbooks, inventory.digest, list(work), bool(ansible_playbooks),
                                      serial, max_fail)  # fmt: skip
                if request.resume:
                    store.reopen_run(run_id, {"at": record.started, "operator": record.operator,
                                              "argv": list(record.argv), "pid": os.getpid(),
                                              "reason": request.reason, "ci": record.ci,
                                              "allow_changed": request.allow_changed})  # fmt: skip
                else:
                    store.create_run(record)
                # From here a store that cannot be written stops the run, and its results go to a spool.
                store.spool = spool.RunSpool(store.url, run_id, request.project_dir, on_failure=self._stop.set)
                if window_refusal:
                    store.finish_run(run_id, "not-started", int(ExitCode.NOT_STARTED), record.started, {})
                    self._seal(store, run_id)
                    raise NotStarted(f"run {run_id} not started: {window_refusal}",
                                     hint="use --ignore-window to force it; that is recorded in the run")  # fmt: skip
                self._load_remediation_state(store, work)
            except StoreUnavailable as error:
                self._stop.set()
                verb = "resumed" if request.resume else "started"
                raise StoreUnavailable(error.store, error.cause, message=(
                    f"store {error.store} could not be written ({error.cause}): run {run_id} not {verb}, "
                    "no step ran")) from None  # fmt: skip
            except BaseException:
                self._stop.set()
                raise
            finally:
                self._recorded.set()
            if self.observer:
                self.observer.run_started(record, len(work), total_steps)
            counts: Counter[str] = Counter()
            try:
                for number, (batch, stages) in enumerate(zip(host_batches, batch_stages, strict=True), start=1):
                    if store.spool.active:
                        break
                    if aborted or self._window_closed():
                        reason = aborted or self._closed_reason
                        counts.update(self._skip(run_id, {name: work[name] for name in batch}, reason, store))
                        continue
                    for index, stage in enumerate(stages):
                        if store.spool.active:
                            break
                        if stage.fleet is not None and self._window_closed():
                            skipped = {name: [stage.fleet] for name in stage.hosts}
                            counts.update(self._skip(run_id, skipped, self._closed_reason, store))
                        elif stage.fleet is not None:
                            self._start_fleet(run_id, stage, hosts, ansible_playbooks, results)
                            counts.update(self._collect(len(stage.hosts), results, store))
                        else:
                            if number > 1 or index > 0:
                                self._start_workers(run_id, stage.work, hosts, results)
                            counts.update(self._collect(len(stage.work), results, store))
                    failed = len({host for host, _, _ in self._failed_pairs} & set(batch))
                    if max_fail is not None and number < len(host_batches) and crossed(failed, len(batch), max_fail):
                        aborted = (
                            f"aborted: {failed} of {len(batch)} hosts failed in batch {number} "
                            f"({100.0 * failed / len(batch):.0f}% > max_fail_percentage {max_fail:g}%)"
                        )
                if store.spool.active:
                    self._spooled(run_id, work, store)
            except KeyboardInterrupt:
                self._stop.set()
                self._cancel.set()
                for thread in self._fleet_threads:
                    # ansible-runner polls its cancel callback: let it stop ansible-playbook, not orphan it.
                    thread.join(timeout=15)
                self._finish_steps_in_flight(results, store)
                self._record_unfinished(run_id, work, store)
                document = store.get_run(run_id)
                counts = Counter(final_counts(document.results))
                finished = timestamp(self.clock())
                store.finish_run(run_id, "interrupted", int(ExitCode.INTERRUPTED), finished, counts)
                self._seal(store, run_id)
                raise RunInterrupted(
                    f"run {run_id} interrupted after {sum(counts.values())} of {total_steps} results; "
                    "what finished is recorded"
                ) from None
        except BaseException:
            # Whatever ended the run early, no worker or ansible-playbook may go on working hosts
            # that the released lock lets another run take, and the store's connections close.
            self._stop.set()
            self._cancel.set()
            for thread in self._fleet_threads:
                thread.join(timeout=15)
            if store is not None:
                store.close()
            raise
        finally:
            _restore_sigterm(previous_term)
            # The run's work ends here: a run waiting for these hosts starts after this moment.
            ended = self.clock()
            release(locks, run_id)
        assert store is not None
        try:
            counts = +counts  # a check superseded by its second attempt leaves a zero count
            if request.resume:
                counts = Counter(final_counts(store.get_run(run_id).results))
            status, exit_code = ("aborted", ExitCode.ABORTED) if aborted else final_status(counts)
            store.finish_run(run_id, status, int(exit_code), timestamp(ended), counts)
            document = store.get_run(run_id)
            if request.tickets and self.config.tickets["enabled"]:
                document.tickets = self._react(store, document, playbooks, hosts).as_dict()
            document.warnings.extend(self._seal(store, run_id))
            with store.engine.connect() as connection:
                document.ledger = ledger.run_seal(connection, run_id)
        finally:
            store.close()
        return document

    def _seal(self, store: Store, run_id: str) -> list[str]:
        """Sign the ledger's head for this run when maint.yml names a signing key; a failure is a warning
        (the run is recorded either way; ``maint audit verify --signers`` reports the missing signature)."""
        key = self.config.signing_key
        if key is None:
            return []
        try:
            with store.engine.begin() as connection:
                ledger.seal(connection, run_id, key)
        except MaintError as error:
            return [f"run {run_id} not signed: {error}"]
        return []

    def _load_remediation_state(self, store: Store, work: Mapping[str, Sequence[PlannedStep]]) -> None:
        from maint.store.tickets import load_alerts

        keys = [dedup_key(host, p.step.id) for host, steps in work.items() for p in steps if p.step.remediate]
        if keys:
            with store.engine.connect() as connection:
                self._alerts = load_alerts(connection, keys)

    def _react(
        self, store: Store, document: RunDocument, playbooks: Sequence[Playbook], hosts: Mapping[str, Host]
    ) -> Any:
        """Tickets for the run's findings, then delivery to the external backends within the budget."""
        import shlex

        from maint.tickets import StepInfo, TicketReport, react
        from maint.tickets.outbox import deliver

        request = self.request
        steps = {(p.name, step.id): StepInfo(runbook=step.runbook) for p in playbooks for step in p.steps}
        sources = [argument for source in request.inventory for argument in ("-i", str(source))]

        references = {p.name: _reference(p, request.project_dir) for p in playbooks}

        def reproduce(playbook: str, host: str) -> str:
            check = ["-C"] if request.check_mode else []
            reference = references.get(playbook) or playbook or "PLAYBOOK"
            return shlex.join(["maint", "run", reference, *sources, "-l", host, *check])

        groups = {name: sorted(host.groups) for name, host in hosts.items()}
        # A resumed run reacts to what this resume added; the earlier results had their reaction.
        fresh = [result for result in document.results if result["attempt"] > request.attempt_offset]
        try:
            report = react(store, self.config, document.run, fresh, groups, steps, reproduce,
                           request.project_dir)  # fmt: skip
        except MaintError as error:  # a broken ticket template: the run is recorded, its tickets are not
            report = TicketReport(warnings=[f"tickets not updated for run {document.run['id']}: {error}"])
        delivery = deliver(store, self.config, self.clock)
        report.sent = delivery.sent
        report.pending = delivery.pending
        report.warnings.extend(delivery.warnings)
        return report

    def _record(
        self, run_id: str, started: dt.datetime, playbooks: Sequence[Playbook], inventory_digest: str,
        hosts: list[str], ansible: bool = False, serial: Sequence[str] = (), max_fail: float | None = None,
    ) -> RunRecord:
        request = self.request
        return RunRecord(
            id=run_id,
            started=timestamp(started),
            operator=operator_name(),
            controller=socket.gethostname(),
            argv=redact_argv(request.argv),
            reason=request.reason,
            playbooks=[
                {"name": p.name, "path": str(p.path), "digest": p.digest, "builtin": p.builtin}
                for p in playbooks
            ],
            inventory={"sources": [str(source) for source in request.inventory], "digest": inventory_digest},
            maint_version=__version__,
            ci=ci_metadata(os.environ),
            options={
                "limit": request.limit,
                "forks": request.forks,
                "extra_vars": redact_vars(request.extra_vars),
                "connect_timeout": request.connect_timeout,
                "step_timeout": request.step_timeout,
                "check_mode": request.check_mode,
                "serial": list(serial),
                "max_fail_percentage": max_fail,
                "pid": os.getpid(),
                **({"window": request.window, "ignore_window": request.ignore_window} if request.window else {}),
                **({"rerun_of": request.rerun_of} if request.rerun_of else {}),
                **({"refs": list(request.refs)} if request.refs else {}),
                **({"allow_changed": True} if request.allow_changed else {}),
                # ansible-runner's record of each Ansible step (events, stdout, status; files 0600)
                **({"records": str(self._records_dir(run_id))} if ansible else {}),
            },
            hosts=hosts,
        )

    def _check_window(self) -> str:
        """Set the window's close and grace for this run; returns why it must not start ('' to go on).

        Raises BadInput for a window maint.yml does not define.
        """
        request = self.request
        if not request.window:
            return ""
        from maint import windows

        window = windows.find_window(self.config.windows, request.window)
        now = self.clock()
        current = windows.status(window, now)
        if current.open:
            self._closes_at, self._grace_until = current.closes_at, current.grace_until
            if self._closes_at is not None:
                self._closed_reason = f"window '{window.name}' closed at {self._closes_at:%Y-%m-%d %H:%M %Z}"
            return ""
        if request.ignore_window:
            return ""
        return f"window '{window.name}' is {current.reason}" if current.reason.startswith("closed") else (
            f"window '{window.name}': {current.reason}"
        )

    def _window_closed(self) -> bool:
        return self._closes_at is not None and self.clock() >= self._closes_at

    def _cancel_fleet(self) -> bool:
        """Whether an Ansible playbook must stop: the run was interrupted or the window's grace is over."""
        return self._cancel.is_set() or (self._grace_until is not None and self.clock() >= self._grace_until)

    def _check_digests(self, playbooks: Sequence[Playbook]) -> None:
        """For resume and rerun: every playbook must be the one the run used (unless --allow-changed)."""
        expected = self.request.digests
        if not expected or self.request.allow_changed:
            return
        for playbook in playbooks:
            if expected.get(playbook.name) not in (None, playbook.digest):
                run = self.request.resume or self.request.rerun_of
                raise BadInput(
                    f"playbook '{playbook.name}' ({playbook.path}) changed since run {run}",
                    hint="use --allow-changed to run the new version (it is recorded)",
                )

    def _finish_steps_in_flight(self, results: queue.SimpleQueue[ResultRecord | _Done], store: Store) -> None:
        """After SIGINT/SIGTERM: let the hosts end the steps in flight (their process groups get SIGTERM,
        then SIGKILL) and record what was ended, within STOP_GRACE."""
        deadline = time.monotonic() + STOP_GRACE
        for thread in self._worker_threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        store.add_results(_arrived(results))

    def _spooled(self, run_id: str, work: Mapping[str, Sequence[PlannedStep]], store: Store) -> None:
        """The store could not be written: spool the steps that did not run as skipped (resume runs
        them) and the run's end, then raise the spool's StoreUnavailable (exit 8)."""
        assert store.spool is not None
        seen = store.spool.seen
        self._skip_unfinished(run_id, work, lambda host, planned: (host, planned.playbook.name, planned.step.id)
                              in seen, spool.INTERRUPTED, store)  # fmt: skip
        store.finish_run(run_id, "interrupted", int(ExitCode.STORE_UNAVAILABLE), timestamp(self.clock()), {})

    def _record_unfinished(self, run_id: str, work: Mapping[str, Sequence[PlannedStep]], store: Store) -> None:
        """After SIGINT/SIGTERM: every planned step without a result is recorded skipped ("interrupted: ...")."""
        done: dict[str, set[str]] = {}
        for result in store.get_run(run_id).results:
            if result["attempt"] > self.request.attempt_offset:
                done.setdefault(result["host"], set()).add(str(result["step"]).split("/", 1)[0])
        self._skip_unfinished(run_id, work, lambda host, planned: planned.step.id in done.get(host, set()),
                              INTERRUPTED, store)  # fmt: skip

    def _skip_unfinished(
        self, run_id: str, work: Mapping[str, Sequence[PlannedStep]], finished: Callable[[str, PlannedStep], bool],
        reason: str, store: Store,
    ) -> None:  # fmt: skip
        """Record every step of ``work`` that is not ``finished(host, step)`` as skipped with ``reason``, unseen
        by the observer (the progress display has reported every host already)."""
        unfinished = {
            host: left for host, steps in work.items() if (left := [p for p in steps if not finished(host, p)])
        }
        if unfinished:
            observer, self.observer = self.observer, None
            try:
                self._skip(run_id, unfinished, reason, store)
            finally:
                self.observer = observer

    def _skip(
        self, run_id: str, work: Mapping[str, Sequence[PlannedStep]], reason: str, store: Store
    ) -> Counter[str]:
        """Record every step of ``work`` as skipped with ``reason`` (hosts a run will not start)."""
        now = timestamp(self.clock())
        records = []
        for host, steps in work.items():
            for planned in steps:
                tier, severity = self._classification(planned)
                records.append(ResultRecord(
                    run_id=run_id, host=host, playbook=planned.playbook.name, step=planned.step.id,
                    step_type=planned.step.type, status="skipped", exit_code=None, summary=reason, metrics={},
                    output="", started=now, duration=0.0, severity=severity, tier=tier,
                    attempt=1 + self.request.attempt_offset,
                ))  # fmt: skip
        store.add_results(records)
        for record in records:
            if self.observer:
                self.observer.result(record)
        for host in work:
            if self.observer:
                self.observer.host_finished(host)
        return Counter(record.status for record in records)

    def _records_dir(self, run_id: str) -> Path:
        return self.request.project_dir / ".maint" / "runs" / run_id

    def _make_records_dir(self, run_id: str) -> Path:
        """The run's record directory and its ``ansible/`` folder, created owner-only (they hold the
        runner's copy of the environment and extra vars)."""
        records = self._records_dir(run_id)
        private_directory(records / "ansible")
        return records

    def _ansible_playbooks(self, stages: Sequence[Phase]) -> dict[tuple[str, str], Path]:
        """The Ansible playbook file of each fleet step, resolved before anything runs (BadInput if missing)."""
        found: dict[tuple[str, str], Path] = {}
        for stage in stages:
            if stage.fleet is None:
                continue
            playbook, step = stage.fleet.playbook, stage.fleet.step
            reference = step.params.get("playbook")
            if not isinstance(reference, str) or step.templates.get("playbook") is not None:
                raise BadInput(f"step '{step.id}': 'playbook' must be a file name, not a template",
                               source=str(playbook.path), line=step.line)  # fmt: skip
            try:
                path = playbook_module.resolve(reference, self.request.project_dir)
            except BadInput as error:
                raise BadInput(f"step '{step.id}': Ansible {error.message}", source=str(playbook.path),
                               line=step.line, hint=error.hint) from None  # fmt: skip
            found[(playbook.name, step.id)] = path
        return found

    def _start_fleet(
        self,
        run_id: str,
        stage: Phase,
        hosts: Mapping[str, Host],
        ansible_playbooks: Mapping[tuple[str, str], Path],
        results: queue.SimpleQueue[ResultRecord | _Done],
    ) -> None:
        """Run a fleet step (an Ansible playbook) in a thread; its results arrive on ``results``."""
        assert stage.fleet is not None
        planned = stage.fleet

        def fleet() -> None:
            try:
                self._run_ansible(run_id, planned, stage.hosts, ansible_playbooks[(planned.playbook.name,
                                  planned.step.id)], results.put)  # fmt: skip
            finally:
                for name in stage.hosts:
                    results.put(_Done(name))

        thread = threading.Thread(target=fleet, name="maint-ansible", daemon=True)
        self._fleet_threads.append(thread)
        thread.start()

    def _run_ansible(
        self, run_id: str, planned: PlannedStep, host_names: Sequence[str], path: Path,
        emit: Callable[[ResultRecord], None],
    ) -> None:
        """One Ansible playbook through ansible-runner: a result per (host, task) as the runner reports it."""
        from maint.executors.ansible import PlaybookRequest, TaskResult, run_playbook

        request = self.request
        step = planned.step
        tier, severity = self._classification(planned)
        began = self.clock()

        def record(host: str, step_id: str, status: str, summary: str, *, exit_code: int | None = None,
                   metrics: Mapping[str, float] | None = None, output: str = "", started: dt.datetime | None = None,
                   duration: float = 0.0, module: str = "") -> None:  # fmt: skip
            step_type = f"{step.type}:{module}" if module else step.type  # e.g. ansible:ansible.builtin.copy
            emit(ResultRecord(
                run_id=run_id, host=host, playbook=planned.playbook.name, step=step_id, step_type=step_type,
                status=status, exit_code=exit_code, summary=summary, metrics=dict(metrics or {}), output=output,
                started=timestamp(started or began), duration=duration, severity=severity, tier=tier,
                attempt=1 + request.attempt_offset,
            ))  # fmt: skip

        try:
            instance = step.instantiate(dict(request.extra_vars))
        except (RenderError, ParamError) as error:
            for host in host_names:
                record(host, step.id, "error", f"bad parameters: {error}")
            return
        seen: Counter[tuple[str, str]] = Counter()
        reported: set[str] = set()

        def on_result(task: TaskResult) -> None:
            seen[(task.host, task.task)] += 1
            count = seen[(task.host, task.task)]
            name = task.task if count == 1 else f"{task.task} #{count}"
            reported.add(task.host)
            record(
                task.host, f"{step.id}/{name}", task.status, task.summary, exit_code=task.rc,
                metrics={"changed": 1.0 if task.changed else 0.0}, output=task.output,
                started=dt.datetime.fromtimestamp(task.started, dt.UTC), duration=task.duration, module=task.module,
            )  # fmt: skip

        values = instance.values
        timeout = step.timeout or planned.playbook.timeout
        try:
            outcome = run_playbook(
                PlaybookRequest(
                    playbook=path, inventory=[str(source) for source in request.inventory], hosts=list(host_names),
                    data_dir=self._make_records_dir(run_id) / "ansible" / f"{planned.playbook.name}-{step.id}".replace(
                        "/", "_"),
                    forks=request.forks, extra_vars={**request.extra_vars, **values["extra_vars"]},
                    tags=values["tags"], skip_tags=values["skip_tags"], check=request.check_mode or values["check"],
                    connect_timeout=request.connect_timeout, task_timeout=request.step_timeout, timeout=timeout,
                    cancel=self._cancel_fleet,
                ),
                on_result,
            )  # fmt: skip
        except Exception as error:  # the runner failing to start is this step's error on every host
            for host in host_names:
                record(host, step.id, "error", f"ansible-runner failed: {type(error).__name__}: {error}")
            return
        if self._stop.is_set():
            return
        seconds = (self.clock() - began).total_seconds()
        for host in host_names:
            if outcome.status == "timeout":
                record(host, step.id, "error", f"the Ansible playbook timed out after {timeout:g}s",
                       exit_code=outcome.rc, output=outcome.output, duration=seconds)  # fmt: skip
            elif host in reported:
                continue
            elif outcome.status == "successful":
                record(host, step.id, "skipped", "no play of the Ansible playbook ran on this host", duration=seconds)
            else:
                summary = f"ansible-playbook ended {outcome.status} (rc {outcome.rc}) before any task ran here"
                record(host, step.id, "error", summary, exit_code=outcome.rc, output=outcome.output, duration=seconds)

    def _start_workers(
        self,
        run_id: str,
        work: Mapping[str, list[PlannedStep]],
        hosts: dict[str, Host],
        results: queue.SimpleQueue[ResultRecord | _Done],
    ) -> None:
        pending: queue.SimpleQueue[str] = queue.SimpleQueue()
        for name in work:
            pending.put(name)

        def worker() -> None:
            while True:
                try:
                    name = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    # After a stop, the hosts not started are only reported done, so the run's
                    # collection (which waits for every host) ends once the running steps finish.
                    if not self._stop.is_set():
                        self._run_host(run_id, hosts[name], work[name], results.put)
                finally:
                    # Whatever happened on this host, the run must learn that it is done with it.
                    results.put(_Done(name))

        for index in range(min(self.request.forks, len(work))):
            thread = threading.Thread(target=worker, name=f"maint-fork-{index}", daemon=True)
            self._worker_threads.append(thread)
            thread.start()

    def _collect(self, hosts: int, results: queue.SimpleQueue[ResultRecord | _Done], store: Store) -> Counter[str]:
        """Write results to the store as they arrive, until every host is done.

        Results that arrive within BATCH_SECONDS of each other share one transaction: each
        result is on disk a few milliseconds after it arrives, at a fraction of a commit each.
        """
        counts: Counter[str] = Counter()
        last_status: dict[tuple[str, str, str], str] = {}
        batch: list[ResultRecord] = []
        remaining = hosts
        try:
            while remaining:
                done: list[str] = []
                item = results.get()
                deadline = time.monotonic() + BATCH_SECONDS
                while True:
                    if isinstance(item, _Done):
                        done.append(item.host)
                    else:
                        batch.append(item)
                    wait = deadline - time.monotonic()
                    if len(batch) >= BATCH_SIZE or wait <= 0:
                        break
                    try:
                        item = results.get(timeout=wait)
                    except queue.Empty:
                        break
                store.add_results(batch)
                for result in batch:
                    pair = (result.host, result.playbook, result.step)
                    if result.attempt > 1 and pair in last_status:
                        # A check run again after its remediation: the later attempt is its result.
                        counts[last_status[pair]] -= 1
                    last_status[pair] = result.status
                    counts[result.status] += 1
                    # A host counts as failed by the last attempt of each step (a remediation may fix it).
                    if result.status in ("failed", "error", "unreachable"):
                        self._failed_pairs.add(pair)
                    else:
                        self._failed_pairs.discard(pair)
                    if self.observer:
                        self.observer.result(result)
                batch = []
                for host in done:
                    remaining -= 1
                    if self.observer:
                        self.observer.host_finished(host)
        except KeyboardInterrupt:
            self._stop.set()
            self._cancel.set()
            # Keep what already arrived: those steps finished and belong in the record.
            store.add_results(batch + _arrived(results))
            raise
        return counts

    def _executor(self, host: Host) -> Executor:
        with self._executor_lock:
            return executor_for(host, self._executors, self.request.connect_timeout)

    def _run_host(
        self, run_id: str, host: Host, steps: list[PlannedStep], emit: Callable[[ResultRecord], None]
    ) -> None:
        variables = {
            **host.vars,
            "inventory_hostname": host.name,
            "group_names": list(host.groups),
            **self.request.extra_vars,
        }
        hidden = secret_variable_values(variables)

        def record(planned: PlannedStep, outcome: Outcome, started: dt.datetime, seconds: float,
                   result: CommandResult | None = None, attempt: int = 1) -> None:
            tier, severity = self._classification(planned)
            emit(
                ResultRecord(
                    run_id=run_id,
                    host=host.name,
                    playbook=planned.playbook.name,
                    step=planned.step.id,
                    step_type=planned.step.type,
                    status=outcome.status.value,
                    exit_code=result.exit_code if result else None,
                    summary=outcome.summary,
                    metrics=dict(outcome.metrics),
                    output=result.tail() if result else "",
                    started=timestamp(started),
                    duration=seconds,
                    severity=severity,
                    tier=tier,
                    attempt=attempt + self.request.attempt_offset,
                )
            )

        connect_started = self.clock()
        began = time.monotonic()
        try:
            connection: Connection = self._executor(host).connect(host)
        except Unreachable as error:
            self._recorded.wait()
            seconds = time.monotonic() - began
            for planned in steps:
                record(planned, Outcome(Status.UNREACHABLE, str(error)), connect_started, seconds)
            return
        except Unsupported as error:
            self._recorded.wait()
            for planned in steps:
                record(planned, Outcome(Status.ERROR, str(error)), connect_started, 0.0)
            return
        except Exception as error:  # a bug in an executor must stay this host's problem
            self._recorded.wait()
            for planned in steps:
                outcome = Outcome(Status.ERROR, f"executor failed: {type(error).__name__}: {error}")
                record(planned, outcome, connect_started, time.monotonic() - began)
            return

        def execute(planned: PlannedStep, step: Step) -> tuple[Outcome, CommandResult | None, dt.datetime, float]:
            return self._execute(planned, step, variables, connection, hidden)

        try:
            self._recorded.wait()
            for index, planned in enumerate(steps):
                if self._stop.is_set():
                    return
                if self._window_closed():
                    for later in steps[index:]:
                        record(later, Outcome(Status.SKIPPED, self._closed_reason), self.clock(), 0.0)
                    return
                try:
                    outcome, result, started, seconds = execute(planned, planned.step)
                    remedy = planned.step.remediate
                    if (
                        remedy is None
                        or outcome.status != Status.FAILED
                        or self.request.check_mode
                        or not self._may_remediate(host.name, planned.step.id)
                    ):
                        record(planned, outcome, started, seconds, result)
                        continue
                    # Remediate, then check again: the ticket (if any) follows the second attempt.
                    record(planned, outcome, started, seconds, result)
                    task = dataclasses.replace(remedy, id=planned.step.id + REMEDIATION_SUFFIX)
                    fixing = PlannedStep(planned.playbook, task)
                    fixed, fix_result, fix_started, fix_seconds = execute(fixing, task)
                    record(fixing, fixed, fix_started, fix_seconds, fix_result)
                    outcome, result, started, seconds = execute(planned, planned.step)
                    record(planned, outcome, started, seconds, result, attempt=2)
                except HostHung as error:
                    record(planned, Outcome(Status.ERROR, str(error)), error.started or self.clock(), error.seconds)
                    reason = f"host stopped responding during step '{planned.step.id}'"
                    for later in steps[index + 1 :]:
                        record(later, Outcome(Status.UNREACHABLE, reason), self.clock(), 0.0)
                    return
        finally:
            connection.close()

    def _may_remediate(self, host: str, check: str) -> bool:
        """Whether the remediation limit of (host, check) allows another attempt in this run."""
        state = self._alerts.get(dedup_key(host, check))
        if state is None:
            return True
        return state.remediations(self._policy.remediation_runs) < self._policy.remediation_max_attempts

    def _execute(
        self, planned: PlannedStep, step: Step, variables: Mapping[str, Any], connection: Connection,
        hidden: Sequence[str] = (),
    ) -> tuple[Outcome, CommandResult | None, dt.datetime, float]:
        """Run one step on a connected host: (outcome, command result, start, seconds).

        Raises HostHung (with ``started`` and ``seconds`` set) when the host stops answering.
        """
        step_started = self.clock()
        began = time.monotonic()
        try:
            if not step.applies(variables):
                return Outcome(Status.SKIPPED, f"condition is false: {step.when}"), None, step_started, 0.0
            instance = step.instantiate(variables)
            if self.request.check_mode:
                dry_run = instance.in_check_mode()
                if dry_run is None:
                    reason = f"check mode: {step.type} changes the host and has no dry run"
                    return Outcome(Status.SKIPPED, reason), None, step_started, 0.0
                instance = dry_run
            command = instance.command()
            stdin = instance.stdin()
            # Resolved secrets, and the values of secret-looking variables (``hidden``) a template may have put
            # in the command (-e db_password=..., a host var): none of them may reach the record.
            secrets = (*instance.secret_values(), *hidden)
        except (RenderError, ParamError) as error:
            return Outcome(Status.ERROR, f"bad parameters: {error}"), None, step_started, 0.0
        except Exception as error:  # a bug in a step type is this result's error, not a hung run
            summary = f"step type {step.type} failed: {type(error).__name__}: {error}"
            return Outcome(Status.ERROR, summary), None, step_started, 0.0
        timeout = self.request.step_timeout or step.timeout or planned.playbook.timeout or DEFAULT_STEP_TIMEOUT
        if self._grace_until is not None:
            # A step may run past the window's close, but not past its grace.
            timeout = max(1.0, min(timeout, (self._grace_until - self.clock()).total_seconds()))
        try:
            result = connection.run(command, timeout, stdin, cancel=self._cancel)
        except HostHung as error:
            error.started = step_started
            error.seconds = time.monotonic() - began
            raise
        if result.cancelled:
            # Not a result of the step: resume runs it again (the summary starts as resume expects).
            outcome = Outcome(Status.SKIPPED, f"{INTERRUPTED}; {result.ended}")
        elif result.timed_out:
            outcome = Outcome(Status.ERROR, f"timed out after {timeout:g}s")
        elif result.exit_code is None:
            outcome = Outcome(Status.ERROR, "the command's channel closed before it finished")
        else:
            try:
                outcome = instance.evaluate(result)
            except Exception as error:  # a check bug is this result's error
                outcome = Outcome(Status.ERROR, f"check failed to evaluate: {type(error).__name__}: {error}")
        if secrets:
            outcome, result = _masked(outcome, result, secrets)
        return outcome, result, step_started, result.duration


def _arrived(results: queue.SimpleQueue[ResultRecord | _Done]) -> list[ResultRecord]:
    """The results waiting in ``results`` (taken out of it)."""
    found: list[ResultRecord] = []
    while True:
        try:
            item = results.get_nowait()
        except queue.Empty:
            return found
        if isinstance(item, ResultRecord):
            found.append(item)


def _reference(playbook: Playbook, project_dir: Path) -> str:
    """How to name ``playbook`` on a command line run from ``project_dir``."""
    if playbook.builtin or playbook.path == playbook_module.resolve_quietly(playbook.name, project_dir):
        return playbook.name
    try:
        return str(playbook.path.resolve().relative_to(project_dir.resolve()))
    except ValueError:
        return str(playbook.path)


def _masked(
    outcome: Outcome, result: CommandResult, secrets: Sequence[str]
) -> tuple[Outcome, CommandResult]:
    """The outcome and result with every secret value replaced by ***, before anything is recorded."""
    return (
        dataclasses.replace(outcome, summary=mask(outcome.summary, secrets)),
        dataclasses.replace(
            result,
            command=mask(result.command, secrets),
            stdout=mask(result.stdout, secrets),
            stderr=mask(result.stderr, secrets),
        ),
    )


def final_status(counts: Mapping[str, int]) -> tuple[str, ExitCode]:
    """The run's status and exit code from its result counts (see the README's exit codes)."""
    if counts.get("failed") or counts.get("error"):
        return "failed", ExitCode.FAILED
    if counts.get("unreachable"):
        return "unreachable", ExitCode.UNREACHABLE
    return "ok", ExitCode.OK


def _raise_on_sigterm() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def run(
    request: RunRequest, observer: RunObserver | None = None, clock: Clock = utc_now,
    executors: Mapping[str, Executor] | None = None,
) -> RunDocument:  # fmt: skip
    """Run ``request`` and return its recorded document (see :class:`Runner`)."""
    return Runner(request, observer, clock, executors).run()
