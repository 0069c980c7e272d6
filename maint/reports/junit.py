"""A run as JUnit XML, the test report format CI servers (Jenkins, GitLab, GitHub Actions) display.

One ``<testsuite>`` per playbook, one ``<testcase>`` per (host, step) from its last attempt:
``failed`` is a ``<failure>``, ``error`` and ``unreachable`` an ``<error>``, ``skipped`` a
``<skipped>``; ``ok`` and ``warning`` pass (a warning says so in ``<system-out>``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Mapping
from typing import Any

from maint import __version__
from maint.reports.layout import (
    earlier_attempts,
    final_results,
    history_lines,
    hosts_of,
    parse_time,
    playbook_names,
    seconds_between,
    step_columns,
)
from maint.terminal import escape_controls

# Characters XML 1.0 cannot hold even as references (most C0 controls, lone surrogates, U+FFFE/F):
# command output carries them (ANSI colours, NUL, backspaces) and one would make the file unparseable.
# Control characters are shown escaped first, as in every other output (maint.terminal).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
REPLACEMENT = "\ufffd"


def xml_safe(text: str) -> str:
    """``text`` with control characters shown escaped (``\\u001b``) and every other character XML 1.0
    cannot represent replaced by U+FFFD; raises nothing."""
    return NOT_XML.sub(REPLACEMENT, escape_controls(text))


def junit_timestamp(moment: str) -> str:
    """A stored timestamp as JUnit wants it: ISO 8601 in UTC to the second, without a zone suffix.

    Raises ValueError for a timestamp that is not ISO 8601.
    """
    return parse_time(moment).strftime("%Y-%m-%dT%H:%M:%S")


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _case(result: Mapping[str, Any], history: list[str]) -> tuple[ElementTree.Element, str]:
    """The ``<testcase>`` of one last attempt, and the counter it adds to (passed, failures, errors, skipped)."""
    case = ElementTree.Element(
        "testcase", name=xml_safe(result["step"]), classname=xml_safe(result["host"]), time=_seconds(result["duration"])
    )
    status, summary, output = result["status"], xml_safe(result["summary"]), xml_safe(result.get("output") or "")
    counter = "passed"
    if status == "failed":
        element = ElementTree.SubElement(case, "failure", message=summary, type=xml_safe(result["type"]))
        element.text = output or None
        counter = "failures"
    elif status in ("error", "unreachable"):
        kind = "unreachable" if status == "unreachable" else xml_safe(result["type"])
        element = ElementTree.SubElement(case, "error", message=summary, type=kind)
        element.text = output or None
        counter = "errors"
    elif status == "skipped":
        ElementTree.SubElement(case, "skipped", message=summary)
        counter = "skipped"
    notes = [xml_safe(line) for line in history]
    if status == "warning":
        notes.append(f"warning: {summary}")
        if output:
            notes += ["", output]
    if notes:
        ElementTree.SubElement(case, "system-out").text = "\n".join(notes)
    return case, counter


def _properties(parent: ElementTree.Element, values: Mapping[str, Any]) -> None:
    properties = ElementTree.SubElement(parent, "properties")
    for name, value in values.items():
        text = "" if value is None else str(value)
        ElementTree.SubElement(properties, "property", name=name, value=xml_safe(text))


def junit_xml(document: Mapping[str, Any]) -> str:
    """The JUnit XML text of a run document (``maint runs show --format json``), with its declaration.

    Only the last attempt of each (host, step) is a test case; earlier attempts and the remediation a
    check ran are told in that case's ``<system-out>``. Gets the document; returns the XML text;
    raises nothing for any document the store returns.
    """
    last = final_results(document)
    earlier = earlier_attempts(document)
    hosts = hosts_of(last)
    columns = step_columns(document, remediations=True)
    digests = {playbook["name"]: playbook.get("digest", "") for playbook in document.get("playbooks", [])}
    started = junit_timestamp(document["started"])
    totals: Counter[str] = Counter()
    total_time = 0.0
    root = ElementTree.Element("testsuites", name=f"maint run {document['id']}")
    for index, playbook in enumerate(playbook_names(document)):
        suite = ElementTree.SubElement(root, "testsuite", name=xml_safe(playbook))
        _properties(suite, {
            "run_id": document["id"], "status": document["status"], "exit_code": document["exit_code"],
            "operator": document["operator"], "controller": document["controller"], "reason": document["reason"],
            "maint_version": document["maint_version"], "playbook_digest": digests.get(playbook, ""),
        })  # fmt: skip
        counts: Counter[str] = Counter()
        suite_time = 0.0
        steps = [step for name, step in columns if name == playbook]
        for host in hosts:
            for step in steps:
                pair = (host, playbook, step)
                result = last.get(pair)
                if result is None:
                    continue
                case, counter = _case(result, history_lines(pair, earlier, last))
                suite.append(case)
                counts["tests"] += 1
                counts[counter] += 1
                suite_time += result["duration"]
        suite.attrib.update({
            "tests": str(counts["tests"]), "failures": str(counts["failures"]), "errors": str(counts["errors"]),
            "skipped": str(counts["skipped"]), "time": _seconds(suite_time), "timestamp": started,
            "hostname": xml_safe(document["controller"]), "id": str(index), "package": xml_safe(playbook),
        })  # fmt: skip
        totals.update(counts)
        total_time += suite_time
    wall_clock = seconds_between(document["started"], document.get("finished"))
    root.attrib.update({
        "tests": str(totals["tests"]), "failures": str(totals["failures"]), "errors": str(totals["errors"]),
        "skipped": str(totals["skipped"]), "time": _seconds(total_time if wall_clock is None else wall_clock),
    })  # fmt: skip
    ElementTree.indent(root)
    declaration, _, body = ElementTree.tostring(root, encoding="unicode", xml_declaration=True).partition("\n")
    # The comment marks the file as maint's own report, which a later report may replace.
    return f"{declaration}\n<!-- generator: maint {__version__} -->\n{body}\n"
