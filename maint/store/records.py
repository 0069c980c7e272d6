"""The records of the store as maint's code handles them: a run as it starts, a result, a run's document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """The facts of a run known when it starts (who, what, where, why)."""

    id: str
    started: str
    operator: str
    controller: str
    argv: Sequence[str]
    reason: str | None
    playbooks: Sequence[Mapping[str, Any]]
    inventory: Mapping[str, Any]
    maint_version: str
    ci: Mapping[str, str]
    options: Mapping[str, Any]
    hosts: Sequence[str]
    status: str = "running"


@dataclass(frozen=True)
class ResultRecord:
    """One (host, step) result as written to the store."""

    run_id: str
    host: str
    playbook: str
    step: str
    step_type: str
    status: str
    exit_code: int | None
    summary: str
    metrics: Mapping[str, float]
    output: str
    started: str
    duration: float
    severity: str = "warning"
    tier: str = "L1"
    attempt: int = 1
    # Why a skipped result was skipped (a SkipKind) and an ansible step's task result's task (its step is
    # "STEP/TASK"); the store derives what a record leaves None from its status, step and summary.
    skip_kind: str | None = None
    task: str | None = None
    command: str | None = None  # what the step sent to the host, secrets masked


@dataclass
class RunDocument:
    """A run as shown by ``runs show`` and ``run --format json``."""

    run: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    tickets: dict[str, Any] | None = None  # what the run did to tickets (``maint run`` only)
    warnings: list[str] = field(default_factory=list)  # e.g. the ledger could not be signed
    ledger: dict[str, Any] | None = None  # the run's seal: maint.store.ledger.run_seal

    def as_dict(self) -> dict[str, Any]:
        """Run fields at the top level, a ``results`` list, the ``ledger`` seal, and ``tickets`` and
        ``warnings`` after a run."""
        document = {**self.run, "results": self.results, "ledger": self.ledger}
        if self.tickets is not None:
            document["tickets"] = self.tickets
        if self.warnings:
            document["warnings"] = self.warnings
        return document




def last_attempts(results: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """The last attempt of each (host, playbook, step) among a run's results (a remediated check, a resume)."""
    last: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for result in results:
        pair = (result["host"], result["playbook"], result["step"])
        if pair not in last or result["attempt"] >= last[pair]["attempt"]:
            last[pair] = result
    return last


def final_counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Status counts over a run's results, counting only the last attempt of each (host, playbook, step)."""
    counts: dict[str, int] = {}
    for result in last_attempts(results).values():
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts
