"""What continues an earlier run: ``maint resume`` (the pairs an interrupted or aborted run did not
finish, added to the same run) and ``maint rerun --failed`` (its failures, as a new run linked to it).

Both replay the recorded run's request (playbooks, inventory, limit, variables, options, --tags and
--skip-tags); what is done is read from the results' ``skip_kind`` column, never from their text. The
playbook of ``maint exec`` is built again from its recorded recipe (pattern, command, template).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint.become import Keywords
from maint.clock import timestamp, utc_now
from maint.errors import BadInput, StoreUnavailable
from maint.playbooks import Playbook, adhoc
from maint.processes import process_alive
from maint.run.request import Pairs, RunRequest
from maint.secrets import holds_mask
from maint.store import Store, last_attempts
from maint.store.classify import NOT_STARTED, step_id

if TYPE_CHECKING:
    from maint.vault import VaultOptions

FAILED_STATUSES = ("failed", "error", "unreachable")
RESUMABLE = ("interrupted", "aborted")


def pair(result: Mapping[str, Any]) -> tuple[str, str, str]:
    """(host, playbook, step id) of a result; an Ansible task's result counts for its ``ansible`` step."""
    return (result["host"], result["playbook"], step_id(str(result["step"]), result.get("task")))


def finished_pairs(results: Iterable[Mapping[str, Any]]) -> Pairs:
    """The (host, playbook, step id) pairs a run finished: each pair's last attempt, unless it was skipped
    because of the run (interrupted, aborted, window closed), which ``maint resume`` runs."""
    return frozenset(
        pair(result) for result in last_attempts(results).values() if result["skip_kind"] not in NOT_STARTED
    )


def failed_pairs(results: Iterable[Mapping[str, Any]]) -> Pairs:
    """The pairs whose last attempt failed, could not run or was unreachable (``maint rerun --failed``)."""
    return frozenset(pair(result) for result in last_attempts(results).values() if result["status"] in FAILED_STATUSES)


def load(run_id: str, db_url: str | None) -> dict[str, Any]:
    """The recorded run ``run_id`` (a prefix or ``last``) as a document. Raises StoreUnavailable while its
    finished results still wait in a spool: going on now would run those steps again."""
    store = Store(db_url)
    try:
        store.reap_stale_runs(socket.gethostname(), process_alive, timestamp(utc_now()))
        document = store.get_run(run_id).as_dict()
    finally:
        store.close()
    waiting = store.unrecorded.get(document["id"])
    if waiting is not None:
        raise StoreUnavailable(store.safe_url, "not writable yet", message=(
            f"run {document['id']}: finished results wait in {waiting} until store {store.safe_url} can be "
            "written; try again then"))  # fmt: skip
    return document


def resumption(document: Mapping[str, Any], extra_vars: Mapping[str, Any], **options: Any) -> RunRequest:
    """The request that finishes the recorded run ``document``: only its unfinished pairs, added to it.
    ``options`` as for :func:`replay`. Raises BadInput unless the run was interrupted or aborted."""
    if document["status"] not in RESUMABLE:
        raise BadInput(f"run {document['id']} is {document['status']}: only an interrupted or aborted run resumes",
                       hint="maint rerun RUN_ID --failed runs its failures again")  # fmt: skip
    offset = max((result["attempt"] for result in document["results"]), default=0)
    return replay(document, extra_vars, resume=document["id"], done_pairs=finished_pairs(document["results"]),
                  attempt_offset=offset, **options)  # fmt: skip


def rerun(document: Mapping[str, Any], extra_vars: Mapping[str, Any], **options: Any) -> RunRequest:
    """The request that runs the failed pairs of ``document`` again as a new run linked to it. Raises
    BadInput when nothing failed."""
    failed = failed_pairs(document["results"])
    if not failed:
        raise BadInput(f"run {document['id']} has no failed, error or unreachable step", hint="nothing to rerun")
    return replay(document, extra_vars, rerun_of=document["id"], only_pairs=failed, **options)


def replay(
    document: Mapping[str, Any], extra_vars: Mapping[str, Any], *, argv: Sequence[str], project_dir: Path,
    db_url: str | None = None, reason: str | None = None, allow_changed: bool = False,
    vault: VaultOptions | None = None, become_password: str | None = None, **continuation: Any,
) -> RunRequest:  # fmt: skip
    """The recorded request of ``document`` again, with ``extra_vars`` added (secret variables were never
    recorded: BadInput names those not given again) and the ``continuation`` fields (resume, rerun_of,
    only_pairs, done_pairs, attempt_offset) of :class:`RunRequest`; ``vault``: the vault password sources
    (never recorded, so given again), ``become_password`` that of -K."""
    options = document["options"]
    variables = {**(options.get("extra_vars") or {}), **extra_vars}
    hidden = sorted(name for name, value in variables.items() if holds_mask(value))
    if hidden:
        raise BadInput(
            f"run {document['id']} had secret variables that were not recorded: {', '.join(hidden)}",
            hint=f"give them again: -e {hidden[0]}=...",
        )
    return RunRequest(
        playbooks=[_playbook(document["id"], playbook) for playbook in document["playbooks"]],
        inventory=list(document["inventory"]["sources"]),
        limit=options.get("limit"),
        forks=options.get("forks") or 50,
        extra_vars=variables,
        reason=reason or document.get("reason"),
        argv=list(argv),
        connect_timeout=options.get("connect_timeout") or 10.0,
        step_timeout=options.get("step_timeout"),
        db_url=db_url,
        project_dir=project_dir,
        check_mode=bool(options.get("check_mode")),
        serial=tuple(options.get("serial") or ()),
        max_fail_percentage=options.get("max_fail_percentage"),
        digests={playbook["name"]: playbook["digest"] for playbook in document["playbooks"]},
        allow_changed=allow_changed,
        vault=vault,
        become=Keywords.from_record(options.get("become")),
        become_password=become_password,
        tags=tuple(options.get("tags") or ()),
        skip_tags=tuple(options.get("skip_tags") or ()),
        **continuation,
    )


def _playbook(run_id: str, recorded: Mapping[str, Any]) -> str | Playbook:
    """A recorded playbook to run again: its path, or the ``maint exec`` playbook built from its recipe. Raises
    BadInput for an ad-hoc command whose secret was masked in the record."""
    recipe = recorded.get("exec")
    if recipe is None:
        return str(recorded["path"])
    if recipe.get("redacted"):
        raise BadInput(f"run {run_id}'s command held a secret that was not recorded: {recipe['command']}",
                       hint="run it again with maint exec")  # fmt: skip
    return adhoc(recipe["hosts"], recipe["command"], bool(recipe.get("template", True)))
