"""Reports of a run read back from a real SQLite store: JUnit XML against our own schema, CSV, HTML.

The run below has two playbooks, a check remediated on its second attempt, a host that was
unreachable, a skipped step, a warning, and command output full of control characters.
"""

from __future__ import annotations

import csv
import io
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from maint.errors import BadInput
from maint.reports.formats import render_report, write_report
from maint.reports.gather import report_document
from maint.reports.html import html_report
from maint.reports.junit import junit_xml
from maint.reports.spreadsheet import results_csv
from maint.store import ResultRecord, RunRecord, Store
from maint.store.tickets import Event, Ticket, add_event, save_ticket

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "junit.xsd"
RUN_ID = "20261124-010203-abc123"
NASTY_OUTPUT = "colour \x1b[31mred\x1b[0m\nnul \x00 bell \x07 backspace \x08\nform \x0c feed \ufffe end & <tag>"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA_PATH))


def run_record(run_id: str, started: str, playbooks: tuple[str, ...] = ("health", "backup")) -> RunRecord:
    return RunRecord(
        id=run_id, started=started, operator="alice", controller="control-1",
        argv=["maint", "run", *playbooks, "--reason", "CHG-7 monthly"], reason="CHG-7 <monthly>",
        playbooks=[{"name": name, "path": f"/p/{name}.yml", "digest": "ab" * 32, "builtin": True}
                   for name in playbooks],
        inventory={"sources": ["inventory.ini"], "digest": "cd" * 32}, maint_version="9.9",
        ci={"CI_JOB_ID": "77"}, options={"refs": ["CHG-7"]}, hosts=["web1", "web2", "web10", "db1"],
    )  # fmt: skip


def result(host: str, playbook: str, step: str, status: str, **fields: Any) -> ResultRecord:
    values: dict[str, Any] = {
        "run_id": RUN_ID, "host": host, "playbook": playbook, "step": step, "step_type": "command",
        "status": status, "exit_code": 0 if status == "ok" else 1, "summary": f"{step} is {status}", "metrics": {},
        "output": "", "started": "2026-11-24T01:02:04.000Z", "duration": 0.25,
    }  # fmt: skip
    values.update(fields)
    return ResultRecord(**values)


