"""From a request to a plan: what runs where, in which batches and phases, classified how.

:func:`prepare` reads the playbooks, the inventory and maint.yml and returns an immutable
:class:`RunPlan`; nothing is locked, recorded or run yet, and every bad input is a BadInput here.
:func:`selection` stops earlier, at the steps (chosen by ``--tags``/``--skip-tags``) and hosts of each
playbook, for ``maint run --list-hosts/--list-steps``: it connects to nothing and writes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint import playbooks as playbook_module
from maint.batches import batches
from maint.become import Keywords as BecomeKeywords
from maint.clock import Clock
from maint.config import Config
from maint.errors import BadInput
from maint.inventory import Host, with_defaults
from maint.inventory.cache import CachedInventory, open_inventory
from maint.playbooks import REMEDIATION_SUFFIX, Playbook, Step
from maint.provenance import in_ci
from maint.run.request import Pairs, ReasonRequired, RunRequest
from maint.vault import Revealed, reveal

if TYPE_CHECKING:  # the calendar code (croniter, dateutil) is imported only for a run kept to a window
    from maint import windows


@dataclass(frozen=True)
class PlannedStep:
    """A step of a playbook, scheduled for a host."""

    playbook: Playbook
    step: Step


@dataclass(frozen=True)
class Phase:
    """A stretch of the run: per-host steps over maint's own connections, or one fleet step for many hosts.

    Steps run in playbook order; a fleet step (an Ansible playbook) is a barrier: it starts when
    every host has finished the steps before it, and the steps after it wait for it.
    """

    work: Mapping[str, list[PlannedStep]]
    fleet: PlannedStep | None = None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Batch:
    """The hosts of one batch (``serial``) and the phases they go through."""

    hosts: tuple[str, ...]
    phases: tuple[Phase, ...]


@dataclass(frozen=True)
class RunPlan:
    """A run, planned: validated, resolved and classified, before anything is locked or recorded."""

    request: RunRequest
    run_id: str
    playbooks: tuple[Playbook, ...]
    inventory_digest: str
    hosts: Mapping[str, Host]
    work: Mapping[str, list[PlannedStep]]  # per host, its steps in order
    batches: tuple[Batch, ...]
    serial: tuple[str, ...]
    max_fail: float | None
    ansible_playbooks: Mapping[tuple[str, str], Path]  # (playbook, step id) of a fleet step -> its file
    classes: Mapping[tuple[str, str], tuple[str, str]]  # (playbook, step id) -> (tier, severity)
    window: windows.Window | None
    # The extra variables with their vault values decrypted, and the decrypted values (masked in records).
    vault: Revealed = dataclasses.field(default_factory=Revealed)

    @property
    def total_steps(self) -> int:
        return sum(len(steps) for steps in self.work.values())

    def classification(self, playbook: str, step: Step) -> tuple[str, str]:
        """The (tier, severity) of a step's results: maint.yml's overrides, else the playbook's."""
        return self.classes.get((playbook, step.id), (step.tier, step.severity))


def load_playbooks(references: Sequence[str | Playbook], project_dir: Path) -> list[Playbook]:
    """Load each referenced playbook (one built in memory is taken as it is); BadInput on the first bad one."""
    if not references:
        raise BadInput("no playbook given", hint="e.g. maint run health -i inventory.ini")
    return [reference if isinstance(reference, Playbook) else playbook_module.load(reference, project_dir)
            for reference in references]  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """The playbooks of a request, with the steps its tags choose, and the hosts each one runs on (after
    ``-l`` and the window); ``inventory`` is where they came from."""

    playbooks: tuple[Playbook, ...]
    hosts: Mapping[str, list[Host]]  # playbook name -> its hosts, in inventory order
    window: windows.Window | None
    inventory: CachedInventory

    def describe(self, become: BecomeKeywords) -> list[dict[str, Any]]:
        """Per playbook: its name, file, host pattern, hosts and chosen steps (id, type, tags, when, and the
        become keywords of the step, its playbook and ``become`` (the command line's) together), as
        ``maint run --list-hosts/--list-steps`` shows them."""
        return [{
            "playbook": playbook.name,
            "path": str(playbook.path),
            "pattern": playbook.hosts,
            "hosts": [host.name for host in self.hosts[playbook.name]],
            "steps": [{"id": step.id, "type": step.type, "tags": list(step.tags), "when": step.when or None,
                       "become": step.become.over(playbook.become).over(become).recorded()}
                      for step in playbook.steps],
        } for playbook in self.playbooks]  # fmt: skip


