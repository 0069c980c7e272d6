"""Plain-text renderings of runs for terminals and CI logs."""

from __future__ import annotations

import re
import shlex
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from maint.terminal import escape_controls

STATUS_COLUMNS = ("ok", "warning", "failed", "error", "unreachable", "skipped")
EXIT_MEANINGS = {
    0: "every step ok",
    3: "bad input",
    4: "at least one step failed",
    5: "no step failed, but at least one host was unreachable",
    6: "aborted: the failure threshold was crossed",
    7: "not started: outside the maintenance window",
    8: "the store could not be written; finished results were kept in the spool",
    130: "interrupted; what finished is recorded",
}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A left-aligned text table (columns listed in ``right`` are right-aligned); control characters in
    cells are shown escaped (maint.terminal) before the widths are measured, so columns stay aligned."""
    cells = [[escape_controls(str(value)) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(widths[index]) if index in right else value.ljust(widths[index])
            for index, value in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])


def duration_between(started: str | None, finished: str | None) -> str:
    """Seconds between two stored timestamps, as ``12.3s``, or ``-``."""
    import datetime as dt

    if not started or not finished:
        return "-"
    start = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(finished.replace("Z", "+00:00"))
    return f"{(end - start).total_seconds():.1f}s"


def result_detail(result: Mapping[str, Any], verbosity: int) -> list[str]:
    """One result as ``-v`` shows it: ``host | step | status | summary``, then (``-v``) the command it sent to
    the host (``$ ...``, secrets masked when it was recorded) and (``-vv``) its recorded output, indented."""
    lines = [f"{result['host']} | {result['step']} | {result['status']} | {result['summary']}"]
    if verbosity >= 1 and result.get("command"):
        command = result["command"].splitlines()
        lines += [f"  $ {command[0]}", *(f"    {line}" for line in command[1:])]
    if verbosity >= 2 and result.get("output"):
        lines += [f"  | {line}" for line in result["output"].splitlines()]
    return lines


def run_summary(document: Mapping[str, Any], problems_limit: int = 50, verbosity: int = 0) -> str:
    """The end-of-run summary: a step-by-status table, the problems, and what the exit code means; with
    ``verbosity`` (``runs show -v``) first every result with its command (and, from 2, its output)."""
    results: list[Mapping[str, Any]] = document["results"]
    hosts = document.get("hosts") or sorted({result["host"] for result in results})
    lines = [
        f"run {document['id']}: {document['status']} "
        f"({len(hosts)} hosts, {len(results)} results, "
        f"{duration_between(document['started'], document['finished'])})"
    ]
    multiple = len({result["playbook"] for result in results}) > 1
    by_step: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        name = f"{result['playbook']}/{result['step']}" if multiple else result["step"]
        by_step[name][result["status"]] += 1
    columns = [status for status in STATUS_COLUMNS if any(counts[status] for counts in by_step.values())]
    columns = columns or ["ok"]
    rows = [[name, *(counts[status] or "-" for status in columns)] for name, counts in by_step.items()]
    if verbosity:
        lines.append("")
        for result in results:
            lines += result_detail(result, verbosity)
    if rows:
        lines += ["", table(["STEP", *(c.upper() for c in columns)], rows, right=range(1, len(columns) + 1))]
    problems = problem_rows(results)
    if problems:
        shown = problems[:problems_limit]
        lines += ["", "Problems:", table(["HOST", "STEP", "STATUS", "SUMMARY"], shown)]
        if len(problems) > len(shown):
            lines.append(f"... and {len(problems) - len(shown)} more (maint runs show {document['id']})")
    exit_code = document.get("exit_code")
    if exit_code is not None:
        lines += ["", f"exit {exit_code}: {EXIT_MEANINGS.get(exit_code, '')}".rstrip(": ")]
    return "\n".join(lines)


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key reading runs of digits as numbers: lab2 before lab10, web-2a before web-10a."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(text) if part)


_DIGITS = re.compile(r"(\d+)")


def problem_rows(results: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per non-ok result, sorted by host (:func:`natural_key`), then step; a host unreachable for all its
    steps gets one row."""
    by_host: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for result in results:
        by_host[result["host"]].append(result)
    rows: list[list[str]] = []
    for host, host_results in by_host.items():
        unreachable = [r for r in host_results if r["status"] == "unreachable"]
        if unreachable and len(unreachable) == len(host_results) and len(host_results) > 1:
            summaries = {r["summary"] for r in unreachable}
            rows.append([host, f"(all {len(host_results)})", "unreachable", " / ".join(sorted(summaries))])
            continue
        for result in host_results:
            if result["status"] not in ("ok", "skipped"):
                rows.append([host, result["step"], result["status"], result["summary"]])
    rows.sort(key=lambda row: (natural_key(row[0]), natural_key(row[1])))
    return rows


