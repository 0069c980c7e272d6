"""A run as one self-contained HTML page: summary, host x check matrix, failures, tickets, audit facts, trend.

The page comes from the Jinja2 template ``report.html.j2``: a project's ``templates/report.html.j2``
overrides the built-in one, found the same way as the ticket templates. This module computes
everything the template shows (the template only lays it out), so an override stays short.
"""

from __future__ import annotations

import functools
import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint.reports.junit import xml_safe
from maint.reports.layout import (
    earlier_attempts,
    final_results,
    history_lines,
    hosts_of,
    is_remediation,
    step_columns,
)
from maint.reports.text import EXIT_MEANINGS, duration_between

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
STATUSES = ("ok", "warning", "failed", "error", "unreachable", "skipped")
# Solid colours the matrix cells, legend and trend share; tests find the cells in a screenshot by them.
STATUS_COLOURS = {
    "ok": "#1a9641",
    "warning": "#f0a202",
    "failed": "#d7191c",
    "error": "#7b3294",
    "unreachable": "#808080",
    "skipped": "#e8e8e8",
}
CELL_PIXELS = 12  # a matrix cell's side; 1000 hosts x 10 steps stays a page one can scroll through
LEGEND_PIXELS = 9  # legend swatches are smaller than cells, so they never pass for one
FAILURES_SHOWN = 300  # beyond this, the JSON and CSV reports hold the rest
TREND_HEIGHT = 100
TREND_BAR = 10
TREND_GAP = 4
# The trend's stacked series and the statuses each one adds up.
TREND_SERIES = (("ok", ("ok", "warning")), ("failed", ("failed", "error")), ("unreachable", ("unreachable",)))


@functools.cache
def _report_environment(project_dir: Path) -> jinja2.Environment:
    from maint.tickets import template_environment

    # The ticket templates' lookup (project's templates/ first, then the built-in ones), escaping for
    # HTML; a cache of its own, since compiled templates keep the escaping they were compiled with.
    return template_environment(project_dir).overlay(autoescape=True, cache_size=50)


def html_report(document: Mapping[str, Any], project_dir: Path) -> str:
    """The HTML page of a report document (:func:`maint.reports.gather.report_document`).

    ``project_dir`` is where a ``templates/report.html.j2`` override is looked for. Returns the page
    text; raises BadInput when the template (a project's override) is broken, naming it.
    """
    import jinja2

    from maint.errors import BadInput

    name = f"templates/{TEMPLATE}"
    try:
        template = _report_environment(project_dir).get_template(TEMPLATE)
        name = template.filename or name  # the file in use (the project's or the built-in one)
        return template.render(report_view(document))
    except jinja2.TemplateError as error:
        # A syntax error knows its file and line; an error while rendering (an undefined variable) does not.
        source = getattr(error, "filename", None) or name
        raise BadInput(f"report template: {error}", source=str(source), line=getattr(error, "lineno", None)) from None


def report_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the template shows, computed from a report document; raises nothing.

    Keys: ``run`` (the document itself), ``summary``, ``statuses``, ``colours``, ``cell_pixels``,
    ``legend_pixels``, ``matrix``, ``failures``, ``failures_hidden``, ``unreachable``, ``tickets``,
    ``facts`` and ``trend``.
    """
    last = final_results(document)
    failures, unreachable = _problems(document, last)
    return {
        "run": document,
        "summary": _summary(document, last),
        "statuses": STATUSES,
        "colours": STATUS_COLOURS,
        "cell_pixels": CELL_PIXELS,
        "legend_pixels": LEGEND_PIXELS,
        "matrix": matrix(document, last),
        "failures": failures[:FAILURES_SHOWN],
        "failures_hidden": max(0, len(failures) - FAILURES_SHOWN),
        "unreachable": unreachable,
        "tickets": [_ticket(ticket) for ticket in document.get("tickets") or []],
        "facts": audit_facts(document),
        "trend": trend_chart(document.get("trend") or [], document["id"]),
    }


def _summary(document: Mapping[str, Any], last: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    counts = Counter(result["status"] for result in last.values())
    return {
        "status": document["status"],
        "exit_code": document["exit_code"],
        "exit_meaning": EXIT_MEANINGS.get(document["exit_code"], ""),
        "counts": [(status, counts[status]) for status in STATUSES if counts[status]],
        "started": document["started"],
        "finished": document["finished"] or "-",
        "duration": duration_between(document["started"], document["finished"]),
        "hosts": len({host for host, _, _ in last}),
        "results": len(document["results"]),
        "playbooks": [playbook["name"] for playbook in document["playbooks"]],
    }


def matrix(document: Mapping[str, Any], last: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """The host x check matrix: ``columns`` ((playbook, step) in playbook order, remediation tasks left
    out), ``groups`` (each playbook and how many columns it spans) and ``rows`` (hosts in order, each
    with one cell per column: ``status``, ``none`` where the host has no result, and ``title``).

    Gets a run document and its :func:`~maint.reports.layout.final_results`; raises nothing.
    """
    columns = step_columns(document)
    earlier = earlier_attempts(document)
    groups: list[dict[str, Any]] = []
    for playbook, _ in columns:
        if groups and groups[-1]["playbook"] == playbook:
            groups[-1]["span"] += 1
        else:
            groups.append({"playbook": playbook, "span": 1})
    rows = []
    for host in hosts_of(last):
        cells = []
        for playbook, step in columns:
            pair = (host, playbook, step)
            result = last.get(pair)
            if result is None:
                cells.append({"status": "none", "title": f"{host} {step}: no result"})
                continue
            title = f"{host} {step}: {result['status']} - {result['summary']}"
            history = history_lines(pair, earlier, last)
            if history:
                title += "\n" + "\n".join(history)
            cells.append({"status": result["status"], "title": title})
        rows.append({"host": host, "cells": cells})
    return {
        "columns": [{"playbook": playbook, "step": step} for playbook, step in columns],
        "groups": groups,
        "rows": rows,
    }


def _problems(
    document: Mapping[str, Any], last: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Failed and error results (with output tails), and unreachable hosts (one entry per host)."""
    earlier = earlier_attempts(document)
    order = {pair: index for index, pair in enumerate(step_columns(document, remediations=True))}
    by_host: dict[str, list[tuple[str, str, str]]] = {}
    for pair in last:
        by_host.setdefault(pair[0], []).append(pair)
    failures = []
    unreachable: dict[str, dict[str, Any]] = {}
    for host in hosts_of(last):
        for pair in sorted(by_host[host], key=lambda pair: order[(pair[1], pair[2])]):
            result = last[pair]
            if result["status"] == "unreachable":
                entry = unreachable.setdefault(host, {"host": host, "summary": result["summary"], "steps": []})
                entry["steps"].append(result["step"])
            elif result["status"] in ("failed", "error"):
                failures.append({
                    "host": host, "playbook": result["playbook"], "step": result["step"], "type": result["type"],
                    "status": result["status"], "summary": xml_safe(result["summary"]),
                    # HTML cannot hold most control characters either (ANSI colours, NUL in output).
                    "output": xml_safe(result.get("output") or ""),
                    "attempt": result["attempt"], "history": history_lines(pair, earlier, last),
                    "remediation": is_remediation(result["step"]),
                })  # fmt: skip
    return failures, list(unreachable.values())


