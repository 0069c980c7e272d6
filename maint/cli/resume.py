"""``maint resume`` and ``maint rerun``: finish an interrupted or aborted run, or run its failures again."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from maint.cli.options import F, db_option, format_option, junit_xml_option, parse_extra_vars
from maint.cli.run import execute

FAILED_STATUSES = ("failed", "error", "unreachable")


def pair(result: Mapping[str, Any]) -> tuple[str, str, str]:
    """(host, playbook, step id) of a result; an Ansible task's result counts for its ``ansible`` step."""
    from maint.store.classify import step_id

    return (result["host"], result["playbook"], step_id(str(result["step"]), result.get("task")))


def finished_pairs(results: Iterable[Mapping[str, Any]]) -> frozenset[tuple[str, str, str]]:
    """The (host, playbook, step id) pairs a run finished: each pair's last attempt, unless it was skipped
    because of the run (interrupted, aborted, window closed), which ``maint resume`` runs."""
    from maint.store import last_attempts
    from maint.store.classify import NOT_STARTED

    return frozenset(
        pair(result) for result in last_attempts(results).values() if result["skip_kind"] not in NOT_STARTED
    )


def _request(document: dict[str, Any], extra: tuple[str, ...], allow_changed: bool, db_url: str | None,
             reason: str | None, **changes: Any) -> Any:  # fmt: skip
    from maint.errors import BadInput
    from maint.run import RunRequest
    from maint.secrets import holds_mask

    options = document["options"]
    extra_vars = dict(options.get("extra_vars") or {})
    extra_vars.update(parse_extra_vars(extra))
    hidden = sorted(name for name, value in extra_vars.items() if holds_mask(value))
    if hidden:
        raise BadInput(
            f"run {document['id']} had secret variables that were not recorded: {', '.join(hidden)}",
            hint=f"give them again: -e {hidden[0]}=...",
        )
    return RunRequest(
        playbooks=[playbook["path"] for playbook in document["playbooks"]],
        inventory=list(document["inventory"]["sources"]),
        limit=options.get("limit"),
        forks=options.get("forks") or 50,
        extra_vars=extra_vars,
        reason=reason or document.get("reason"),
        argv=["maint", *sys.argv[1:]],
        connect_timeout=options.get("connect_timeout") or 10.0,
        step_timeout=options.get("step_timeout"),
        db_url=db_url,
        project_dir=Path.cwd(),
        check_mode=bool(options.get("check_mode")),
        serial=tuple(options.get("serial") or ()),
        max_fail_percentage=options.get("max_fail_percentage"),
        digests={playbook["name"]: playbook["digest"] for playbook in document["playbooks"]},
        allow_changed=allow_changed,
        **changes,
    )


def _load(run_id: str, db_url: str | None) -> dict[str, Any]:
    import socket

    from maint.clock import timestamp, utc_now
    from maint.errors import StoreUnavailable
    from maint.processes import process_alive
    from maint.store import Store

    store = Store(db_url)
    store.reap_stale_runs(socket.gethostname(), process_alive, timestamp(utc_now()))
    document = store.get_run(run_id).as_dict()
    store.close()
    waiting = store.unrecorded.get(document["id"])
    if waiting is not None:
        # Going on now would run again the steps whose results wait there.
        raise StoreUnavailable(store.safe_url, "not writable yet", message=(
            f"run {document['id']}: finished results wait in {waiting} until store {store.safe_url} can be "
            "written; try again then"))  # fmt: skip
    return document


def again_options(verb: str) -> Callable[[F], F]:
    """The options resume and rerun share: -e, --allow-changed, --reason, --junit-xml, --format, --db."""

    def decorate(function: F) -> F:
        for option in reversed((
            click.option("-e", "--extra-vars", "extra", multiple=True, metavar="KEY=VALUE",
                         help="Give secret variables again (they are never recorded)."),
            click.option("--allow-changed", is_flag=True,
                         help=f"{verb} even if a playbook changed since (recorded)."),
            click.option("--reason", metavar="TEXT", help="Why (recorded; default: the run's own reason)."),
            junit_xml_option, format_option, db_option,
        )):  # fmt: skip
            function = option(function)
        return function

    return decorate


@click.command()
@click.argument("run_id")
@again_options("Resume")
def resume(
    run_id: str, extra: tuple[str, ...], allow_changed: bool, reason: str | None, junit_xml: Path | None,
    output_format: str, db_url: str | None,
) -> int:
    """Continue an interrupted or aborted run: only the (host, step) pairs it did not finish.

    The results are added to the same run, with the same playbooks (refused if one changed, unless
    --allow-changed), inventory, limit and variables.
    """
    from maint.errors import BadInput

    document = _load(run_id, db_url)
    if document["status"] not in ("interrupted", "aborted"):
        raise BadInput(f"run {document['id']} is {document['status']}: only an interrupted or aborted run resumes",
                       hint="maint rerun RUN_ID --failed runs its failures again")  # fmt: skip
    done = finished_pairs(document["results"])
    offset = max((result["attempt"] for result in document["results"]), default=0)
    request = _request(document, extra, allow_changed, db_url, reason, resume=document["id"], done_pairs=done,
                       attempt_offset=offset)  # fmt: skip
    return execute(request, output_format, junit_xml=junit_xml)


@click.command()
@click.argument("run_id")
@click.option("--failed", "failed_only", is_flag=True, required=True,
              help="Only the (host, step) pairs that failed, could not run or were unreachable.")  # fmt: skip
@again_options("Rerun")
def rerun(
    run_id: str, failed_only: bool, extra: tuple[str, ...], allow_changed: bool, reason: str | None,
    junit_xml: Path | None, output_format: str, db_url: str | None,
) -> int:
    """Run the failed (host, step) pairs of a run again, as a new run linked to it."""
    from maint.errors import BadInput
    from maint.store import last_attempts

    document = _load(run_id, db_url)
    failed = frozenset(
        pair(result) for result in last_attempts(document["results"]).values() if result["status"] in FAILED_STATUSES
    )
    if not failed:
        raise BadInput(f"run {document['id']} has no failed, error or unreachable step", hint="nothing to rerun")
    request = _request(document, extra, allow_changed, db_url, reason, rerun_of=document["id"], only_pairs=failed)
    return execute(request, output_format, junit_xml=junit_xml)
