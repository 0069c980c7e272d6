"""What a result's own text says about it: why a skipped result was skipped, and which Ansible task a
result of an ``ansible`` step is. The store keeps both in columns of their own (``skip_kind``, ``task``);
:func:`derive` reads them from the summary and the step of a result that does not set them: the rows
recorded before those columns existed (schema revision maint_0002 fills them in) and the results of a
producer that does not set them yet.

The ledger checks a result recorded before revision maint_0002 against :func:`derive` (its entry's
digest covers the row without the two columns): what it returns for a summary or step that maint has
ever recorded must never change.
"""

from __future__ import annotations

import enum


class SkipKind(enum.StrEnum):
    """Why a ``skipped`` result was skipped (the ``skip_kind`` column)."""

    INTERRUPTED = "interrupted"  # the run was stopped (or the store failed) before the step finished
    ABORTED = "aborted"  # the run's failure threshold (max_fail_percentage) was crossed
    WINDOW_CLOSED = "window-closed"  # the maintenance window closed before the step started
    CHECK_MODE = "check-mode"  # ``maint run --check`` and the step changes the host without a dry run
    CONDITION = "condition"  # the step's ``when:`` was false
    NO_PLAY = "no-play"  # no play of the step's Ansible playbook ran on the host
    ANSIBLE = "ansible"  # an Ansible task reported skipped
    OTHER = "other"  # a step type reported skipped for a reason of its own (its summary says which)


# The skips of steps that did not run (or did not finish) because of the run, not the step: ``maint resume``
# runs them.
NOT_STARTED = frozenset({SkipKind.INTERRUPTED, SkipKind.ABORTED, SkipKind.WINDOW_CLOSED})

# Summary prefixes of the skips maint records, in the words maint.run and maint.store.spool use.
PREFIXES = (
    ("interrupted:", SkipKind.INTERRUPTED),
    ("aborted:", SkipKind.ABORTED),
    ("check mode:", SkipKind.CHECK_MODE),
    ("condition is false:", SkipKind.CONDITION),
    ("no play of the Ansible playbook ran", SkipKind.NO_PLAY),
)
WINDOW_PREFIX, WINDOW_CLOSED = "window '", "' closed at "


def task_of(step: str, step_type: str) -> str | None:
    """The Ansible task of a result whose step is ``STEP_ID/TASK`` (an ``ansible`` step's task result,
    the task's name numbered ``#2``, ``#3`` when it repeats on a host); None for any other result."""
    if step_type.startswith("ansible") and "/" in step:
        return step.split("/", 1)[1]
    return None


def skip_kind_of(status: str, summary: str, task: str | None) -> SkipKind | None:
    """Why a result of ``status`` with ``summary`` was skipped; None unless it is ``skipped``. ``task`` is
    the result's Ansible task (None for other results)."""
    if status != "skipped":
        return None
    for prefix, kind in PREFIXES:
        if summary.startswith(prefix):
            return kind
    if summary.startswith(WINDOW_PREFIX) and WINDOW_CLOSED in summary:
        return SkipKind.WINDOW_CLOSED
    return SkipKind.ANSIBLE if task is not None else SkipKind.OTHER


def derive(status: str, step: str, step_type: str, summary: str) -> tuple[str | None, str | None]:
    """``(skip_kind, task)`` of a result, read from its status, step, step type and summary."""
    task = task_of(step, step_type)
    kind = skip_kind_of(status, summary, task)
    return (str(kind) if kind is not None else None), task


def step_id(step: str, task: str | None) -> str:
    """The playbook's step id of a result: its ``step`` without the Ansible ``task`` (if any)."""
    return step.removesuffix(f"/{task}") if task else step
