"""Plan, execute and record a maintenance run.

One line: :func:`prepare` a plan, hold its hosts (:class:`Lifecycle`), let the :class:`Fleet` run it,
the :class:`Recorder` write what arrives, then :func:`react` with tickets. The modules, in that order:
``request`` (what was asked), ``plan``, ``lifecycle``, ``fleet`` (threads and batches) with ``host``
(one host's steps) and ``ansible`` (a fleet step), ``results`` (the one result builder), ``recorder``
and ``react``; ``controls`` holds the stop signals and the window's deadlines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from maint import config as config_module
from maint.clock import Clock, utc_now
from maint.config import Config
from maint.errors import ExitCode, MaintError, StoreUnavailable
from maint.executors import Executor
from maint.locks import HostsBusy, lock_directory
from maint.notify.notifications import notifiers
from maint.notify.pings import Pings, WindowPings, run_pings
from maint.notify.watch import Monitored, monitored
from maint.run.controls import Controls, WindowGuard
from maint.run.fleet import Fleet
from maint.run.host import CONNECTION_ALIASES, Executors, HostRun, Remediations
from maint.run.lifecycle import Lifecycle
from maint.run.plan import Phase, PlannedStep, RunPlan, Selection, load_playbooks, phases, plan, prepare, selection
from maint.run.react import react, remediation_limits
from maint.run.recorder import Recorder, RunObserver, unrecorded_document
from maint.run.request import INTERRUPTED, NotStarted, ReasonRequired, RunInterrupted, RunRequest
from maint.run.results import Results, final_status
from maint.store import RunDocument, Store, prepare_location, resolve_url

if TYPE_CHECKING:
    from maint.windows import Window

__all__ = [
    "CONNECTION_ALIASES", "INTERRUPTED", "NotStarted", "Phase", "PlannedStep", "ReasonRequired", "RunInterrupted",
    "RunObserver", "RunPlan", "RunRequest", "Selection", "Services", "final_status", "load_playbooks", "phases",
    "plan", "prepare", "run", "selection",
]  # fmt: skip


@dataclass
class Services:
    """What a run uses from outside: maint.yml, the clock, executors by connection kind (the rest are found
    through entry points), and how the store opens. Tests pass fakes (``maint.testing``)."""

    config: Config
    clock: Clock = utc_now
    executors: Mapping[str, Executor] = field(default_factory=dict)
    pings: Callable[[Window], WindowPings] = WindowPings  # a window's dead man's switch pings
    # An open store to record in (the caller keeps and closes it; tests: maint.testing.memory_store()),
    # and the host locks' registry; by default the store the request or maint.yml names, and its registry.
    store: Store | None = None
    locks: Path | None = None

    @classmethod
    def default(cls, request: RunRequest) -> Services:
        """The real services: the project's maint.yml, the system clock, the store it names."""
        return cls(config=config_module.load(request.project_dir))

    def locate(self, request: RunRequest) -> tuple[str, Path]:
        """The store's URL and its lock registry; the store's location is checked (BadInput) first."""
        url = self.store.url if self.store is not None else resolve_url(request.db_url, self.config)
        return url, self.locks or lock_directory(url, prepare_location(url))

    def open_store(self, url: str) -> Store:
        """The store the run records in (opened now unless given)."""
        return self.store if self.store is not None else Store(url, busy_timeout=self.config.store_busy_timeout)

    def close_store(self, store: Store) -> None:
        """Close ``store`` unless it was given (its owner closes it)."""
        if store is not self.store:
            store.close()


