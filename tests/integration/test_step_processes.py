"""A step that is ended leaves no process behind on the host: at its timeout, on Ctrl-C, on SIGTERM and
when the controller is killed with SIGKILL (the dropped connection ends it).

The lab's hosts are this machine, so each test finds the step's processes in /proc by a token on their
command line (a sleep of a length no other test uses, in a child of the step's shell: the whole process
group must go, not only the shell).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from processes import processes_with, wait_until

from maint.lab import Lab

pytestmark = pytest.mark.lab


def long_step(tmp_path: Path, timeout: int = 120, before: str = "") -> tuple[Path, str]:
    """A playbook whose step starts a long sleep (in a pipeline, so the shell has children), after the steps
    ``before`` (playbook YAML) if any."""
    token = f"36{secrets.randbelow(10**6):06d}.5"
    book = tmp_path / "long.yml"
    book.write_text(
        f"steps:\n{before}"
        f"  - id: long\n    type: command\n    command: sleep {token} | cat; echo after\n    timeout: {timeout}\n"
    )
    return book, token


def start_run(maint_bin: Path, lab: Lab, tmp_path: Path, book: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}", "MAINT_DEBUG_LOG": str(tmp_path / "debug")}
    return subprocess.Popen(
        [str(maint_bin), "run", str(book), "-i", str(lab.inventory), "-l", "lab1:lab2", "--format", "json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def recorded(tmp_path: Path) -> tuple[tuple[str, int], list[tuple[str, str, str, str]]]:
    with sqlite3.connect(tmp_path / "maint.db") as connection:
        run = connection.execute("select status, exit_code from runs").fetchone()
        results = connection.execute("select step, host, status, summary from results order by step, host").fetchall()
    return run, results


def results_of(tmp_path: Path, step: str) -> int:
    """How many results of ``step`` the run's store holds now (0 before the store exists)."""
    try:
        with contextlib.closing(sqlite3.connect(tmp_path / "maint.db")) as connection:
            return int(connection.execute("select count(*) from results where step = ?", (step,)).fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_timed_out_step_is_ended_on_the_host(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    book, token = long_step(tmp_path, timeout=1)
    started = time.monotonic()
    done = run_maint("run", book, "-i", lab.inventory, "-l", "lab1", "--format", "json",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    assert time.monotonic() - started < 15
    assert done.returncode == 4, done.stderr
    result = json.loads(done.stdout)["results"][0]
    assert (result["status"], result["summary"]) == ("error", "timed out after 1s")
    assert "[maint] ended the step's processes on the host with SIGTERM (process group " in result["output"]
    assert "after" not in result["output"]  # the rest of the command did not go on either
    assert processes_with(token) == []


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_ends_its_steps_on_the_hosts(
    lab: Lab, maint_bin: Path, tmp_path: Path, signal_number: signal.Signals
) -> None:
    book, token = long_step(tmp_path, before="  - id: quick\n    type: command\n    command: echo done\n")
    process = start_run(maint_bin, lab, tmp_path, book)
    try:
        wait_until(lambda: len(processes_with(token)) == 2, timeout=30, what="the step running on both hosts")
        # Results are in the store while the run is still going: written as they arrive.
        wait_until(lambda: results_of(tmp_path, "quick") == 2, timeout=30, what="the quick step's results recorded")
        assert process.poll() is None
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert processes_with(token) == []
    run, results = recorded(tmp_path)
    assert run == ("interrupted", 130)
    # What finished keeps its result; the steps in flight are recorded as not finished (resume runs them
    # again), saying what was ended on the host.
    assert [(step, host, status) for step, host, status, _ in results] == [
        ("long", "lab1", "skipped"), ("long", "lab2", "skipped"), ("quick", "lab1", "ok"), ("quick", "lab2", "ok"),
    ]  # fmt: skip
    for step, _, _, summary in results:
        if step == "long":
            assert summary.startswith("interrupted: the run was stopped before this step finished; ended the "
                                      "step's processes on the host with SIGTERM (process group ")  # fmt: skip


def test_a_killed_controller_leaves_no_step_running(lab: Lab, maint_bin: Path, tmp_path: Path) -> None:
    book, token = long_step(tmp_path)
    process = start_run(maint_bin, lab, tmp_path, book)
    try:
        wait_until(lambda: len(processes_with(token)) == 2, timeout=30, what="the step running on both hosts")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    finally:
        process.kill()
    # The connections dropped with the controller: each step's watchdog read end of file on the host.
    wait_until(lambda: processes_with(token) == [], what="no process of the step left on the hosts")


def test_a_step_that_ignores_sigterm_is_killed_and_the_next_step_runs(
    lab: Lab, run_maint: Any, tmp_path: Path
) -> None:
    token = f"37{secrets.randbelow(10**6):06d}.5"
    book = tmp_path / "stubborn.yml"
    book.write_text(
        "steps:\n"
        f"  - id: stubborn\n    type: command\n    command: trap '' TERM; sleep {token}\n    timeout: 1\n"
        "  - id: next\n    type: command\n    command: echo alive\n"
    )
    done = run_maint("run", book, "-i", lab.inventory, "-l", "lab1", "--format", "json",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    assert done.returncode == 4, done.stderr
    stubborn, following = json.loads(done.stdout)["results"]
    assert (stubborn["status"], stubborn["summary"]) == ("error", "timed out after 1s")
    assert "[maint] ended the step's processes and its session on the host with SIGKILL" in stubborn["output"]
    assert (following["status"], following["summary"]) == ("ok", "alive")
    assert processes_with(token) == []
