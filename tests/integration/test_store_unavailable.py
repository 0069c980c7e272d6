"""A store that cannot be written (locked by another process, a full file system) before and during a run
on the real lab: nothing runs without a record, finished results wait in the spool, and ``maint resume``
records them and runs the rest, each step exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_lock import write_locked

from maint.lab import Lab

pytestmark = pytest.mark.lab

STEPS = ("first", "second", "third")
BUSY = "0.5s"


def project(tmp_path: Path, store: Path) -> tuple[Path, Path]:
    """A project whose store is ``store`` (busy timeout 0.5 s) and a playbook whose every step appends
    its name to ``marks/HOST`` on the host: how many times each step ran."""
    directory = tmp_path / "project"
    directory.mkdir()
    marks = tmp_path / "marks"
    marks.mkdir()
    (directory / "maint.yml").write_text(f"store: sqlite:///{store}\nstore_busy_timeout: {BUSY}\n", encoding="utf-8")
    steps = "".join(
        f"  - id: {step}\n    type: command\n"
        f"    command: echo {step} >> {marks}/{{{{ inventory_hostname }}}} && sleep 0.3\n"
        for step in STEPS
    )
    (directory / "book.yml").write_text(f"name: book\nsteps:\n{steps}", encoding="utf-8")
    return directory, marks


def start_run(maint_bin: Path, directory: Path, lab: Lab, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(maint_bin), "run", "book.yml", "-i", str(lab.inventory), "-f", "2", "--no-tickets"],
        cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip


def wait_for_first_result(store: Path, process: subprocess.Popen[str]) -> None:
    """Poll the store until the run recorded a result (the run is under way)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(store)) as connection:
            if connection.execute("SELECT count(*) FROM results").fetchone()[0]:
                return
        time.sleep(0.02)  # the poll's interval, not a guess at when the result arrives
    pytest.fail(f"the run recorded no result (exit {process.poll()}): {process.stderr and process.stderr.read()}")


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "SQL" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("maint: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def ran(marks: Path) -> dict[str, list[str]]:
    """The steps each host ran, in order, from the marks the steps left."""
    return {path.name: path.read_text().split() for path in sorted(marks.iterdir())}


def assert_recorded_once_each(
    run_maint: Any, directory: Path, marks: Path, lab: Lab, run_id: str, env: dict[str, str] | None = None
) -> None:
    """``maint resume``: then every (host, step) ran exactly once, its result is recorded, the ledger verifies."""
    resumed = run_maint("resume", run_id, "--format", "json", cwd=directory, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    steps_run = ran(marks)
    assert sorted(steps_run) == sorted(host.name for host in lab.hosts)
    assert all(done == list(STEPS) for done in steps_run.values()), steps_run  # each step once, in order
    executed = [r for r in document["results"] if r["status"] != "skipped"]
    assert sorted((r["host"], r["step"]) for r in executed) == sorted(
        (host, step) for host in steps_run for step in STEPS
    )  # every step that ran has its one result: none lost, none twice
    assert document["status"] == "ok" and document["counts"] == {"ok": 18}
    verified = run_maint("audit", "verify", cwd=directory)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_store_locked_before_the_run_runs_nothing_and_exits_8(
    lab: Lab, maint_bin: Path, run_maint: Any, tmp_path: Path
) -> None:
    store = tmp_path / "maint.db"
    directory, marks = project(tmp_path, store)
    assert run_maint("db", "upgrade", cwd=directory).returncode == 0  # the store exists
    with write_locked(store):
        began = time.monotonic()
        process = start_run(maint_bin, directory, lab)
        _, stderr = process.communicate(timeout=120)
        waited = time.monotonic() - began
    assert process.returncode == 8, stderr
    assert waited < 8  # maint.yml's 0.5 s busy timeout, not the default 10 s
    line = one_error_line(stderr)
    assert f"store sqlite:///{store} could not be written (database is locked)" in line
    assert "not started, no step ran" in line
    assert list(marks.iterdir()) == []  # nothing ran on any host
    with contextlib.closing(sqlite3.connect(store)) as connection:
        assert connection.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_a_store_locked_mid_run_spools_and_resume_records_every_result_once(
    lab: Lab, maint_bin: Path, run_maint: Any, tmp_path: Path
) -> None:
    store = tmp_path / "maint.db"
    directory, marks = project(tmp_path, store)
    process = start_run(maint_bin, directory, lab)
    wait_for_first_result(store, process)
    with write_locked(store):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 8, stderr
        line = one_error_line(stderr)
        with contextlib.closing(sqlite3.connect(store)) as connection:
            (run_id, status), = connection.execute("SELECT id, status FROM runs").fetchall()  # fmt: skip
        spool = Path(f"{store}.spool") / f"{run_id}.jsonl"
        assert f"store sqlite:///{store} could not be written (database is locked): run {run_id} stopped" in line
        assert f"kept in {spool}; 'maint resume {run_id}' records them" in line
        assert status == "running"  # the store could not say otherwise
        assert spool.stat().st_mode & 0o777 == 0o600 and spool.parent.stat().st_mode & 0o777 == 0o700
        # The run stopped starting steps: some hosts never began.
        before = ran(marks)
        assert len(before) < 6
        # Still locked: resume refuses rather than run again what waits in the spool.
        refused = run_maint("resume", run_id, cwd=directory, timeout=120)
        assert refused.returncode == 8
        assert f"run {run_id}: finished results wait in {spool} until store" in one_error_line(refused.stderr)
        assert ran(marks) == before
    assert_recorded_once_each(run_maint, directory, marks, lab, run_id)
    assert not spool.exists()


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs (needs root: mount), unmounted at the end."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system has no page left; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (1 << 20, 4096):
            with contextlib.suppress(OSError):  # ENOSPC: then smaller pieces, down to one page
                while True:
                    handle.write(b"\0" * size)
    return filler


def test_a_full_disk_under_the_store_spools_elsewhere_and_resume_records_every_result_once(
    lab: Lab, maint_bin: Path, run_maint: Any, tmp_path: Path, small_filesystem: Path
) -> None:
    store = small_filesystem / "maint.db"
    directory, marks = project(tmp_path, store)
    state = tmp_path / "state"
    process = start_run(maint_bin, directory, lab, env={"XDG_STATE_HOME": str(state)})
    wait_for_first_result(store, process)
    filler = fill(small_filesystem)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 8, stderr
    line = one_error_line(stderr)
    assert f"store sqlite:///{store} could not be written (disk full)" in line
    # Beside the store there is no room: the spool went to the state directory, on another file system.
    spooled = sorted(state.glob("maint/spool/*/*.jsonl"))
    assert len(spooled) == 1 and f"kept in {spooled[0]};" in line, line
    assert not list(Path(f"{store}.spool").glob("*.jsonl"))
    assert len(ran(marks)) < 6
    filler.unlink()
    assert_recorded_once_each(run_maint, directory, marks, lab, spooled[0].stem, env={"XDG_STATE_HOME": str(state)})
    assert not spooled[0].exists()