RESULTS = [
    result("web1", "health", "disk", "ok"),
    result("web1", "health", "service", "failed", summary="nginx is not running"),
    result("web1", "health", "service.remediate", "ok", step_type="service.restart", summary="restarted nginx"),
    result("web1", "health", "service", "ok", attempt=2, summary="nginx is running"),
    result("web1", "health", "kernel", "skipped", summary="when: false"),
    result("web2", "health", "disk", "failed", summary="=HYPERLINK(\"x\") 95% used", output=NASTY_OUTPUT),
    result("web2", "health", "service", "ok"),
    result("web2", "health", "kernel", "ok"),
    result("web10", "health", "disk", "warning", summary="disk 85% used", output="85%"),
    result("web10", "health", "service", "ok"),
    result("web10", "health", "kernel", "error", summary="timed out after 30s", exit_code=None),
    result("db1", "health", "disk", "unreachable", summary="connection refused", exit_code=None),
    result("db1", "health", "service", "unreachable", summary="connection refused", exit_code=None),
    result("db1", "health", "kernel", "unreachable", summary="connection refused", exit_code=None),
    result("web1", "backup", "restic", "ok"),
    result("web2", "backup", "restic", "error", summary="restic: command not found", step_type="backup.restic"),
    result("web10", "backup", "restic", "ok"),
    result("db1", "backup", "restic", "unreachable", summary="connection refused", exit_code=None),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store("sqlite:///" + str(tmp_path_factory.mktemp("store") / "maint.db"))
    # Earlier runs of the same playbooks (the trend), one of other playbooks and a later one (both left out).
    for day in range(1, 4):
        opened.create_run(run_record(f"2026110{day}-010000-old{day:03d}", f"2026-11-0{day}T01:00:00.000Z"))
        opened.finish_run(f"2026110{day}-010000-old{day:03d}", "ok", 0, f"2026-11-0{day}T01:01:00.000Z", {"ok": 10})
    opened.create_run(run_record("20261110-010000-other1", "2026-11-10T01:00:00.000Z", ("virus-scan",)))
    opened.finish_run("20261110-010000-other1", "ok", 0, "2026-11-10T01:01:00.000Z", {"ok": 4})
    opened.create_run(run_record(RUN_ID, "2026-11-24T01:02:03.456Z"))
    opened.add_results(RESULTS)
    counts = {"ok": 7, "failed": 1, "warning": 1, "error": 2, "unreachable": 4, "skipped": 1}
    opened.finish_run(RUN_ID, "failed", 4, "2026-11-24T01:03:03.456Z", counts)
    opened.create_run(run_record("20261130-010000-later1", "2026-11-30T01:00:00.000Z"))
    with opened.engine.begin() as connection:
        ticket = save_ticket(connection, Ticket(
            key="web2/disk", host="web2", check="disk", step_type="disk.usage", playbook="health", tier="L1",
            severity="warning", status="open", summary="95% used", opened="2026-11-24T01:03:00.000Z",
            updated="2026-11-24T01:03:00.000Z", tier_since="2026-11-24T01:03:00.000Z", refs={"rt": "1234"},
        ))  # fmt: skip
        assert ticket.id is not None
        add_event(connection, ticket.id, Event("opened", "2026-11-24T01:03:00.000Z", "maint", "opened", RUN_ID))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def document(store: Store) -> dict[str, Any]:
    return report_document(store, RUN_ID[:12])


@pytest.fixture(scope="module")
def junit(document: dict[str, Any]) -> ElementTree.Element:
    return ElementTree.fromstring(junit_xml(document).encode())


def test_the_report_document_adds_tickets_trend_and_seal(document: dict[str, Any], store: Store) -> None:
    shown = store.get_run(RUN_ID).as_dict()
    assert {key: value for key, value in document.items() if key in shown} == shown
    assert [(ticket["key"], ticket["action"], ticket["refs"]) for ticket in document["tickets"]] == [
        ("web2/disk", "opened", {"rt": "1234"})
    ]
    assert [run["id"] for run in document["trend"]] == [
        "20261101-010000-old001", "20261102-010000-old002", "20261103-010000-old003", RUN_ID,
    ]  # fmt: skip
    assert document["trend"][-1]["counts"]["failed"] == 1
    # The run's seal, when the store's ledger sealed it: the entry of the run's end.
    assert document["ledger"] is None or {"seq", "hash"} <= set(document["ledger"])


def test_unknown_run_is_bad_input(store: Store) -> None:
    with pytest.raises(BadInput, match="no run with id 'nope'"):
        report_document(store, "nope")


def test_junit_is_valid_by_our_schema(document: dict[str, Any], schema: xmlschema.XMLSchema) -> None:
    schema.validate(junit_xml(document))


def test_one_suite_per_playbook_with_the_run_facts(junit: ElementTree.Element) -> None:
    suites = junit.findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["health", "backup"]
    assert [suite.get("id") for suite in suites] == ["0", "1"]
    assert [suite.get("package") for suite in suites] == ["health", "backup"]
    assert {suite.get("timestamp") for suite in suites} == {"2026-11-24T01:02:03"}
    assert {suite.get("hostname") for suite in suites} == {"control-1"}
    properties = {item.get("name"): item.get("value") for item in suites[0].iter("property")}
    assert properties["run_id"] == RUN_ID
    assert properties["operator"] == "alice"
    assert properties["reason"] == "CHG-7 <monthly>"
    assert properties["controller"] == "control-1"
    assert properties["maint_version"] == "9.9"
    assert properties["exit_code"] == "4"
    assert junit.get("time") == "60.000"


def test_counts_equal_the_elements(junit: ElementTree.Element) -> None:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in junit.findall("testsuite"):
        cases = suite.findall("testcase")
        found = {
            "tests": len(cases),
            "failures": sum(len(case.findall("failure")) for case in cases),
            "errors": sum(len(case.findall("error")) for case in cases),
            "skipped": sum(len(case.findall("skipped")) for case in cases),
        }
        assert {name: int(suite.get(name, "-1")) for name in found} == found
        for name, count in found.items():
            totals[name] += count
    assert {name: int(junit.get(name, "-1")) for name in totals} == totals
    # 4 hosts x 3 health checks, web1's remediation task, 4 hosts x 1 backup step.
    assert totals == {"tests": 17, "failures": 1, "errors": 6, "skipped": 1}


def test_one_case_per_host_and_step_from_the_last_attempt(junit: ElementTree.Element) -> None:
    health = junit.findall("testsuite")[0]
    pairs = [(case.get("classname"), case.get("name")) for case in health.findall("testcase")]
    assert len(pairs) == len(set(pairs))
    # Hosts in natural order, steps in playbook order; the remediation task is a case of its own.
    assert [host for host, _ in pairs] == ["db1"] * 3 + ["web1"] * 4 + ["web2"] * 3 + ["web10"] * 3
    assert pairs[3:7] == [("web1", "disk"), ("web1", "service"), ("web1", "service.remediate"), ("web1", "kernel")]
    service = next(case for case in health.findall("testcase") if case.get("classname") == "web1"
                   and case.get("name") == "service")  # fmt: skip
    assert service.find("failure") is None  # attempt 2 passed: the check passes
    history = service.findtext("system-out") or ""
    assert "attempt 1: failed - nginx is not running" in history
    assert "remediation service.remediate (service.restart): ok - restarted nginx" in history
    assert "attempt 2: ok - nginx is running" in history


def test_statuses_map_to_junit_elements(junit: ElementTree.Element) -> None:
    cases = {(case.get("classname"), case.get("name")): case for case in junit.iter("testcase")}
    failure = cases[("web2", "disk")].find("failure")
    assert failure is not None
    assert (failure.get("message"), failure.get("type")) == ('=HYPERLINK("x") 95% used', "command")
    assert "colour" in (failure.text or "")
    error = cases[("web10", "kernel")].find("error")
    assert error is not None and error.get("message") == "timed out after 30s"
    unreachable = cases[("db1", "restic")].find("error")
    assert unreachable is not None and unreachable.get("type") == "unreachable"
    skipped = cases[("web1", "kernel")].find("skipped")
    assert skipped is not None and skipped.get("message") == "when: false"
    warning = cases[("web10", "disk")]
    assert len(warning) == 1 and "warning: disk 85% used" in (warning.findtext("system-out") or "")
    assert len(cases[("web1", "disk")]) == 0
    assert cases[("web1", "disk")].get("time") == "0.250"


def test_control_characters_never_break_the_xml(document: dict[str, Any], schema: xmlschema.XMLSchema) -> None:
    text = junit_xml(document)
    assert "\x00" not in text and "\x1b" not in text and "\ufffe" not in text
    parsed = ElementTree.fromstring(text.encode())
    failure = next(case for case in parsed.iter("testcase") if case.get("classname") == "web2").find("failure")
    assert failure is not None
    assert failure.text is not None and "red" in failure.text and "end & <tag>" in failure.text
    # Even a step id and host name with control characters (from a dynamic inventory) stay well-formed.
    odd = {**document, "results": [{**document["results"][0], "host": "bad\x01host", "step": "s\x1f"}]}
    schema.validate(junit_xml(odd))


def test_the_schema_rejects_broken_documents(schema: xmlschema.XMLSchema) -> None:
    def suite(body: str, counts: str = 'tests="1" failures="0" errors="0"') -> str:
        return f'<testsuites><testsuite name="s" {counts}>{body}</testsuite></testsuites>'

    assert schema.is_valid(suite('<testcase name="a" classname="h" time="0.5"/>'))
    assert not schema.is_valid(suite('<testcase classname="h"/>'))  # no name
    assert not schema.is_valid(suite('<testcase name="a"/>', 'tests="-1" failures="0" errors="0"'))
    assert not schema.is_valid(suite('<testcase name="a"/>', 'tests="1" failures="0"'))  # no errors count
    assert not schema.is_valid(suite('<testcase name="a"><failure/><error/></testcase>'))
    assert not schema.is_valid(suite('<testcase name="a" time="soon"/>'))
    assert not schema.is_valid(suite('<properties><property name="x"/></properties>'))


def test_csv_has_every_attempt_and_no_formulas(document: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(results_csv(document))))
    assert len(rows) == len(RESULTS)
    assert list(rows[0]) == [
        "run_id", "host", "playbook", "step", "type", "attempt", "status", "exit_code", "severity", "tier",
        "started", "duration", "summary",
    ]  # fmt: skip
    service = [(row["attempt"], row["status"]) for row in rows if (row["host"], row["step"]) == ("web1", "service")]
    assert service == [("1", "failed"), ("2", "ok")]
    disk = next(row for row in rows if (row["host"], row["step"]) == ("web2", "disk"))
    assert disk["summary"] == "'=HYPERLINK(\"x\") 95% used"
    assert {row["run_id"] for row in rows} == {RUN_ID}


