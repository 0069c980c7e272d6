"""Rolling batches, the failure threshold, resume, rerun and a killed controller, over real SSH on the lab."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from maint.lab import Lab

pytestmark = pytest.mark.lab


def project(tmp_path: Path, extra_steps: str = "") -> tuple[Path, Path]:
    directory = tmp_path / "project"
    directory.mkdir()
    flags = tmp_path / "flags"
    flags.mkdir()
    (directory / "maint.yml").write_text(f"store: sqlite:///{directory / 'maint.db'}\n", encoding="utf-8")
    (directory / "book.yml").write_text(
        f"""
name: book
steps:
  - id: flag-absent
    type: command
    command: test ! -e {flags}/{{{{ inventory_hostname }}}}.bad
{extra_steps}
""",
        encoding="utf-8",
    )
    return directory, flags


def run(run_maint: Any, directory: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = run_maint(*args, "--format", "json", cwd=directory, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    document: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, document


def statuses(document: dict[str, Any]) -> dict[str, str]:
    last: dict[str, dict[str, Any]] = {}
    for result in document["results"]:
        if result["host"] not in last or result["attempt"] >= last[result["host"]]["attempt"]:
            last[result["host"]] = result
    return {host: result["status"] for host, result in sorted(last.items())}


def test_serial_batches_abort_then_resume_finishes_exactly_the_rest(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    directory, flags = project(tmp_path)
    (flags / "lab2.bad").touch()
    (flags / "lab3.bad").touch()
    code, document = run(run_maint, directory, "run", "book.yml", "-i", str(lab.inventory),
                         "--serial", "1,2", "--max-fail-percentage", "40", "--no-tickets")  # fmt: skip
    assert code == 6
    assert document["status"] == "aborted"
    assert statuses(document) == {"lab1": "ok", "lab2": "failed", "lab3": "failed", "lab4": "skipped",
                                  "lab5": "skipped", "lab6": "skipped"}  # fmt: skip
    skipped = [r for r in document["results"] if r["status"] == "skipped"]
    assert all(r["summary"].startswith("aborted: 2 of 2 hosts failed in batch 2") for r in skipped)
    assert document["options"]["serial"] == ["1", "2"]

    (flags / "lab2.bad").unlink()
    (flags / "lab3.bad").unlink()
    code, resumed = run(run_maint, directory, "resume", document["id"])
    assert resumed["id"] == document["id"]  # the same run, continued
    # Only lab4..lab6 ran again: lab2 and lab3 keep their recorded failures.
    again = [r for r in resumed["results"] if r["attempt"] > 1]
    assert sorted(r["host"] for r in again) == ["lab4", "lab5", "lab6"]
    assert statuses(resumed) == {"lab1": "ok", "lab2": "failed", "lab3": "failed", "lab4": "ok", "lab5": "ok",
                                 "lab6": "ok"}  # fmt: skip
    assert (code, resumed["status"]) == (4, "failed")
    assert len(resumed["options"]["resumed"]) == 1

    code, rerun = run(run_maint, directory, "rerun", document["id"], "--failed", "--junit-xml", "rerun.xml")
    assert code == 0
    assert rerun["id"] != document["id"] and rerun["options"]["rerun_of"] == document["id"]
    assert sorted(r["host"] for r in rerun["results"]) == ["lab2", "lab3"]
    suites = ElementTree.parse(directory / "rerun.xml").getroot()
    assert sorted(case.get("classname") for case in suites.iter("testcase")) == ["lab2", "lab3"]
    assert suites.get("failures") == "0"

    done = run_maint("resume", document["id"], cwd=directory)
    assert done.returncode == 3 and "only an interrupted or aborted run resumes" in done.stderr


def test_resume_refuses_a_changed_playbook_unless_allowed(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    directory, flags = project(tmp_path)
    (flags / "lab2.bad").touch()
    code, document = run(run_maint, directory, "run", "book.yml", "-i", str(lab.inventory), "-l", "lab1,lab2,lab3",
                         "--serial", "1", "--max-fail-percentage", "0", "--no-tickets")  # fmt: skip
    assert code == 6
    book = directory / "book.yml"
    book.write_text(book.read_text() + "  - id: extra\n    type: command\n    command: 'true'\n")
    refused = run_maint("resume", document["id"], cwd=directory)
    assert refused.returncode == 3
    assert "changed since run" in refused.stderr and "--allow-changed" in refused.stderr
    code, resumed = run(run_maint, directory, "resume", document["id"], "--allow-changed")
    assert resumed["options"]["resumed"][0]["allow_changed"] is True
    # lab1 and lab2 ran before; lab3 never started, and now runs both steps of the new version.
    assert sorted((r["host"], r["step"]) for r in resumed["results"] if r["attempt"] > 1) == [
        ("lab1", "extra"), ("lab2", "extra"), ("lab3", "extra"), ("lab3", "flag-absent")
    ]
    (flags / "lab2.bad").unlink()


def test_a_controller_killed_with_sigkill_is_marked_interrupted_and_resumable(
    lab: Lab, maint_bin: Path, run_maint: Any, tmp_path: Path
) -> None:
    directory, _ = project(tmp_path, "  - id: slow\n    type: command\n    command: sleep 5\n")
    process = subprocess.Popen(
        [str(maint_bin), "run", "book.yml", "-i", str(lab.inventory), "-l", "lab1,lab2", "--no-tickets"],
        cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    database = directory / "maint.db"
    deadline = time.monotonic() + 30
    recorded = 0
    while time.monotonic() < deadline and recorded < 2:
        time.sleep(0.2)
        try:
            with sqlite3.connect(database) as connection:
                recorded = connection.execute("SELECT count(*) FROM results").fetchone()[0]
        except sqlite3.Error:
            recorded = 0
    assert recorded == 2, "the first step did not finish in time"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with sqlite3.connect(database) as connection:
        (status,) = connection.execute("SELECT status FROM runs").fetchone()
    assert status == "running"  # stored so until a run on this controller records the interruption
    listed = json.loads(run_maint("runs", "list", "--format", "json", cwd=directory).stdout)
    assert listed[0]["status"] == "interrupted"  # its controller's process is gone: readers say so at once
    # The next command that opens the run finds its controller gone.
    shown = run_maint("resume", listed[0]["id"], cwd=directory, timeout=120)
    assert "Traceback" not in shown.stderr
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT host, step, attempt FROM results ORDER BY id").fetchall()
        (options,) = connection.execute("SELECT options FROM runs").fetchone()
    assert sorted(rows[:2]) == [("lab1", "flag-absent", 1), ("lab2", "flag-absent", 1)]
    assert sorted((host, step) for host, step, _ in rows[2:]) == [("lab1", "slow"), ("lab2", "slow")]
    assert json.loads(options)["resumed"]


def test_a_second_run_on_the_same_hosts_refuses_or_waits(
    lab: Lab, maint_bin: Path, run_maint: Any, tmp_path: Path
) -> None:
    # The first run's step holds lab1 and lab2 until the test releases it: no timing involved.
    release = tmp_path / "release"
    directory, _ = project(tmp_path, f"  - id: nap\n    type: command\n    command: while [ ! -e {release} ]; do "
                                     "sleep 0.05; done\n    timeout: 120\n")  # fmt: skip
    (directory / "fast.yml").write_text("name: fast\nsteps:\n  - id: ok\n    type: command\n    command: 'true'\n")
    first = subprocess.Popen(
        [str(maint_bin), "run", "book.yml", "-i", str(lab.inventory), "-l", "lab1,lab2", "--no-tickets"],
        cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        registry = directory / "maint.db.locks" / "runs.json"  # beside the store maint.yml names
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (registry.exists() and json.loads(registry.read_text() or "{}")):
            time.sleep(0.05)
        refused = run_maint("run", "fast.yml", "-i", lab.inventory, "-l", "lab2,lab3", "--no-tickets", cwd=directory)
        assert refused.returncode == 7
        assert "is working on lab2" in refused.stderr and "--wait" in refused.stderr
        other_hosts = run_maint("run", "fast.yml", "-i", lab.inventory, "-l", "lab4", "--no-tickets", cwd=directory)
        assert other_hosts.returncode == 0, other_hosts.stderr
        assert first.poll() is None  # the first run still works on lab1 and lab2
        waiting = subprocess.Popen(
            [str(maint_bin), "run", "fast.yml", "-i", str(lab.inventory), "-l", "lab2,lab3", "--no-tickets", "--wait",
             "--format", "json"],
            cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert waiting.stderr is not None
        # It says once which run it queues behind; only then is the first run let go.
        notice = waiting.stderr.readline()
        assert notice.startswith("maint: waiting: run ") and "is working on lab2" in notice, notice
        release.touch()
        stdout, stderr = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, stderr
        assert first.wait(timeout=30) == 0
    finally:
        release.touch()
        first.kill()
    waited = subprocess.CompletedProcess(waiting.args, waiting.returncode, stdout, stderr)
    with sqlite3.connect(directory / "maint.db") as connection:
        spans = dict(connection.execute("SELECT id, finished FROM runs").fetchall())
    assert len(spans) == 3  # the refused run was never recorded
    book_run = [run_id for run_id in spans if run_id not in (json.loads(waited.stdout)["id"],)]
    first_finished = max(spans[run_id] for run_id in book_run)
    assert json.loads(waited.stdout)["started"] >= first_finished  # it started once the first had ended
    assert json.loads(registry.read_text()) == {}
