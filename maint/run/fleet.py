"""The fleet: worker threads that take the hosts, fleet steps in their own thread, and the batches.

Execution returns values, it does not write the store: :meth:`Fleet.arrivals` yields what the hosts
report, a few milliseconds' worth at a time, and the run's recorder writes it. One host's failure is
that host's result: nothing a host does raises across the fleet.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from maint.batches import crossed
from maint.run.ansible import run_fleet_step
from maint.run.controls import Controls, WindowGuard
from maint.run.host import HostRun
from maint.run.plan import Phase, PlannedStep, RunPlan
from maint.run.results import Results
from maint.store import ResultRecord, SkipKind

# Results arriving within this many seconds of the first one are handed on together (one transaction).
BATCH_SECONDS = 0.05
BATCH_SIZE = 500
# How long an interrupted run waits for its hosts to end the steps in flight (SIGTERM, then SIGKILL).
STOP_GRACE = 6.0


class HostDone:
    """Sent by a worker when it finished a host."""

    __slots__ = ("host",)

    def __init__(self, host: str) -> None:
        self.host = host


@dataclass
class Arrival:
    """Results that arrived together, and the hosts that finished with them."""

    results: list[ResultRecord] = field(default_factory=list)
    done: list[str] = field(default_factory=list)


class Fleet:
    """Runs a plan's batches and phases on its hosts, ``forks`` hosts at a time."""

    def __init__(
        self, plan: RunPlan, results: Results, host_run: HostRun, controls: Controls, window: WindowGuard
    ) -> None:
        self.plan = plan
        self.results = results
        self.host_run = host_run
        self.controls = controls
        self.window = window
        self.aborted = ""  # why the batches after a failed one do not run (max_fail_percentage)
        self._queue: queue.SimpleQueue[ResultRecord | HostDone] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._ansible: list[threading.Thread] = []
        self._gathering: Arrival | None = None
        self._ahead = False
        # (host, playbook, step) whose last result failed, could not run or was unreachable: the
        # batches' failure threshold counts their hosts.
        self._failed: set[tuple[str, str, str]] = set()

    def connect_ahead(self) -> None:
        """Start the first phase's hosts now (when it is per-host): they connect while the store opens,
        and run no command before the run is recorded (``controls.recorded``)."""
        first = self.plan.batches[0].phases[0]
        if first.fleet is None:
            self._start_hosts(first.work)
            self._ahead = True

    def arrivals(self) -> Iterator[Arrival]:
        """Run every batch, yielding what arrives until each host of each phase is done.

        A batch after one that crossed ``max_fail_percentage``, and whatever would start after the window
        closed, arrives as skipped. Ends early when the run is stopped (``controls.stop``).
        """
        batches = self.plan.batches
        for number, batch in enumerate(batches, start=1):
            if self.controls.stop.is_set():
                return
            if self.aborted or self.window.closed():
                work = {name: self.plan.work[name] for name in batch.hosts}
                kind = SkipKind.ABORTED if self.aborted else SkipKind.WINDOW_CLOSED
                yield Arrival(self.results.skipped(work, self.aborted or self.window.closed_reason, kind), list(work))
                continue
            for index, phase in enumerate(batch.phases):
                if self.controls.stop.is_set():
                    return
                if phase.fleet is not None and self.window.closed():
                    work = {name: [phase.fleet] for name in phase.hosts}
                    closed = self.results.skipped(work, self.window.closed_reason, SkipKind.WINDOW_CLOSED)
                    yield Arrival(closed, list(phase.hosts))
                elif phase.fleet is not None:
                    self._start_fleet_step(phase)
                    yield from self._gather(len(phase.hosts))
                else:
                    if not (self._ahead and number == 1 and index == 0):
                        self._start_hosts(phase.work)
                    yield from self._gather(len(phase.work))
            failed = len({host for host, _, _ in self._failed} & set(batch.hosts))
            limit = self.plan.max_fail
            if limit is not None and number < len(batches) and crossed(failed, len(batch.hosts), limit):
                self.aborted = (
                    f"aborted: {failed} of {len(batch.hosts)} hosts failed in batch {number} "
                    f"({100.0 * failed / len(batch.hosts):.0f}% > max_fail_percentage {limit:g}%)"
                )

    def arrived(self) -> list[ResultRecord]:
        """The results that arrived but were not handed on (a run interrupted while gathering)."""
        found = list(self._gathering.results) if self._gathering is not None else []
        self._gathering = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return found
            if isinstance(item, ResultRecord):
                found.append(item)

    def finish_in_flight(self) -> list[ResultRecord]:
        """After SIGINT/SIGTERM (``controls.cancel`` set): let the hosts end the steps in flight (their process
        groups get SIGTERM, then SIGKILL) within STOP_GRACE; returns what they reported meanwhile."""
        for thread in self._ansible:
            # ansible-runner polls its cancel callback: let it stop ansible-playbook, not orphan it.
            thread.join(timeout=15)
        deadline = time.monotonic() + STOP_GRACE
        for thread in self._workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return self.arrived()

    def end(self) -> None:
        """The run ends early: no worker or ansible-playbook may go on working hosts that the released lock
        lets another run take."""
        self.controls.end()
        for thread in self._ansible:
            thread.join(timeout=15)

    def _gather(self, hosts: int) -> Iterator[Arrival]:
        """Yield what arrives until ``hosts`` hosts are done: results arriving within BATCH_SECONDS of each
        other together, so that each is on disk a few milliseconds after it arrives, at a fraction of a commit."""
        remaining = hosts
        while remaining:
            item = self._queue.get()
            arrival = self._gathering = Arrival()
            deadline = time.monotonic() + BATCH_SECONDS
            while True:
                if isinstance(item, HostDone):
                    arrival.done.append(item.host)
                else:
                    arrival.results.append(item)
                wait = deadline - time.monotonic()
                if len(arrival.results) >= BATCH_SIZE or wait <= 0:
                    break
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    break
            self._gathering = None
            for result in arrival.results:
                # A host counts as failed by the last attempt of each step (a remediation may fix it).
                pair = (result.host, result.playbook, result.step)
                if result.status in ("failed", "error", "unreachable"):
                    self._failed.add(pair)
                else:
                    self._failed.discard(pair)
            remaining -= len(arrival.done)
            yield arrival

    def _start_hosts(self, work: Mapping[str, Sequence[PlannedStep]]) -> None:
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
                    # After a stop, the hosts not started are only reported done, so the gathering
                    # (which waits for every host) ends once the running steps finish.
                    if not self.controls.stop.is_set():
                        self.host_run.run(self.plan.hosts[name], work[name], self._queue.put)
                finally:
                    # Whatever happened on this host, the run must learn that it is done with it.
                    self._queue.put(HostDone(name))

        for index in range(min(self.plan.request.forks, len(work))):
            thread = threading.Thread(target=worker, name=f"maint-fork-{index}", daemon=True)
            self._workers.append(thread)
            thread.start()

    def _start_fleet_step(self, phase: Phase) -> None:
        """Run a fleet step (an Ansible playbook) in a thread; its results arrive like the hosts' results."""
        assert phase.fleet is not None
        planned = phase.fleet

        def fleet() -> None:
            try:
                run_fleet_step(self.plan, planned, phase.hosts, self.results, self.controls, self.window,
                               self._queue.put)  # fmt: skip
            finally:
                for name in phase.hosts:
                    self._queue.put(HostDone(name))

        thread = threading.Thread(target=fleet, name="maint-ansible", daemon=True)
        self._ansible.append(thread)
        thread.start()
