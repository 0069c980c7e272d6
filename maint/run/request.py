"""What a run is asked to do: the user's request, what continues an earlier run, and how a run can end early."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint.become import Keywords
from maint.errors import ExitCode, MaintError

if TYPE_CHECKING:
    from maint.playbooks import Playbook
    from maint.vault import VaultOptions

# The summary of a step the run was stopped in (or before): maint resume runs it again.
INTERRUPTED = "interrupted: the run was stopped before this step finished"

Pairs = frozenset[tuple[str, str, str]]  # (host, playbook, step id)


@dataclass(frozen=True)
class RunRequest:
    """Everything ``maint run`` (or a resume, a rerun, a scheduled window) was asked to do."""

    playbooks: Sequence[str | Playbook]  # references to load, or playbooks built in memory (maint exec)
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
    only_pairs: Pairs | None = None
    done_pairs: Pairs = frozenset()
    digests: Mapping[str, str] = field(default_factory=dict)
    allow_changed: bool = False
    attempt_offset: int = 0
    wait: bool = False  # queue behind a run that works on the same hosts instead of refusing
    window: str | None = None  # the maintenance window (maint.yml) the run must keep to
    ignore_window: bool = False  # run although the window is closed (recorded)
    refs: Sequence[str] = ()  # change or ticket references the run is done under (CHG-1234)
    # Where the passwords of Ansible Vault values come from (files, a prompted password; never recorded).
    vault: VaultOptions | None = None
    # -b, --become-user, --become-method (the lowest precedence of become settings), and the password typed at
    # -K (never recorded).
    become: Keywords = field(default_factory=Keywords)
    become_password: str | None = field(default=None, repr=False, compare=False)
    # --tags and --skip-tags: the steps that run, chosen by their tags as Ansible chooses tasks (recorded).
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        """Where the run keeps its state beside the default store (the inventory cache, ansible-runner's records):
        ``.maint/`` beside the project's maint.yml, else the user's state directory (:mod:`maint.config.discovery`)."""
        from maint.config import discover

        return discover(self.project_dir).state_dir

    @property
    def become_passwords(self) -> tuple[str, ...]:
        """The become password typed at -K, if any, to mask wherever output is recorded."""
        return (self.become_password,) if self.become_password else ()

    @property
    def continues(self) -> str | None:
        """The run this one resumes or reruns, or None for a new run."""
        return self.resume or self.rerun_of

    def wanted(self, host: str, playbook: str, step: str) -> bool:
        """Whether (host, playbook, step) is to run: in ``only_pairs`` (when given) and not already done."""
        pair = (host, playbook, step)
        return (self.only_pairs is None or pair in self.only_pairs) and pair not in self.done_pairs

    @property
    def selective(self) -> bool:
        """Whether the request runs chosen (host, step) pairs rather than whole playbooks (resume, rerun)."""
        return self.only_pairs is not None or bool(self.done_pairs)


class RunInterrupted(MaintError):
    """The run was stopped by SIGINT or SIGTERM; what finished is recorded, the run is resumable."""

    exit_code = ExitCode.INTERRUPTED


class ReasonRequired(MaintError):
    """maint.yml's ``audit.require_reason`` and a manual run without ``--reason``."""

    exit_code = ExitCode.USAGE


class NotStarted(MaintError):
    """The run did not start: its maintenance window is closed (recorded as not-started)."""

    exit_code = ExitCode.NOT_STARTED
