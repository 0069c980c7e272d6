"""The store's files and what hangs off the store, with real maint processes against the lab: file
modes under ``.maint/``, host locks held per store whatever the directory, and a killed controller's
run shown as interrupted at once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.testing import wait_until

pytestmark = pytest.mark.lab


def gated_playbook(directory: Path, gate: Path) -> Path:
    """A playbook whose second step runs until ``gate`` exists (the test decides when the run ends)."""
    book = directory / "gated.yml"
    book.write_text(
        "steps:\n"
        "  - id: quick\n    type: command\n    command: echo done\n"
        f"  - id: gate\n    type: command\n    command: while [ ! -e {gate} ]; do sleep 0.05; done\n"
    )
    return book


def start_maint(maint_bin: Path, *args: str | os.PathLike[str], cwd: Path, env: dict[str, str] | None = None
                ) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [str(maint_bin), *(str(arg) for arg in args)], cwd=cwd, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def gate_reached(database: Path, hosts: int = 1) -> bool:
    """Whether the run in ``database`` is running with its quick step done on ``hosts`` hosts."""
    if not database.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(database)) as connection:
            done = connection.execute("select count(*) from results where step = 'quick'").fetchone()[0]
    except sqlite3.OperationalError:
        return False
    return bool(done >= hosts)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory under ``root`` (and root): relative path -> (kind, permission bits)."""
    found = {".": ("dir", stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        info = path.lstat()
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        found[str(path.relative_to(root))] = (kind, stat.S_IMODE(info.st_mode))
    return found


def test_everything_under_maint_is_owner_only_whatever_the_umask(lab: Lab, maint_bin: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "maint.yml").write_text("tickets: {enabled: true}\n")  # a project: its state is .maint/ beside it
    gate = tmp_path / "gate"
    book = gated_playbook(tmp_path, gate)
    store = project / ".maint" / "maint.db"
    with umask(0o022):
        process = start_maint(maint_bin, "run", book, "-i", lab.inventory, "-l", "lab1", cwd=project)
    try:
        wait_until(lambda: gate_reached(store), 30, "the run's first step")
        # During the run: the store with its -wal and -shm files, the lock registry, the inventory cache.
        during = modes(project / ".maint")
    finally:
        gate.touch()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    after = modes(project / ".maint")
    assert {"maint.db", "maint.db-wal", "maint.db-shm", "maint.db.locks", "maint.db.locks/lock"} <= set(during)
    assert any(name.startswith("cache/") for name in after), after
    for name, (kind, mode) in {**during, **after}.items():
        assert mode == (0o700 if kind == "dir" else 0o600), (name, oct(mode))
    # The project directory itself is the user's: maint leaves its mode alone.
    assert stat.S_IMODE(project.stat().st_mode) == 0o755


def test_an_existing_store_directory_keeps_its_mode(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    shared = tmp_path / "srv-maint"
    shared.mkdir()
    shared.chmod(0o755)
    done = run_maint("run", "health", "-i", lab.inventory, "-l", "lab1", "--db", f"sqlite:///{shared / 'maint.db'}",
                     "-e", "health_load_warn=1000 health_load_critical=1000")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "maint.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((shared / "maint.db.locks").stat().st_mode) == 0o700


def test_host_locks_hold_per_store_across_directories(lab: Lab, maint_bin: Path, tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    database = tmp_path / "shared.db"
    gate = tmp_path / "gate"
    book = gated_playbook(tmp_path, gate)
    common = ("-i", lab.inventory, "-l", "lab1,lab2", "--db", f"sqlite:///{database}")
    first = start_maint(maint_bin, "run", book, *common, cwd=first_dir)
    waiting: subprocess.Popen[str] | None = None
    try:
        wait_until(lambda: gate_reached(database, 2), 30, "the first run's first step")
        refused = subprocess.run([str(maint_bin), "run", str(book), *map(str, common)], cwd=second_dir,
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        assert refused.returncode == 7, refused.stderr
        assert "not started" in refused.stderr and "lab1" in refused.stderr
        # With --wait the second run queues behind the first, and starts once it is over.
        waiting = start_maint(maint_bin, "run", book, *common, "--wait", "--format", "json", cwd=second_dir)
        with contextlib.closing(sqlite3.connect(database)) as connection:
            wait_until(lambda: waiting is not None and waiting.poll() is None, 5, "the waiting run")
            assert connection.execute("select count(*) from runs").fetchone()[0] == 1
    finally:
        gate.touch()
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert waiting is not None
    stdout, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stderr
    with contextlib.closing(sqlite3.connect(database)) as connection:
        (first_finished,) = connection.execute(
            "select finished from runs where id != ?", (json.loads(stdout)["id"],)
        ).fetchone()
    assert json.loads(stdout)["started"] >= first_finished


def test_a_killed_controllers_run_shows_as_interrupted_at_once(
    lab: Lab, maint_bin: Path, run_maint: Any, tmp_path: Path
) -> None:
    database = tmp_path / "maint.db"
    env = {"MAINT_DB": f"sqlite:///{database}"}
    gate = tmp_path / "gate"
    process = start_maint(maint_bin, "run", gated_playbook(tmp_path, gate), "-i", lab.inventory, "-l", "lab1",
                          cwd=tmp_path, env=env)  # fmt: skip
    try:
        wait_until(lambda: gate_reached(database), 30, "the run's first step")
        listed = json.loads(run_maint("runs", "list", "--format", "json", env=env).stdout)
        assert [run["status"] for run in listed] == ["running"]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        gate.touch()
    run_id = listed[0]["id"]
    # No other run in between: every reader shows the run as interrupted.
    listed = json.loads(run_maint("runs", "list", "--format", "json", env=env).stdout)
    assert [(run["id"], run["status"], run["exit_code"]) for run in listed] == [(run_id, "interrupted", 130)]
    shown = run_maint("runs", "show", run_id, "--format", "json", env=env)
    assert (json.loads(shown.stdout)["status"], json.loads(shown.stdout)["exit_code"]) == ("interrupted", 130)
    assert "interrupted" in run_maint("runs", "show", run_id, env=env).stdout
    assert "interrupted" in run_maint("runs", "list", env=env).stdout
    report = run_maint("report", run_id, "--format", "json", env=env)
    assert json.loads(report.stdout)["status"] == "interrupted", report.stdout
    by_status = run_maint("runs", "list", "--status", "interrupted", "--format", "json", env=env)
    assert [run["id"] for run in json.loads(by_status.stdout)] == [run_id]
    running = run_maint("runs", "list", "--status", "running", "--format", "json", env=env)
    assert json.loads(running.stdout) == []
