"""Reports of a real run: ``maint run --junit-xml`` and ``maint report`` in every format, end to end.

One run of the built-in ``health`` playbook over real SSH on three lab hosts, with lab2's sshd pid
file pointing at a dead process (the ``service-down`` fault), so exactly one check fails. The HTML
report is opened in headless Chromium and the screenshot is read back: the matrix cells are found
by their exact colours.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from maint.lab import Lab
from maint.reports.html import CELL_PIXELS, STATUS_COLOURS
from maint.testing import broken

pytestmark = pytest.mark.lab

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "junit.xsd"))
HOSTS = ("lab1", "lab2", "lab3")
CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")
FAILING = ("lab2", "sshd-running")


@dataclass(frozen=True)
class Recorded:
    """The project directory of the recorded run, its store, its JSON document and its JUnit file."""

    directory: Path
    env: dict[str, str]
    document: dict[str, Any]
    junit: Path


@pytest.fixture(scope="module")
def recorded(lab: Lab, maint_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    directory = tmp_path_factory.mktemp("report-project")
    directory.chmod(0o755)  # the store's directory lets others read: so may its reports (umask 022: 0644)
    env = {"MAINT_DB": f"sqlite:///{directory / 'maint.db'}", "MAINT_DEBUG_LOG": str(directory / "debug.log")}
    junit = directory / "junit" / "maint.xml"
    junit.parent.mkdir()
    with broken(lab, FAILING[0], "service-down"):
        done = subprocess.run(
            [str(maint_bin), "run", "health", "-i", str(lab.inventory), "-l", ":".join(HOSTS), *CALM,
             "--reason", "report test <CHG-1>", "--junit-xml", str(junit), "--format", "json"],
            cwd=directory, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 4, done.stderr
    yield Recorded(directory, env, json.loads(done.stdout), junit)


def last_statuses(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for result in document["results"]:
        pair = (result["host"], result["step"])
        if pair not in last or result["attempt"] >= last[pair]["attempt"]:
            last[pair] = result
    return {pair: result["status"] for pair, result in last.items()}


def report(maint_cli: Any, recorded: Recorded, *args: str) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = maint_cli("report", *args, cwd=recorded.directory, env=recorded.env)
    return done


def test_the_run_fails_exactly_one_check(recorded: Recorded) -> None:
    problems = {pair: status for pair, status in last_statuses(recorded.document).items()
                if status not in ("ok", "warning", "skipped")}  # fmt: skip
    assert problems == {FAILING: "failed"}


def test_run_junit_xml_is_valid_and_counts_the_failure(recorded: Recorded) -> None:
    text = recorded.junit.read_text(encoding="utf-8")
    SCHEMA.validate(text)
    root = ElementTree.fromstring(text.encode())
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "health"
    cases = suite.findall("testcase")
    assert len(cases) == len(last_statuses(recorded.document)) == int(suite.get("tests", "-1"))
    failed = [(case.get("classname"), case.get("name")) for case in cases if case.find("failure") is not None]
    assert failed == [FAILING]
    assert (suite.get("failures"), suite.get("errors")) == ("1", "0")
    failure = next(case for case in cases if case.find("failure") is not None).find("failure")
    assert failure is not None and "999999999" in (failure.get("message") or "")
    skipped = [case.get("name") for case in cases if case.find("skipped") is not None]
    assert int(suite.get("skipped", "-1")) == len(skipped) and "clock" in skipped
    properties = {item.get("name"): item.get("value") for item in suite.iter("property")}
    assert properties["reason"] == "report test <CHG-1>"
    assert properties["run_id"] == recorded.document["id"]


def test_report_junit_is_what_the_run_wrote(maint_cli: Any, recorded: Recorded) -> None:
    target = recorded.directory / "report.xml"
    done = report(maint_cli, recorded, recorded.document["id"][:18], "--format", "junit", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert target.read_text(encoding="utf-8") == recorded.junit.read_text(encoding="utf-8")
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_report_json_is_the_run_with_tickets_trend_and_seal(maint_cli: Any, recorded: Recorded) -> None:
    run_id = recorded.document["id"]
    done = report(maint_cli, recorded, run_id, "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    shown = json.loads(maint_cli("runs", "show", run_id, "--format", "json", cwd=recorded.directory,
                                 env=recorded.env).stdout)  # fmt: skip
    assert {key: document[key] for key in shown} == shown
    assert [(ticket["key"], ticket["action"], ticket["status"]) for ticket in document["tickets"]] == [
        ("lab2/sshd-running", "opened", "open")
    ]
    assert document["trend"][-1]["id"] == run_id
    assert document["trend"][-1]["counts"]["failed"] == 1
    assert "ledger" in document


def test_report_csv_has_one_row_per_result(maint_cli: Any, recorded: Recorded) -> None:
    target = recorded.directory / "results.csv"
    done = report(maint_cli, recorded, recorded.document["id"], "--format", "csv", "-o", str(target))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == len(recorded.document["results"])
    failed = [(row["host"], row["step"], row["attempt"]) for row in rows if row["status"] == "failed"]
    assert failed == [(*FAILING, "1")]


def test_report_errors_are_one_line(maint_cli: Any, recorded: Recorded) -> None:
    for args, fragment in (
        (("no-such-run",), "no run with id 'no-such-run'"),
        ((recorded.document["id"], "-o", str(recorded.directory / "missing" / "r.html")), "cannot write"),
    ):
        done = report(maint_cli, recorded, *args)
        assert done.returncode == 3, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in done.stderr


def test_an_unwritable_junit_path_keeps_the_run(maint_cli: Any, recorded: Recorded, lab: Lab) -> None:
    missing = recorded.directory / "missing" / "junit.xml"
    done = maint_cli("run", "health", "-i", lab.inventory, "-l", "lab1", *CALM, "--junit-xml", missing,
                     "--format", "json", cwd=recorded.directory, env=recorded.env)  # fmt: skip
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "cannot write" in errors[0] and "Traceback" not in done.stderr
    run_id = json.loads(done.stdout)["id"]
    assert f"maint report {run_id} --format junit" in errors[0]
    shown = maint_cli("runs", "show", run_id, "--format", "json", cwd=recorded.directory, env=recorded.env)
    assert json.loads(shown.stdout)["status"] == "ok"


def test_a_report_never_replaces_the_store_or_a_foreign_file(maint_cli: Any, recorded: Recorded, lab: Lab) -> None:
    run_id = recorded.document["id"]
    store = recorded.directory / "maint.db"
    before = store.read_bytes()
    for force in ((), ("--force",)):
        done = report(maint_cli, recorded, run_id, "--format", "html", "-o", str(store), *force)
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1 and str(store) in done.stderr and "--force" in done.stderr
    ran = maint_cli("run", "health", "-i", lab.inventory, "-l", "lab1", *CALM, "--junit-xml", store,
                    cwd=recorded.directory, env=recorded.env)  # fmt: skip
    assert ran.returncode == 3 and "is the store in use" in ran.stderr, ran.stderr
    exported = maint_cli("audit", "export", "-o", store, "--force", cwd=recorded.directory, env=recorded.env)
    assert exported.returncode == 3 and "is the store in use" in exported.stderr, exported.stderr
    assert store.read_bytes() == before
    for output_format in ("jsonl", "csv"):  # an earlier export is replaced, a foreign file is not
        target = recorded.directory / f"ledger.{output_format}"
        for _ in range(2):
            done = maint_cli("audit", "export", "--format", output_format, "-o", target, cwd=recorded.directory,
                             env=recorded.env)  # fmt: skip
            assert done.returncode == 0, done.stderr
    other = maint_cli("audit", "export", "-o", recorded.directory / "ledger.csv", "--format", "jsonl",
                      cwd=recorded.directory, env=recorded.env)  # fmt: skip
    assert other.returncode == 0, other.stderr  # an export of the other format is an export too
    foreign = recorded.directory / "foreign.txt"
    foreign.write_text("keep me\n", encoding="utf-8")
    refused = maint_cli("audit", "export", "-o", foreign, cwd=recorded.directory, env=recorded.env)
    assert refused.returncode == 3 and "--force" in refused.stderr and foreign.read_text() == "keep me\n"
    verified = maint_cli("audit", "verify", cwd=recorded.directory, env=recorded.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    notes = recorded.directory / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    refused = report(maint_cli, recorded, run_id, "--format", "csv", "-o", str(notes))
    assert refused.returncode == 3 and f"{notes} exists and is a file, not a maint report" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert notes.read_text(encoding="utf-8") == "my notes\n"
    forced = report(maint_cli, recorded, run_id, "--format", "csv", "-o", str(notes), "--force")
    assert forced.returncode == 0, forced.stderr
    assert notes.read_text(encoding="utf-8").startswith("run_id,host,")

    other_store = recorded.directory / "other.db"
    other_store.write_bytes(before)  # a maint store, not the one in use
    refused = report(maint_cli, recorded, run_id, "--format", "json", "-o", str(other_store))
    assert refused.returncode == 3 and "is a maint store, not a maint report" in refused.stderr

    for output_format in ("html", "json", "junit", "csv"):  # each format replaces its own earlier report
        target = recorded.directory / f"again.{output_format}"
        for _ in range(2):
            done = report(maint_cli, recorded, run_id, "--format", output_format, "-o", str(target))
            assert done.returncode == 0, (output_format, done.stderr)
    junit = recorded.directory / "again.junit"
    assert maint_cli("rerun", run_id, "--failed", "--junit-xml", junit, "--format", "json", cwd=recorded.directory,
                     env=recorded.env).returncode in (0, 4)  # fmt: skip
    # On a run, the option that forces it is named for the JUnit file: a plain --force would read as forcing the run.
    ci_notes = recorded.directory / "ci-notes.txt"
    ci_notes.write_text("keep\n", encoding="utf-8")
    for forced in ((), ("--force-junit-xml",)):
        ran = maint_cli("run", "health", "-i", lab.inventory, "-l", "lab1", *CALM, "--junit-xml", ci_notes, *forced,
                        cwd=recorded.directory, env=recorded.env)  # fmt: skip
        if not forced:
            assert ran.returncode == 3 and "(--force-junit-xml replaces it)" in ran.stderr, ran.stderr
            assert ci_notes.read_text(encoding="utf-8") == "keep\n"
    assert ran.returncode == 0, ran.stderr
    assert ci_notes.read_text(encoding="utf-8").startswith("<?xml")


def test_html_loads_nothing(maint_cli: Any, recorded: Recorded) -> None:
    done = report(maint_cli, recorded, recorded.document["id"], "--format", "html")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith("<!DOCTYPE html>")
    for reference in (r"<script", r"<link", r"<img", r"<iframe", r"\bsrc\s*=", r"\bhref\s*=", r"url\(", r"@import"):
        assert not re.search(reference, page, re.IGNORECASE), reference
    assert "report test &lt;CHG-1&gt;" in page


def cell_clusters(image: Any, colours: dict[str, tuple[int, int, int]]) -> list[tuple[int, int, str]]:
    """(x, y, status) of every solid square of exactly CELL_PIXELS in one of ``colours``."""
    width, height = image.size
    pixels = image.load()
    by_colour = {rgb: status for status, rgb in colours.items()}
    points: dict[str, set[tuple[int, int]]] = {status: set() for status in colours}
    for y in range(height):
        for x in range(width):
            status = by_colour.get(pixels[x, y])
            if status is not None:
                points[status].add((x, y))
    found = []
    for status, remaining in points.items():
        while remaining:
            start = remaining.pop()
            component, frontier = [start], [start]
            while frontier:
                x, y = frontier.pop()
                for neighbour in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                    if neighbour in remaining:
                        remaining.remove(neighbour)
                        component.append(neighbour)
                        frontier.append(neighbour)
            xs, ys = [x for x, _ in component], [y for _, y in component]
            size = (max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
            # Legend swatches are smaller and trend bars narrower: only whole cells count.
            if size == (CELL_PIXELS, CELL_PIXELS) and len(component) == CELL_PIXELS * CELL_PIXELS:
                found.append((min(xs), min(ys), status))
    return found


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_html_matrix_in_chromium(maint_cli: Any, recorded: Recorded, tmp_path: Path) -> None:
    from PIL import Image

    page = tmp_path / "report.html"
    done = report(maint_cli, recorded, recorded.document["id"], "--format", "html", "-o", str(page))
    assert done.returncode == 0, done.stderr
    screenshot = tmp_path / "report.png"
    home = tmp_path / "home"
    home.mkdir()
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400",
         f"--screenshot={screenshot}", page.as_uri()],
        env={**os.environ, "HOME": str(home)}, capture_output=True, timeout=90, check=False,
    )  # fmt: skip
    assert screenshot.exists(), "chromium wrote no screenshot"
    colours = {status: (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
               for status, value in STATUS_COLOURS.items()}  # fmt: skip
    with Image.open(screenshot) as opened:
        cells = cell_clusters(opened.convert("RGB"), colours)

    statuses = last_statuses(recorded.document)
    steps = list(dict.fromkeys(result["step"] for result in recorded.document["results"]))
    rows = sorted({y for _, y, _ in cells})
    columns = sorted({x for x, _, _ in cells})
    assert (len(rows), len(columns)) == (len(HOSTS), len(steps))
    assert len(cells) == len(HOSTS) * len(steps)  # one cell per (host, check), none missing
    red = [(rows.index(y), columns.index(x)) for x, y, status in cells if status == "failed"]
    failed_pairs = [pair for pair, status in statuses.items() if status == "failed"]
    assert len(red) == len(failed_pairs) == 1
    assert red == [(HOSTS.index(FAILING[0]), steps.index(FAILING[1]))]
    green = [cell for cell in cells if cell[2] == "ok"]
    assert len(green) == sum(1 for status in statuses.values() if status == "ok")
    for x, y, status in cells:
        host, step = HOSTS[rows.index(y)], steps[columns.index(x)]
        assert statuses[(host, step)] == status, (host, step)