def selection_text(described: Sequence[Mapping[str, Any]], hosts: bool, steps: bool) -> str:
    """``maint run --list-hosts`` and/or ``--list-steps``: per playbook its hosts, its steps (id, type, tags,
    when, become), from :meth:`maint.run.Selection.describe`."""
    lines: list[str] = []
    for entry in described:
        lines.append(f"playbook: {entry['playbook']} (hosts: {entry['pattern']})")
        if hosts:
            lines.append(f"  hosts ({len(entry['hosts'])}):")
            lines += [f"    {name}" for name in entry["hosts"]]
        if steps:
            lines.append(f"  steps ({len(entry['steps'])}):")
            rows = [[step["id"], step["type"], ",".join(step["tags"]) or "-", step["when"] or "-",
                     _become_text(step["become"])] for step in entry["steps"]]  # fmt: skip
            if rows:
                shown = table(["STEP", "TYPE", "TAGS", "WHEN", "BECOME"], rows)
                lines += ["    " + line for line in shown.splitlines()]
    return "\n".join(lines)


def _become_text(keywords: Mapping[str, Any]) -> str:
    if keywords.get("become") is not True:
        return "no" if keywords.get("become") is False else "-"
    return f"{keywords.get('become_user') or 'root'} ({keywords.get('become_method') or 'sudo'})"


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """``maint runs list`` as a table."""
    rows = []
    for run in runs:
        playbooks = ",".join(playbook["name"] for playbook in run["playbooks"])
        rows.append([
            run["id"],
            run["started"][:19].replace("T", " "),
            run["status"],
            "-" if run["exit_code"] is None else run["exit_code"],
            len(run["hosts"]),
            run["operator"],
            playbooks,
            run["reason"] or "",
        ])
    return table(["ID", "STARTED (UTC)", "STATUS", "EXIT", "HOSTS", "OPERATOR", "PLAYBOOKS", "REASON"], rows)


def run_facts(document: Mapping[str, Any]) -> str:
    """The audit facts of a run: who, where, what, why."""
    playbooks = ", ".join(f"{p['name']} (sha256 {p['digest'][:12]})" for p in document["playbooks"])
    inventory = document["inventory"]
    facts = [
        ("run", document["id"]),
        ("status", f"{document['status']} (exit {document['exit_code']})"),
        ("started", document["started"]),
        ("finished", document["finished"] or "-"),
        ("operator", f"{document['operator']} on {document['controller']}"),
        ("reason", document["reason"] or "-"),
        *([("refs", ", ".join(document["options"]["refs"]))] if document.get("options", {}).get("refs") else []),
        ("playbooks", playbooks),
        *[("exec", f"{p['exec']['command']} (on {p['exec']['hosts']})") for p in document["playbooks"] if "exec" in p],
        *[(name.replace("_", " "), ", ".join(document["options"][name])) for name in ("tags", "skip_tags")
          if document.get("options", {}).get(name)],
        ("inventory", f"{', '.join(inventory['sources'])} (sha256 {inventory['digest'][:12]})"),
        ("command", shlex.join(document["argv"])),  # to copy back to a shell
        ("maint", document["maint_version"]),
    ]
    if document.get("ci"):
        facts.append(("ci", " ".join(f"{key}={value}" for key, value in document["ci"].items())))
    seal = document.get("ledger")
    if seal:
        signed = f", signed by {seal['signer']}" if seal.get("signed") else ", not signed"
        facts.append(("ledger", f"entry {seal['seq']} sha256 {seal['hash'][:16]}{signed}"))
    width = max(len(key) for key, _ in facts)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in facts)


def tickets_summary(report: Mapping[str, Any]) -> str:
    """One line on what a run did to tickets, e.g. ``tickets: 2 opened, 1 resolved; 3 delivered``."""
    actions: Mapping[str, int] = report.get("actions", {})
    order = ("opened", "reopened", "occurrence", "escalated", "flapping", "resolved")
    parts = [f"{actions[name]} {name if name != 'occurrence' else 'occurrences'}" for name in order
             if actions.get(name)]  # fmt: skip
    if report.get("quiet"):
        parts.append(f"{report['quiet']} quiet (declared maintenance)")
    line = "tickets: " + (", ".join(parts) if parts else "no change")
    delivery = []
    if report.get("delivered"):
        delivery.append(f"{report['delivered']} actions delivered")
    if report.get("pending"):
        delivery.append(f"{report['pending']} waiting in the outbox")
    return line + ("; " + ", ".join(delivery) if delivery else "")


def tickets_table(tickets: Sequence[Mapping[str, Any]]) -> str:
    """The ``maint tickets list`` table."""
    rows = [
        [
            f"#{ticket['id']}", ticket["status"] + (" (flapping)" if ticket.get("flapping") else ""),
            ticket["tier"], ticket["severity"], ticket["host"], ticket["check"], ticket["occurrences"],
            ticket["updated"][:16].replace("T", " "), ticket["summary"][:60],
        ]
        for ticket in tickets
    ]  # fmt: skip
    headers = ["ID", "STATUS", "TIER", "SEVERITY", "HOST", "CHECK", "SEEN", "UPDATED", "SUMMARY"]
    return table(headers, rows, right=[6])