def selection(request: RunRequest, config: Config) -> Selection:
    """The playbooks (their steps chosen by ``request.tags``/``skip_tags``) and the hosts each runs on.

    Reads the playbooks, the inventory and the window of maint.yml; connects to nothing and writes nothing (not
    even the inventory cache). Raises BadInput for a bad playbook, inventory, pattern or window.
    """
    loaded = load_playbooks(request.playbooks, request.project_dir)
    playbooks = tuple(playbook_module.select_steps(p, request.tags, request.skip_tags) for p in loaded)
    names = [playbook.name for playbook in playbooks]
    if len(set(names)) != len(names):
        raise BadInput(f"the same playbook is named twice: {', '.join(names)}")
    cache_dir = request.state_dir / "cache" if request.inventory_cache else None
    inventory = open_inventory([str(source) for source in request.inventory], cache_dir, config.inventory_timeout)
    hosts_by_playbook = {playbook.name: inventory.select(playbook.hosts, request.limit) for playbook in playbooks}
    window = None
    if request.window:
        from maint.windows import find_window

        window = find_window(config.windows, request.window)
    if window is not None and not request.ignore_window:
        # A window covers its own hosts: the run works only those of them the selection has.
        covered = {host.name for host in inventory.select(window.hosts)}
        hosts_by_playbook = {
            name: [host for host in selected if host.name in covered] for name, selected in hosts_by_playbook.items()
        }
    return Selection(playbooks, hosts_by_playbook, window, inventory)


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


def prepare(request: RunRequest, config: Config, clock: Clock) -> RunPlan:
    """Validate ``request`` against maint.yml (``config``) and plan it.

    Reads the playbooks and the inventory (saving its cache); raises ReasonRequired or BadInput for
    anything invalid, before any host is locked or anything recorded.
    """
    if config.require_reason and not (request.reason or "").strip() and not in_ci(os.environ):
        raise ReasonRequired(
            f"{config.path or 'maint.yml'}: audit.require_reason is set: a manual run needs --reason",
            hint="e.g. --reason 'CHG-1234 kernel updates'",
        )
    if request.forks < 1:
        raise BadInput(f"--forks must be at least 1, got {request.forks}")
    chosen = selection(request, config)
    playbooks, hosts_by_playbook, window, inventory = chosen.playbooks, chosen.hosts, chosen.window, chosen.inventory
    if not any(playbook.steps for playbook in playbooks):
        given = [f"--tags {','.join(request.tags)}"] if request.tags else []
        given += [f"--skip-tags {','.join(request.skip_tags)}"] if request.skip_tags else []
        by = " ".join(given) or "default (every step is tagged never)"
        raise BadInput(f"no step of {', '.join(p.name for p in playbooks)} is chosen by {by}",
                       hint="see the steps and their tags: maint run PLAYBOOK --list-steps")  # fmt: skip
    inventory.save()
    hosts_by_playbook = _connection_defaults(hosts_by_playbook)
    _check_digests(request, playbooks)
    pairs: Pairs | None = None
    if request.selective:
        pairs = frozenset(
            (host.name, playbook.name, step.id)
            for playbook in playbooks for host in hosts_by_playbook[playbook.name] for step in playbook.steps
            if request.wanted(host.name, playbook.name, step.id)
        )  # fmt: skip
    work = plan(playbooks, hosts_by_playbook, pairs)
    if not work and pairs is not None:
        raise BadInput(f"nothing left to run in {request.continues}", hint="every (host, step) pair of it is done")
    if not work:
        patterns = ", ".join(sorted({playbook.hosts for playbook in playbooks}))
        limit = f" limited by '{request.limit}'" if request.limit else ""
        raise BadInput(
            f"no hosts matched '{patterns}'{limit} in {', '.join(map(str, request.inventory))}",
            hint="see 'maint inventory list -i ...'",
        )
    serial = request.serial if request.serial is not None else next(
        (playbook.serial for playbook in playbooks if playbook.serial), ()
    )  # fmt: skip
    max_fail = request.max_fail_percentage
    if max_fail is None:
        max_fail = next((p.max_fail_percentage for p in playbooks if p.max_fail_percentage is not None), None)
    planned_batches = tuple(
        Batch(tuple(members), tuple(phases(
            playbooks, {name: [h for h in chosen if h.name in members] for name, chosen in hosts_by_playbook.items()},
            pairs,
        )))
        for members in batches(list(work), serial)
    )  # fmt: skip
    # Decrypted here, after the cache was saved, so that the cache keeps the ciphertext.
    revealed = reveal(
        {host.name: host for selected in hosts_by_playbook.values() for host in selected},
        request.extra_vars, request.vault, [str(source) for source in request.inventory],
    )  # fmt: skip
    started = clock()
    return RunPlan(
        request=request,
        run_id=request.resume or f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
        playbooks=tuple(playbooks),
        inventory_digest=inventory.digest,
        hosts=revealed.hosts,
        work=work,
        batches=planned_batches,
        serial=tuple(serial),
        max_fail=max_fail,
        ansible_playbooks=_ansible_playbooks(planned_batches, request.project_dir),
        classes=_classes(playbooks, config),
        window=window,
        vault=revealed,
    )