def _ticket(ticket: Mapping[str, Any]) -> dict[str, Any]:
    refs = ticket.get("refs") or {}
    return {**ticket, "refs_text": ", ".join(f"{backend}: {ref}" for backend, ref in sorted(refs.items()))}


def audit_facts(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's audit facts as (label, value) pairs: who, where, what, why, and its ledger seal.

    Gets a report document; raises nothing.
    """
    options = document.get("options") or {}
    inventory = document.get("inventory") or {}
    facts = [
        ("run", document["id"]),
        ("operator", document["operator"]),
        ("controller", document["controller"]),
        ("command", shlex.join(document["argv"])),
        ("reason", document["reason"] or "-"),
    ]
    if options.get("refs"):
        refs = options["refs"]
        facts.append(("refs", ", ".join(map(str, refs)) if isinstance(refs, list | tuple) else str(refs)))
    if document.get("ci"):
        facts.append(("CI", " ".join(f"{key}={value}" for key, value in document["ci"].items())))
    if options.get("window"):
        ignored = " (run with --ignore-window)" if options.get("ignore_window") else ""
        facts.append(("window", f"{options['window']}{ignored}"))
    facts.append(("maint version", document["maint_version"]))
    for playbook in document["playbooks"]:
        where = f"{playbook.get('path', '')} sha256 {playbook.get('digest', '')}"
        facts.append((f"playbook {playbook['name']}", where))
    sources = ", ".join(inventory.get("sources", [])) or "-"
    facts.append(("inventory", f"{sources} sha256 {inventory.get('digest', '')}"))
    facts.append(("ledger", _seal_text(document.get("ledger"))))
    return facts


def _seal_text(seal: Mapping[str, Any] | None) -> str:
    if not seal:
        return "not sealed"
    text = f"entry {seal.get('seq')} hash {seal.get('hash')}"
    if seal.get("signed"):
        text += f", signed by {seal.get('signer')}"
    return text


def trend_chart(trend: Sequence[Mapping[str, Any]], run_id: str) -> dict[str, Any]:
    """The trend as an SVG bar chart: ``width``, ``height``, ``series`` and ``bars`` (each with ``x``,
    ``title``, ``current`` and stacked ``segments`` of ``status``, ``y`` and ``height``), and the
    first and last run's start as ``first`` and ``last``.

    Gets the report's ``trend`` (oldest first) and this run's id; raises nothing.
    """
    totals = [sum(run["counts"].get(status, 0) for _, statuses in TREND_SERIES for status in statuses)
              for run in trend]  # fmt: skip
    highest = max(totals, default=0) or 1
    bars = []
    for index, run in enumerate(trend):
        bottom = float(TREND_HEIGHT)
        segments = []
        parts = []
        for name, statuses in TREND_SERIES:
            count = sum(run["counts"].get(status, 0) for status in statuses)
            parts.append(f"{count} {name}")
            if not count:
                continue
            height = TREND_HEIGHT * count / highest
            bottom -= height
            segments.append({"status": name, "y": round(bottom, 2), "height": round(height, 2)})
        bars.append({
            "x": index * (TREND_BAR + TREND_GAP), "segments": segments, "current": run["id"] == run_id,
            "title": f"{run['id']} ({run['started'][:16].replace('T', ' ')}, {run['status']}): {', '.join(parts)}",
        })  # fmt: skip
    return {
        "width": max(len(trend) * (TREND_BAR + TREND_GAP) - TREND_GAP, TREND_BAR),
        "height": TREND_HEIGHT,
        "bar": TREND_BAR,
        "series": [name for name, _ in TREND_SERIES],
        "bars": bars,
        "first": trend[0]["started"][:16].replace("T", " ") if trend else "",
        "last": trend[-1]["started"][:16].replace("T", " ") if trend else "",
    }