def run(
    request: RunRequest, observer: RunObserver | None = None, services: Services | None = None, *,
    clock: Clock | None = None, executors: Mapping[str, Executor] | None = None,
) -> RunDocument:  # fmt: skip
    """Run ``request`` and return its recorded document.

    Raises ReasonRequired or BadInput before anything is locked or recorded when an input is invalid,
    HostsBusy when another run holds a host, NotStarted when its window is closed (recorded), StoreUnavailable
    when the store cannot be written (finished results spooled), and RunInterrupted (after recording what
    finished) on SIGINT/SIGTERM. ``clock`` and ``executors`` replace the services' own.

    Every run sends maint.yml's ``pings`` and a run kept to a window (``request.window``) the window's too:
    ``start`` once recorded, then ``success`` or ``fail`` (also when it raises). Once the run is recorded,
    maint.yml's ``notify`` notifiers whose ``on`` covers its exit code hear of it (also a run that raises
    after being recorded: interrupted, not started, store not writable). A failed ping or notification is
    a warning: in the document's warnings, and told to the observer's ``warning`` as it happens when it has
    one; it never changes the exit code.
    """
    services = services or Services.default(request)
    config = services.config
    pings: list[Pings] = []
    if request.window:
        from maint.windows import find_window

        pings.append(services.pings(find_window(config.windows, request.window)))
    configured = run_pings(config)
    if configured is not None:
        pings.append(configured)
    warnings: list[str] = []
    show = getattr(observer, "warning", None)

    def warn(message: str) -> None:
        warnings.append(message)
        if show is not None:  # as it happens; the document keeps it too
            show(message)

    with monitored(pings, warn, notifiers(config), request.project_dir) as monitor:
        document = _run(request, observer, services, monitor, clock or services.clock, executors)
        monitor.recorded(document.as_dict())
        monitor.finished(document.run["exit_code"], document.run["status"])
    document.warnings.extend(warnings)
    return document


def _run(
    request: RunRequest, observer: RunObserver | None, services: Services, monitor: Monitored, clock: Clock,
    executors: Mapping[str, Executor] | None,
) -> RunDocument:  # fmt: skip
    plan = prepare(request, services.config, clock)
    try:
        return _run_plan(plan, observer, services, monitor, clock, executors)
    except HostsBusy as error:
        error.run = unrecorded_document(plan, clock(), "not-started", ExitCode.NOT_STARTED)
        error.run_id = plan.run_id
        raise
    except MaintError as error:
        error.run_id = error.run_id or plan.run_id
        raise


def _run_plan(
    plan: RunPlan, observer: RunObserver | None, services: Services, monitor: Monitored, clock: Clock,
    executors: Mapping[str, Executor] | None,
) -> RunDocument:  # fmt: skip
    request, config = plan.request, services.config
    store_url, locks = services.locate(request)
    controls = Controls()
    window = WindowGuard(plan.window, request.ignore_window, clock)
    results = Results(plan, clock)
    remediations = Remediations(*remediation_limits(config))
    connections = Executors({**services.executors, **(executors or {})}, request.connect_timeout)
    host_run = HostRun(request, results, connections, controls, window, remediations, plan.vault)
    fleet = Fleet(plan, results, host_run, controls, window)
    store: Store | None = None
    recorder: Recorder | None = None
    waiting = getattr(observer, "waiting", None)  # an observer that shows what the run waits for
    with Lifecycle(locks, plan.run_id, list(plan.work), clock, wait=request.wait, waiting=waiting) as life:
        try:
            # The first hosts connect while the store opens (the key exchange is the hosts' CPU, the store's
            # import and schema check ours), but run no command before the run is recorded.
            fleet.connect_ahead()
            try:
                store = services.open_store(store_url)
                recorder = Recorder(plan, store, config, results, observer, clock)
                recorder.begin(life.started, window, controls.stop.set, remediations, monitor.started)
            except BaseException:
                controls.stop.set()
                raise
            finally:
                controls.recorded.set()
            try:
                for arrival in fleet.arrivals():
                    recorder.write(arrival)
                if store.spool is not None and store.spool.active:
                    recorder.spooled()
            except KeyboardInterrupt:
                controls.end()
                raise recorder.interrupted(fleet.finish_in_flight()) from None
        except BaseException as error:
            # Whatever ended the run early, no host goes on being worked, and the store's connections close.
            fleet.end()
            if store is not None:
                # A store that cannot be written is not read either (it could keep the run waiting).
                if recorder is not None and recorder.record is not None and not isinstance(error, StoreUnavailable):
                    _recorded(store, plan.run_id, monitor)
                services.close_store(store)
            raise
    assert store is not None and recorder is not None
    try:
        document = recorder.finish(fleet.aborted, life.ended)
        if request.tickets and config.tickets["enabled"]:
            document.tickets = react(store, config, plan, document, clock)
        document.warnings.extend(recorder.seal())
        document.ledger = recorder.ledger_seal()
    finally:
        services.close_store(store)
    return document


def _recorded(store: Store, run_id: str, monitor: Monitored) -> None:
    """Hand ``monitor`` the document of a run that ended early but is recorded (interrupted, not started),
    for its notifications; a store that cannot be read leaves it without (they say what is known)."""
    try:
        monitor.recorded(store.get_run(run_id).as_dict())
    except Exception:  # the run's own error is what the caller sees
        return