def _classes(playbooks: Sequence[Playbook], config: Config) -> dict[tuple[str, str], tuple[str, str]]:
    """(tier, severity) of every step and remediation of ``playbooks``, maint.yml's overrides applied."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for playbook in playbooks:
        for step in playbook.steps:
            tasks = [step]
            if step.remediate is not None:
                tasks.append(dataclasses.replace(step.remediate, id=step.id + REMEDIATION_SUFFIX))
            for task in tasks:
                override = config.override(task.id, task.type)
                tier, severity = override.get("tier", task.tier), override.get("severity", task.severity)
                found[(playbook.name, task.id)] = (tier, severity)
    return found


def _connection_defaults(hosts_by_playbook: Mapping[str, Sequence[Host]]) -> dict[str, list[Host]]:
    """The hosts with ansible.cfg's remote_user, private_key_file and host_key_checking where their inventory sets
    none (applied after the inventory cache is saved: it keeps what the inventory says, whatever ansible.cfg says)."""
    from maint import ansible_config

    ansible = ansible_config.read()
    user, key_file = ansible.get("remote_user"), ansible.get("private_key_file")
    checking = ansible.get("host_key_checking")
    return {
        name: [with_defaults(host, user, key_file, checking) for host in hosts]
        for name, hosts in hosts_by_playbook.items()
    }


def _check_digests(request: RunRequest, playbooks: Sequence[Playbook]) -> None:
    """For resume and rerun: every playbook must be the one the run used (unless --allow-changed)."""
    if not request.digests or request.allow_changed:
        return
    for playbook in playbooks:
        if request.digests.get(playbook.name) not in (None, playbook.digest):
            raise BadInput(
                f"playbook '{playbook.name}' ({playbook.path}) changed since run {request.continues}",
                hint="use --allow-changed to run the new version (it is recorded)",
            )


def _ansible_playbooks(planned: Sequence[Batch], project_dir: Path) -> dict[tuple[str, str], Path]:
    """The Ansible playbook file of each fleet step, resolved before anything runs (BadInput if missing)."""
    found: dict[tuple[str, str], Path] = {}
    for batch in planned:
        for phase in batch.phases:
            if phase.fleet is None:
                continue
            playbook, step = phase.fleet.playbook, phase.fleet.step
            reference = step.params.get("playbook")
            if not isinstance(reference, str) or step.templates.get("playbook") is not None:
                raise BadInput(f"step '{step.id}': 'playbook' must be a file name, not a template",
                               source=str(playbook.path), line=step.line)  # fmt: skip
            try:
                path = playbook_module.resolve(reference, project_dir)
            except BadInput as error:
                raise BadInput(f"step '{step.id}': Ansible {error.message}", source=str(playbook.path),
                               line=step.line, hint=error.hint) from None  # fmt: skip
            found[(playbook.name, step.id)] = path
    return found
