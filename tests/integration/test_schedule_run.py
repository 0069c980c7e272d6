"""``maint schedule run`` and ``maint run --window`` over real SSH on the lab, with the window's pings
received by a real HTTP server on loopback, and ``maint schedule export --systemd`` checked by systemd.

The windows are always open (``FREQ=MINUTELY`` for 2 minutes: the openings overlap without end) or
always closed (a blackout from 2000 to 2099), so no test waits for a real window.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fake import FakeHTTPServer, Request

from maint.lab import Lab

pytestmark = pytest.mark.lab

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture(scope="module")
def monitor() -> Iterator[FakeHTTPServer]:
    """A healthchecks.io-like ping receiver: any POST to /ping/... answers 200 OK."""
    server = FakeHTTPServer()

    @server.route("POST", "/ping/(?P<check>.+)")
    def accept(request: Request) -> tuple[int, Any]:
        return 200, b"OK"

    server.start()
    yield server
    server.stop()


@pytest.fixture
def pings(monitor: FakeHTTPServer) -> FakeHTTPServer:
    monitor.requests.clear()
    return monitor


def project(tmp_path: Path, monitor: FakeHTTPServer, refused_url: str = "http://127.0.0.1:9") -> Path:
    """A project with a tiny playbook, a failing one, and windows that are always open or always closed."""
    directory = tmp_path / "project"
    (directory / "playbooks").mkdir(parents=True)
    (directory / "playbooks" / "hello.yml").write_text(
        "name: hello\nsteps:\n  - id: hello\n    type: command\n    command: echo hello\n    expect_stdout: hello\n"
    )
    (directory / "playbooks" / "broken.yml").write_text(
        "name: broken\nsteps:\n  - id: always-fails\n    type: command\n    command: 'false'\n"
    )
    url = f"{monitor.url}/ping"
    always = "    rrule: FREQ=MINUTELY\n    duration: 2m\n    hosts: lab1,lab2\n"
    (directory / "maint.yml").write_text(
        f"store: sqlite:///{directory / 'maint.db'}\n"
        "windows:\n"
        f"  open:\n{always}    playbooks: [hello]\n"
        f"    ping: {{start: 'env:MAINT_TEST_PING_START', success: {url}/open, fail: {url}/open/fail}}\n"
        f"  failing:\n{always}    playbooks: [broken]\n"
        f"    ping: {{start: {url}/failing/start, success: {url}/failing, fail: {url}/failing/fail}}\n"
        f"  missing:\n{always}    playbooks: [no-such-playbook]\n"
        f"    ping: {{start: {url}/missing/start, success: {url}/missing, fail: {url}/missing/fail}}\n"
        f"  unheard:\n{always}    playbooks: [hello]\n"
        f"    ping: {{start: {refused_url}/SECRET-TOKEN/start, success: {refused_url}/SECRET-TOKEN}}\n"
        "  closed:\n"
        "    cron: '0 0 * * *'\n    duration: 1m\n    blackouts: ['2000-01-01..2099-12-31']\n    playbooks: [hello]\n"
        f"    ping: {{start: {url}/closed/start, success: {url}/closed, fail: {url}/closed/fail}}\n"
        "  unscheduled:\n    cron: '@daily'\n    duration: 1h\n"
    )
    return directory


def environment(monitor: FakeHTTPServer) -> dict[str, str]:
    return {"MAINT_CONFIG": "", "MAINT_DB": "", "MAINT_TEST_PING_START": f"{monitor.url}/ping/open/start"}


def received(server: FakeHTTPServer) -> list[tuple[str, dict[str, Any]]]:
    return [(request.path, request.json()) for request in server.requests]


def test_a_scheduled_run_pings_start_then_success(lab: Lab, maint_cli: Any, tmp_path: Path,
                                                  pings: FakeHTTPServer) -> None:  # fmt: skip
    directory = project(tmp_path, pings)
    done = maint_cli("schedule", "run", "open", "-i", lab.inventory, "--format", "json", cwd=directory,
                     env=environment(pings))  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["reason"] == "scheduled: window open"
    assert sorted({result["host"] for result in document["results"]}) == ["lab1", "lab2"]
    assert {result["status"] for result in document["results"]} == {"ok"}
    # The start URL came from an env: reference; neither URL is ever printed.
    assert received(pings) == [
        ("/ping/open/start", {"window": "open", "event": "start", "run_id": document["id"], "status": "running"}),
        ("/ping/open", {"window": "open", "event": "success", "run_id": document["id"], "status": "ok",
                        "exit_code": 0}),
    ]  # fmt: skip
    assert "/ping/" not in done.stderr
    assert "warning" not in done.stderr


def test_failed_checks_still_ping_success_with_their_exit_code(lab: Lab, maint_cli: Any, tmp_path: Path,
                                                               pings: FakeHTTPServer) -> None:  # fmt: skip
    directory = project(tmp_path, pings)
    done = maint_cli("schedule", "run", "failing", "-i", lab.inventory, cwd=directory, env=environment(pings))
    assert done.returncode == 4, done.stderr
    assert [(path, body["event"], body.get("exit_code")) for path, body in received(pings)] == [
        ("/ping/failing/start", "start", None),
        ("/ping/failing", "success", 4),
    ]
    assert received(pings)[1][1]["status"] == "failed"


def test_maint_run_with_a_window_pings_the_same_way(lab: Lab, maint_cli: Any, tmp_path: Path,
                                                    pings: FakeHTTPServer) -> None:  # fmt: skip
    directory = project(tmp_path, pings)
    done = maint_cli("run", "hello", "-i", lab.inventory, "-l", "lab2", "--window", "open", cwd=directory,
                     env=environment(pings))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [(path, body["event"], body.get("exit_code")) for path, body in received(pings)] == [
        ("/ping/open/start", "start", None),
        ("/ping/open", "success", 0),
    ]


def test_a_closed_window_exits_7_and_pings_nothing(lab: Lab, maint_cli: Any, tmp_path: Path,
                                                   pings: FakeHTTPServer) -> None:  # fmt: skip
    directory = project(tmp_path, pings)
    done = maint_cli("schedule", "run", "closed", "-i", lab.inventory, cwd=directory, env=environment(pings))
    assert done.returncode == 7, done.stderr
    assert "not started: window 'closed' is closed" in done.stderr
    assert received(pings) == []


def test_a_window_that_cannot_run_pings_fail(lab: Lab, maint_cli: Any, tmp_path: Path,
                                             pings: FakeHTTPServer) -> None:  # fmt: skip
    directory = project(tmp_path, pings)
    done = maint_cli("schedule", "run", "missing", "-i", lab.inventory, cwd=directory, env=environment(pings))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    ((path, body),) = received(pings)
    assert path == "/ping/missing/fail"
    assert (body["event"], body["run_id"], body["status"], body["exit_code"]) == ("fail", None, "error", 3)
    assert "no-such-playbook" in body["error"]
    unscheduled = maint_cli("schedule", "run", "unscheduled", "-i", lab.inventory, cwd=directory,
                            env=environment(pings))  # fmt: skip
    assert unscheduled.returncode == 3
    assert unscheduled.stderr.startswith(f"maint: error: {directory / 'maint.yml'}:")
    assert "window 'unscheduled' has no playbooks to run" in unscheduled.stderr


def test_a_refused_ping_warns_and_keeps_the_exit_code(lab: Lab, maint_cli: Any, tmp_path: Path,
                                                      pings: FakeHTTPServer) -> None:  # fmt: skip
    closed = FakeHTTPServer().start()
    closed.stop()  # its port now refuses connections
    directory = project(tmp_path, pings, refused_url=closed.url)
    done = maint_cli("schedule", "run", "unheard", "-i", lab.inventory, cwd=directory, env=environment(pings))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("maint: warning: ping")]
    assert warnings == [
        "maint: warning: ping 'start' of window 'unheard' failed: cannot connect: connection refused",
        "maint: warning: ping 'success' of window 'unheard' failed: cannot connect: connection refused",
    ]
    assert "SECRET-TOKEN" not in done.stderr + done.stdout


def test_exported_units_are_valid_and_their_command_runs_the_window(lab: Lab, run_maint: Any, tmp_path: Path,
                                                                    pings: FakeHTTPServer) -> None:  # fmt: skip
    # A subprocess: the unit's command line is that of the maint a user started.
    directory = project(tmp_path, pings)
    units = tmp_path / "units"
    done = run_maint("schedule", "export", "--systemd", units, "-i", lab.inventory, "--randomized-delay", "30s",
                     cwd=directory, env=environment(pings))  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = sorted(path.name for path in units.iterdir())
    windows = ["closed", "failing", "missing", "open", "unheard"]
    assert names == sorted(f"maint-{name}.{kind}" for name in windows for kind in ("service", "timer"))
    assert done.stdout.splitlines() == [str(units / f"maint-{name}.{kind}") for name in
                                        ["open", "failing", "missing", "unheard", "closed"]
                                        for kind in ("service", "timer")]  # fmt: skip
    assert re.search(r"maint: note: .*maint\.yml:\d+: window 'unscheduled' has no playbooks: not scheduled",
                     done.stderr)  # fmt: skip
    service = (units / "maint-open.service").read_text()
    timer = (units / "maint-open.timer").read_text()
    assert f"WorkingDirectory={directory}\n" in service
    assert "OnCalendar=*-*-* *:*:00 UTC\n" in timer
    assert "RandomizedDelaySec=30s\n" in timer
    # The unit's own command line, run as systemd would (in its working directory), runs the window.
    (command,) = [line.removeprefix("ExecStart=") for line in service.splitlines() if line.startswith("ExecStart=")]
    arguments = shlex.split(command)
    assert Path(arguments[0]).is_absolute()
    assert arguments[1:] == ["schedule", "run", "open", "-i", str(lab.inventory)]
    env = {**os.environ, **environment(pings), "MAINT_DEBUG_LOG": str(tmp_path / "debug.log")}
    ran = subprocess.run(arguments, cwd=directory, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed: the unit files were not verified by systemd")
    verified = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", *sorted(units.iterdir())],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    ours = [line for line in verified.stderr.splitlines() if "maint-" in line]
    assert verified.returncode == 0 and ours == [], verified.stderr
    for path in units.glob("*.timer"):
        for line in path.read_text().splitlines():
            if line.startswith("OnCalendar="):
                expression = line.removeprefix("OnCalendar=")
                calendar = subprocess.run([SYSTEMD_ANALYZE, "calendar", expression], capture_output=True, text=True,
                                          timeout=30, check=False)  # fmt: skip
                assert calendar.returncode == 0, calendar.stderr
                assert f"Normalized form: {expression}" in calendar.stdout
