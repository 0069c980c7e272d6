"""How a run's results are laid out in the reports: step order, last attempts and what came before them.

Pure functions over a run document (``maint runs show --format json``), shared by the JUnit, CSV and
HTML renderings so that each shows the same (host, step) pairs in the same order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from maint.playbooks import REMEDIATION_SUFFIX
from maint.store import last_attempts

Pair = tuple[str, str, str]  # (host, playbook, step)
DIGITS = re.compile(r"(\d+)")


def host_order(host: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts ``web2`` before ``web10`` (numbers compare as numbers); raises nothing."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in DIGITS.split(host) if part)


def hosts_of(last: Mapping[Pair, Mapping[str, Any]]) -> list[str]:
    """The hosts of :func:`final_results`, sorted by :func:`host_order`; raises nothing."""
    return sorted({host for host, _, _ in last}, key=host_order)


def playbook_names(document: Mapping[str, Any]) -> list[str]:
    """The run's playbook names in the order they ran, then any other playbook its results name.

    Gets a run document; returns a list of names; raises nothing.
    """
    names = [playbook["name"] for playbook in document.get("playbooks", [])]
    for result in document["results"]:
        if result["playbook"] not in names:
            names.append(result["playbook"])
    return names


def is_remediation(step: str) -> bool:
    """Whether ``step`` is the remediation task a check ran (``CHECK.remediate``), not a playbook step."""
    return step.endswith(REMEDIATION_SUFFIX)


def step_columns(document: Mapping[str, Any], remediations: bool = False) -> list[tuple[str, str]]:
    """The (playbook, step) pairs of a run in playbook order, each step where it first ran.

    Every host runs a playbook's steps in the playbook's order, so the order of first appearance among
    the recorded results is that order. Remediation tasks are left out unless ``remediations``.
    Gets a run document; returns the pairs; raises nothing.
    """
    seen: dict[str, dict[str, None]] = {name: {} for name in playbook_names(document)}
    for result in document["results"]:
        if remediations or not is_remediation(result["step"]):
            seen[result["playbook"]].setdefault(result["step"], None)
    return [(playbook, step) for playbook, steps in seen.items() for step in steps]


def final_results(document: Mapping[str, Any]) -> dict[Pair, Mapping[str, Any]]:
    """The last attempt of each (host, playbook, step): the result that counts.

    Gets a run document; returns a mapping keyed by (host, playbook, step); raises nothing.
    """
    return last_attempts(document["results"])


def earlier_attempts(document: Mapping[str, Any]) -> dict[Pair, list[Mapping[str, Any]]]:
    """The attempts before the last one of each (host, playbook, step) that has some, oldest first.

    Gets a run document; returns lists keyed by (host, playbook, step); raises nothing.
    """
    last = final_results(document)
    earlier: dict[Pair, list[Mapping[str, Any]]] = defaultdict(list)
    for result in document["results"]:
        pair = (result["host"], result["playbook"], result["step"])
        if last[pair] is not result:
            earlier[pair].append(result)
    for attempts in earlier.values():
        attempts.sort(key=lambda result: result["attempt"])
    return dict(earlier)


def history_lines(
    pair: Pair, earlier: Mapping[Pair, Sequence[Mapping[str, Any]]], last: Mapping[Pair, Mapping[str, Any]]
) -> list[str]:
    """What happened before a check's last attempt: its earlier attempts and the remediation it ran.

    Gets the pair, :func:`earlier_attempts` and :func:`final_results`; returns one line per attempt
    (empty when the last attempt was the only one); raises nothing.
    """
    previous = earlier.get(pair, ())
    if not previous:
        return []
    host, playbook, step = pair
    lines = [f"attempt {result['attempt']}: {result['status']} - {result['summary']}" for result in previous]
    remedy = last.get((host, playbook, step + REMEDIATION_SUFFIX))
    if remedy is not None:
        lines.append(f"remediation {remedy['step']} ({remedy['type']}): {remedy['status']} - {remedy['summary']}")
    current = last[pair]
    lines.append(f"attempt {current['attempt']}: {current['status']} - {current['summary']}")
    return lines


def seconds_between(started: str | None, finished: str | None) -> float | None:
    """Seconds between two stored timestamps (ISO 8601, UTC with Z), or None when one is missing.

    Raises ValueError for a timestamp that is not ISO 8601.
    """
    if not started or not finished:
        return None
    return (parse_time(finished) - parse_time(started)).total_seconds()


def parse_time(moment: str) -> dt.datetime:
    """A stored timestamp (``2026-11-24T01:02:03.456Z``) as an aware datetime; ValueError if it is not one."""
    parsed = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
