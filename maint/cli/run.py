"""``maint run``: run playbooks on the hosts of an inventory and record every result."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from maint.cli.completion import host_patterns, playbook_names, window_names
from maint.cli.options import (
    TIMEOUT,
    F,
    become_from_options,
    become_option,
    db_option,
    echo_json,
    force_given,
    format_option,
    inventory_option,
    junit_xml_option,
    parse_extra_vars,
    project_dir,
    vault_from_options,
    vault_option,
)
from maint.cli.verbosity import verbose_option, verbosity
from maint.terminal import control, styled


class Progress:
    """A live one-line progress display on a terminal; silent elsewhere."""

    def __init__(self, live: bool, verbosity: int = 0) -> None:
        self.live = live
        self.verbosity = verbosity
        self.hosts_total = 0
        self.hosts_done = 0
        self.results = 0
        self.problems: dict[str, int] = {}
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self.shown: list[str] = []  # the warnings shown as they happened

    def _tick(self) -> None:
        while not self._finished.wait(0.5):
            self._draw(force=True)

    def run_started(self, run: Any, hosts: int, steps: int) -> None:
        """Say which run started, on stderr."""
        self.hosts_total = hosts
        click.echo(f"maint: run {run.id}: {hosts} hosts, {steps} steps", err=True)
        self._draw(force=True)
        if self.live:
            # Redraws twice a second, so the clock moves and throttled updates still show.
            threading.Thread(target=self._tick, name="maint-progress", daemon=True).start()

    def waiting(self, message: str) -> None:
        """Say, on stderr, which run this one queues behind (--wait)."""
        click.echo(f"maint: {message}", err=True)

    def warning(self, message: str) -> None:
        """Show a warning the run sends as it goes (a ping or a notification that failed), on stderr."""
        self.shown.append(message)
        styled(f"maint: warning: {message}", fg="yellow")

    def result(self, record: Any) -> None:
        """Count a result; with -v show it, with the command it sent (and, -vv, its output)."""
        if self.verbosity:
            from maint.reports.text import result_detail

            lines = result_detail(vars(record), self.verbosity)  # read only: no copy (asdict deep-copies)
            with self._lock:
                if self.live:
                    control("\r\x1b[K")
                click.echo("\n".join(lines), err=True)
        self.results += 1
        if record.status not in ("ok", "skipped"):
            self.problems[record.status] = self.problems.get(record.status, 0) + 1
        self._draw()

    def host_finished(self, host: str) -> None:
        """Count a finished host."""
        self.hosts_done += 1
        self._draw(force=self.hosts_done == self.hosts_total)

    def _draw(self, force: bool = False) -> None:
        if not self.live or self._finished.is_set():
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        with self._lock:
            self._last_draw = now
            self._write(now)

    def _write(self, now: float) -> None:
        problems = ", ".join(f"{count} {status}" for status, count in sorted(self.problems.items()))
        line = (
            f"[{self.hosts_done}/{self.hosts_total} hosts] {self.results} results"
            f"{', ' + problems if problems else ''}  {now - self.started:.1f}s"
        )
        control("\r\x1b[K", line)

    def finish(self) -> None:
        """End the live line."""
        self._finished.set()
        if self.live:
            with self._lock:
                control("\r\x1b[K")


def _serial(value: str | None) -> tuple[str, ...] | None:
    from maint.batches import parse_serial

    if value is None:
        return None
    try:
        return parse_serial(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--serial") from None


def _names(_context: click.Context, _parameter: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Tags given as ``--tags a,b --tags c``: each name once, in order."""
    names = [name.strip() for value in values for name in value.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def run_options(function: F) -> F:
    """The options ``maint run`` and ``maint exec`` share (see :func:`request_fields`)."""
    options = (
        inventory_option,
        click.option("-l", "--limit", metavar="PATTERN", shell_complete=host_patterns,
                     help="Only hosts matching this Ansible host pattern."),
        click.option("-f", "--forks", type=int,
                     help="Hosts worked on at once. Default: forks in ansible.cfg, else 50."),
        click.option("-e", "--extra-vars", "extra_vars", multiple=True, metavar="KEY=VALUE",
                     help="Variables for the step templates (KEY=VALUE, JSON, or @file); highest precedence."),
        click.option("--reason", metavar="TEXT", help="Why this run happens (recorded for the audit)."),
        click.option("--ref", "refs", multiple=True, metavar="REF",
                     help="A change request or ticket this run is done under, e.g. CHG-1234 (repeatable; recorded)."),
        click.option("--connect-timeout", type=TIMEOUT, help="Seconds for TCP connect, SSH banner, key exchange and "
                     "login. Default: timeout in ansible.cfg, else 10."),
        click.option("--no-inventory-cache", "inventory_cache", is_flag=True, flag_value=False, default=True,
                     help="Parse the inventory with ansible-core even when .maint/cache holds this exact inventory."),
        click.option("--timeout", "step_timeout", type=TIMEOUT, help="Seconds per step, or a duration such as 15m "
                     "(overrides playbook timeouts; at most 7d)."),
        click.option("--wait", is_flag=True,
                     help="If another run works on some of these hosts, wait for it (else exit 7)."),
        become_option, vault_option, verbose_option, format_option, db_option,
    )  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def request_fields(
    inventory: tuple[str, ...], limit: str | None, forks: int | None, extra_vars: tuple[str, ...], reason: str | None,
    refs: tuple[str, ...], connect_timeout: float | None, inventory_cache: bool, step_timeout: float | None,
    wait: bool, db_url: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The :class:`maint.run.RunRequest` fields of :func:`run_options`' values (prompting for -K and
    --ask-vault-pass; forks and the connect timeout not given are ansible.cfg's, else 50 and 10 s); the argv is
    this process's, the project directory that of the maint.yml in use."""
    from maint import ansible_config
    from maint.inventory import resolve_sources

    become, become_password = become_from_options()
    if forks is None or connect_timeout is None:
        ansible = ansible_config.read()
        forks = int(ansible.get("forks", 50)) if forks is None else forks
        connect_timeout = float(ansible.get("timeout", 10.0)) if connect_timeout is None else connect_timeout
    return {
        "inventory": resolve_sources(inventory), "limit": limit, "forks": forks,
        "extra_vars": parse_extra_vars(extra_vars), "reason": reason, "refs": refs, "argv": ["maint", *sys.argv[1:]],
        "connect_timeout": connect_timeout, "step_timeout": step_timeout, "db_url": db_url,
        "project_dir": project_dir(), "inventory_cache": inventory_cache, "wait": wait, "vault": vault_from_options(),
        "become": become, "become_password": become_password,
    }  # fmt: skip


@click.command()
@click.argument("playbooks", nargs=-1, required=True, metavar="PLAYBOOK...", shell_complete=playbook_names)
@run_options
@click.option(
    "-C", "--check", "check_mode", is_flag=True,
    help="Change nothing: tasks run their dry run if they have one, else are skipped; checks run as usual.",
)  # fmt: skip
@click.option("-t", "--tags", "tags", multiple=True, metavar="TAG[,TAG]", callback=_names,
              help="Only the steps with one of these tags (and those tagged always), as in Ansible (repeatable).")
@click.option("--skip-tags", "skip_tags", multiple=True, metavar="TAG[,TAG]", callback=_names,
              help="Not the steps with one of these tags (repeatable); wins over --tags.")
@click.option("--list-hosts", is_flag=True, help="Print the hosts each playbook would run on, then exit 0 "
              "(connects to nothing, records nothing).")
@click.option("--list-steps", is_flag=True, help="Print the steps each playbook would run (type, tags, when, "
              "become), then exit 0 (connects to nothing, records nothing).")
@click.option(
    "--serial", metavar="N|N%|[1,5,20%]",
    help="Rolling batches: hosts per batch (a number, a percentage, or a list; the last size repeats).",
)  # fmt: skip
@click.option(
    "--max-fail-percentage", "max_fail_percentage", type=click.FloatRange(0, 100), metavar="P",
    help="Stop the remaining batches when more than P% of a batch's hosts failed (exit 6).",
)  # fmt: skip
@click.option("--window", metavar="NAME", shell_complete=window_names,
              help="Keep to this maintenance window of maint.yml (exit 7 when closed).")
@click.option("--ignore-window", is_flag=True, help="Run although the window is closed (recorded in the run).")
@click.option(
    "--no-tickets", "tickets", is_flag=True, flag_value=False, default=True,
    help="Record results only: no alert state, no tickets, no delivery to ticket backends.",
)  # fmt: skip
@junit_xml_option
def run(
    playbooks: tuple[str, ...],
    check_mode: bool,
    tags: tuple[str, ...],
    skip_tags: tuple[str, ...],
    list_hosts: bool,
    list_steps: bool,
    serial: str | None,
    max_fail_percentage: float | None,
    window: str | None,
    ignore_window: bool,
    tickets: bool,
    junit_xml: Path | None,
    output_format: str,
    **shared: Any,
) -> int:
    """Run PLAYBOOK(s) on the inventory's hosts and record every result.

    PLAYBOOK is a name (a project playbook in playbooks/ beside maint.yml, else a built-in one such as `health`)
    or a path to a YAML file. Exit codes: 0 ok, 3 bad input, 4 a step failed, 5 a host was
    unreachable (and nothing failed), 6 aborted by --max-fail-percentage, 7 not started (window closed,
    or the hosts are busy with another run), 8 the store could not be written (finished results are
    kept in a spool; `maint resume RUN_ID` records them), 130 interrupted.
    """
    from maint.run import RunRequest

    if ignore_window and not window:
        raise click.UsageError("--ignore-window needs --window NAME")
    request = RunRequest(
        playbooks=playbooks,
        check_mode=check_mode,
        tickets=tickets,
        serial=_serial(serial),
        max_fail_percentage=max_fail_percentage,
        window=window,
        ignore_window=ignore_window,
        tags=tags,
        skip_tags=skip_tags,
        **request_fields(**shared),
    )
    if list_hosts or list_steps:
        return show_selection(request, output_format, list_hosts, list_steps)
    return execute(request, output_format, junit_xml)


def show_selection(request: Any, output_format: str, hosts: bool, steps: bool) -> int:
    """Print the hosts and/or the steps of each playbook of ``request`` (``maint run --list-hosts/--list-steps``);
    returns 0. Nothing is connected to or recorded."""
    from maint import config
    from maint.reports.text import selection_text
    from maint.run import selection

    described = selection(request, config.load(request.project_dir)).describe(request.become)
    if output_format == "json":
        keep = {"playbook", "path", "pattern", *(["hosts"] if hosts else []), *(["steps"] if steps else [])}
        echo_json([{key: value for key, value in entry.items() if key in keep} for entry in described])
    else:
        click.echo(selection_text(described, hosts, steps))
    return 0


def show_ping_warning(result: Any) -> None:
    """Print ``maint: warning: ping ... failed: ...`` for a failed ping (None or a delivered one: nothing)."""
    if result is not None and result.warning:
        styled(f"maint: warning: {result.warning}", fg="yellow")


def _write_junit(document: Any, path: Path, exit_code: int, store_url: str | None = None) -> int:
    """Write the recorded run to ``path`` as JUnit XML; returns the exit code maint ends with.

    The run is recorded whatever happens here, so a path that cannot be written is one error line
    (with the command that writes the file later), not an exception that would hide the run's summary.
    """
    from maint.errors import ExitCode, MaintError
    from maint.reports.formats import write_report
    from maint.reports.junit import junit_xml

    try:
        write_report(path, junit_xml(document.as_dict()), force=force_given(), store_url=store_url,
                     force_option="--force-junit-xml")  # fmt: skip
    except MaintError as error:
        run_id = document.run["id"]
        styled(f"maint: error: {error}; the run is recorded: maint report {run_id} --format junit -o PATH", fg="red")
        return exit_code or int(ExitCode.BAD_INPUT)
    return exit_code


def perform(request: Any, progress: Progress) -> Any:
    """Run ``request``, telling ``progress`` (the run's observer) as it goes; print the ticket and run warnings on
    stderr and return the run's document."""
    from maint.run import run

    try:
        document = run(request, observer=progress)
    finally:
        progress.finish()
    shown = set(progress.shown)  # the warnings the run sent as it went (a notifier, a ping) were printed then
    for warning in [*(document.tickets or {}).get("warnings", []), *document.warnings]:
        if warning not in shown:
            styled(f"maint: warning: {warning}", fg="yellow")
    return document


def execute(request: Any, output_format: str, junit_xml: Path | None = None) -> int:
    """Run ``request`` with live progress, print the summary (or JSON) and return the run's exit code.

    The library sends the pings and notifications; a failed one prints a warning (once) and changes
    nothing else. ``junit_xml`` is a file to write the run to as JUnit XML; when it cannot be
    written, one error line says so and a run that was ok exits 3 (bad input).
    """
    from maint.reports.text import run_summary, tickets_summary

    if junit_xml is not None:  # refused before the run rather than after it (exit 3)
        from maint.reports.formats import check_target, store_file

        check_target(junit_xml, force=force_given(), store=store_file(request.db_url), force_option="--force-junit-xml")
    live = output_format == "text" and sys.stderr.isatty() and not os.environ.get("CI")
    document = perform(request, Progress(live, verbosity()))
    if output_format == "json":
        echo_json(document.as_dict())
    else:
        click.echo(run_summary(document.as_dict()))
        if document.tickets is not None:
            click.echo(tickets_summary(document.tickets))
    exit_code: int = document.run["exit_code"]
    if junit_xml is not None:
        exit_code = _write_junit(document, junit_xml, exit_code, request.db_url)
    return exit_code