def test_html_escapes_everything_and_loads_nothing(document: dict[str, Any], tmp_path: Path) -> None:
    page = html_report(document, tmp_path)
    assert "CHG-7 &lt;monthly&gt;" in page and "<monthly>" not in page
    assert "maint run health backup --reason &#39;CHG-7 monthly&#39;" in page
    for external in ("<script", "<link", "src=", "href=", "url(", "@import", "http://", "https://"):
        assert external not in page
    assert page.count('class="c s-') == 4 * 4  # 4 hosts x 4 checks, the remediation task left out
    seal = document["ledger"]
    assert ("not sealed" if seal is None else f"hash {seal['hash']}") in page
    assert "not sealed" in html_report({**document, "ledger": None}, tmp_path)
    assert "rt: 1234" in page


def test_a_project_template_overrides_the_page(document: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "report.html.j2").write_text("<p>{{ run.id }} {{ run.reason }}</p>\n")
    assert html_report(document, tmp_path) == f"<p>{RUN_ID} CHG-7 &lt;monthly&gt;</p>"


def test_a_broken_project_template_names_its_file(document: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    broken = tmp_path / "templates" / "report.html.j2"
    broken.write_text("<p>\n{{ run.id </p>\n")
    with pytest.raises(BadInput, match=r"report\.html\.j2:2: report template"):
        html_report(document, tmp_path)


def test_a_thousand_hosts_render_fast(document: dict[str, Any], tmp_path: Path) -> None:
    statuses = ["ok"] * 6 + ["warning", "failed", "error", "skipped"]
    results = [
        {**document["results"][0], "host": f"web{host}", "playbook": "health", "step": f"step-{step}",
         "status": statuses[(host + step) % len(statuses)], "output": "line\n" * 40}
        for host in range(1000) for step in range(10)
    ]  # fmt: skip
    big = {**document, "results": results}
    html_report(big, tmp_path)  # the template compiles once per process
    # The CPU time of this thread, which renders: the wall clock also counts whatever else the machine runs
    # (the other test worker, other jobs): 6.8 s at a load average of 19, for about 0.1 s of CPU.
    began = time.thread_time()
    page = html_report(big, tmp_path)
    seconds = time.thread_time() - began
    assert page.count('class="c s-') == 10_000
    assert seconds < 1.0, f"1000 hosts x 10 steps took {seconds:.2f}s of CPU"


def test_write_report_is_atomic_and_reports_bad_paths(tmp_path: Path, document: dict[str, Any]) -> None:
    target = tmp_path / "report.json"
    write_report(target, render_report(document, "json", tmp_path))
    assert target.read_text().startswith("{")
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]
    with pytest.raises(BadInput, match=r"cannot write .*missing/report\.xml"):
        write_report(tmp_path / "missing" / "report.xml", "x")
    with pytest.raises(BadInput, match="cannot write"):
        write_report(tmp_path, "x")
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]
