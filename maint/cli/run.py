"""``maint run``: run playbooks on the hosts of an inventory and record every result."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from maint.cli.options import (
    TIMEOUT,
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
from maint.terminal import control, styled


class Progress:
    """A live one-line progress display on a terminal; silent elsewhere."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.hosts_total = 0
        self.hosts_done = 0
        self.results = 0
        self.problems: dict[str, int] = {}
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self._finished = threading.Event()

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
        """Show a warning the run sends as it goes (a window's ping that failed), on stderr."""
        styled(f"maint: warning: {message}", fg="yellow")

    def result(self, record: Any) -> None:
        """Count a result."""
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


@click.command()
@click.argument("playbooks", nargs=-1, required=True, metavar="PLAYBOOK...")
@inventory_option
@click.option("-l", "--limit", metavar="PATTERN", help="Only hosts matching this Ansible host pattern.")
@click.option("-f", "--forks", type=int, help="Hosts worked on at once. Default: forks in ansible.cfg, else 50.")
@click.option(
    "-e", "--extra-vars", "extra_vars", multiple=True, metavar="KEY=VALUE",
    help="Variables for the step templates (KEY=VALUE, JSON, or @file); highest precedence.",
)  # fmt: skip
@click.option(
    "-C", "--check", "check_mode", is_flag=True,
    help="Change nothing: tasks run their dry run if they have one, else are skipped; checks run as usual.",
)  # fmt: skip
@click.option("--reason", metavar="TEXT", help="Why this run happens (recorded for the audit).")
@click.option("--ref", "refs", multiple=True, metavar="REF",
              help="A change request or ticket this run is done under, e.g. CHG-1234 (repeatable; recorded).")
@click.option(
    "--connect-timeout", type=TIMEOUT,
    help="Seconds for TCP connect, SSH banner, key exchange and login. Default: timeout in ansible.cfg, else 10.",
)  # fmt: skip
@click.option(
    "--no-inventory-cache", "inventory_cache", is_flag=True, flag_value=False, default=True,
    help="Parse the inventory with ansible-core even when .maint/cache holds this exact inventory.",
)  # fmt: skip
@click.option("--timeout", "step_timeout", type=TIMEOUT,
              help="Seconds per step, or a duration such as 15m (overrides playbook timeouts; at most 7d).")
@click.option(
    "--serial", metavar="N|N%|[1,5,20%]",
    help="Rolling batches: hosts per batch (a number, a percentage, or a list; the last size repeats).",
)  # fmt: skip
@click.option(
    "--max-fail-percentage", "max_fail_percentage", type=click.FloatRange(0, 100), metavar="P",
    help="Stop the remaining batches when more than P% of a batch's hosts failed (exit 6).",
)  # fmt: skip
@click.option("--window", metavar="NAME", help="Keep to this maintenance window of maint.yml (exit 7 when closed).")
@click.option("--ignore-window", is_flag=True, help="Run although the window is closed (recorded in the run).")
@click.option("--wait", is_flag=True, help="If another run works on some of these hosts, wait for it (else exit 7).")
@click.option(
    "--no-tickets", "tickets", is_flag=True, flag_value=False, default=True,
    help="Record results only: no alert state, no tickets, no delivery to ticket backends.",
)  # fmt: skip
@become_option
@vault_option
@junit_xml_option
@format_option
@db_option
def run(
    playbooks: tuple[str, ...],
    inventory: tuple[str, ...],
    limit: str | None,
    forks: int | None,
    extra_vars: tuple[str, ...],
    check_mode: bool,
    reason: str | None,
    refs: tuple[str, ...],
    connect_timeout: float | None,
    step_timeout: float | None,
    inventory_cache: bool,
    serial: str | None,
    max_fail_percentage: float | None,
    window: str | None,
    ignore_window: bool,
    wait: bool,
    tickets: bool,
    junit_xml: Path | None,
    output_format: str,
    db_url: str | None,
) -> int:
    """Run PLAYBOOK(s) on the inventory's hosts and record every result.

    PLAYBOOK is a name (a project playbook in playbooks/ beside maint.yml, else a built-in one such as `health`)
    or a path to a YAML file. Exit codes: 0 ok, 3 bad input, 4 a step failed, 5 a host was
    unreachable (and nothing failed), 6 aborted by --max-fail-percentage, 7 not started (window closed,
    or the hosts are busy with another run), 8 the store could not be written (finished results are
    kept in a spool; `maint resume RUN_ID` records them), 130 interrupted.
    """
    from maint import ansible_config
    from maint.inventory import resolve_sources
    from maint.run import RunRequest

    become, become_password = become_from_options()
    if forks is None or connect_timeout is None:
        ansible = ansible_config.read()
        forks = int(ansible.get("forks", 50)) if forks is None else forks
        connect_timeout = float(ansible.get("timeout", 10.0)) if connect_timeout is None else connect_timeout
    request = RunRequest(
        playbooks=playbooks,
        inventory=resolve_sources(inventory),
        limit=limit,
        forks=forks,
        extra_vars=parse_extra_vars(extra_vars),
        reason=reason,
        refs=refs,
        argv=["maint", *sys.argv[1:]],
        connect_timeout=connect_timeout,
        step_timeout=step_timeout,
        db_url=db_url,
        project_dir=project_dir(),
        inventory_cache=inventory_cache,
        check_mode=check_mode,
        tickets=tickets,
        serial=_serial(serial),
        max_fail_percentage=max_fail_percentage,
        wait=wait,
        window=window,
        ignore_window=ignore_window,
        vault=vault_from_options(),
        become=become,
        become_password=become_password,
    )
    if ignore_window and not window:
        raise click.UsageError("--ignore-window needs --window NAME")
    return execute(request, output_format, junit_xml)


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


def execute(request: Any, output_format: str, junit_xml: Path | None = None) -> int:
    """Run ``request`` with live progress, print the summary (or JSON) and return the run's exit code.

    A run kept to a window sends the window's pings (the library does); a failed ping prints a warning
    and changes nothing else. ``junit_xml`` is a file to write the run to as JUnit XML; when it cannot be
    written, one error line says so and a run that was ok exits 3 (bad input).
    """
    from maint.reports.text import run_summary, tickets_summary
    from maint.run import run

    if junit_xml is not None:  # refused before the run rather than after it (exit 3)
        from maint.reports.formats import check_target, store_file

        check_target(junit_xml, force=force_given(), store=store_file(request.db_url), force_option="--force-junit-xml")
    live = output_format == "text" and sys.stderr.isatty() and not os.environ.get("CI")
    progress = Progress(live)
    try:
        document = run(request, observer=progress)
    finally:
        progress.finish()
    for warning in [*(document.tickets or {}).get("warnings", []), *document.warnings]:
        styled(f"maint: warning: {warning}", fg="yellow")
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
