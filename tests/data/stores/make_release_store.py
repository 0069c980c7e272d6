"""Make ``release-0.1.0.db``: a store written by maint 0.1.0 (no alembic_version table), for the
upgrade tests in tests/integration/test_store_migrations.py.

Run it with the code of that release (commit 164805c), not with the current tree::

    mkdir /tmp/maint-0.1.0 && git archive 164805c | tar -x -C /tmp/maint-0.1.0
    PYTHONPATH=/tmp/maint-0.1.0 python tests/data/stores/make_release_store.py tests/data/stores

It records real runs on the controller itself (ansible_connection=local, no sshd): failures that open
and resolve a ticket, every kind of skipped step (a false condition, check mode, an abort, a window
that closes, an interrupted run that is then resumed), and an Ansible playbook (an ok task, a skipped
task, a task name used twice, a host no play ran on). Every run is sealed with the key in
``ledger_ed25519`` (its public half is in ``allowed_signers``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INVENTORY = """[web]
h1
h2
[db]
h3
[all:vars]
ansible_connection=local
ansible_python_interpreter={python}
"""

HEALTH = """name: health
steps:
  - id: uptime
    type: command
    command: echo up
  - id: etc-present
    type: command
    command: test "{{ inventory_hostname }}" != "{{ broken | default('none') }}"
  - id: never
    type: command
    command: "false"
    when: false
  - id: cleanup
    type: log.cleanup
    path: /nonexistent-maint-test
"""

SERIAL = """name: serial
serial: 1
max_fail_percentage: 0
steps:
  - id: first-fails
    type: command
    command: test "{{ inventory_hostname }}" != h1
"""

NAPS = """name: naps
steps:
  - id: nap1
    type: command
    command: sleep 1
  - id: nap2
    type: command
    command: sleep 1
  - id: nap3
    type: command
    command: sleep 1
  - id: nap4
    type: command
    command: sleep 1
"""

SLOW = """name: slow
steps:
  - id: quick
    type: command
    command: echo quick
  - id: long
    type: command
    command: "test -e {{ marker }} || sleep 30"
  - id: after
    type: command
    command: echo after
"""

CONFIGURE = """name: configure
steps:
  - id: site
    type: ansible
    playbook: site.yml
"""

SITE = """- hosts: h1
  gather_facts: false
  tasks:
    - name: say hello
      ansible.builtin.debug:
        msg: hello
    - name: never on this host
      ansible.builtin.command: /bin/false
      when: false
    - name: say hello
      ansible.builtin.debug:
        msg: again
"""

CONFIG = """tickets:
  enabled: true
audit:
  signing_key: ledger_ed25519
windows:
  nightly:
    cron: "0 2 * * 6"
    duration: 2h
    grace: 1s
"""


def maint(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``maint ARGS`` in the project as a real subprocess (no CI variables: a person at a shell)."""
    environment = {name: value for name, value in os.environ.items() if name not in ("CI", "GITHUB_ACTIONS")}
    return subprocess.run([sys.executable, "-m", "maint", *args], cwd=project, env=environment, text=True,
                          capture_output=True, timeout=300, check=False)  # fmt: skip


def interrupted_run(project: Path) -> str:
    """Start ``slow``, stop it with SIGINT while ``long`` sleeps; returns the run's id."""
    store = project / ".maint" / "maint.db"
    environment = {name: value for name, value in os.environ.items() if name not in ("CI", "GITHUB_ACTIONS")}
    process = subprocess.Popen(
        [sys.executable, "-m", "maint", "run", "slow.yml", "-i", "hosts.ini", "-l", "h1",
         "-e", f"marker={project / 'resumed'}", "--reason", "interrupted on purpose"],
        cwd=project, env=environment, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        with sqlite3.connect(store) as connection:
            done = connection.execute("SELECT count(*) FROM results r JOIN runs ON runs.id = r.run_id "
                                      "WHERE runs.playbooks LIKE '%slow%'").fetchone()[0]  # fmt: skip
        if done:
            break
    time.sleep(1.0)  # long is sleeping now
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    with sqlite3.connect(store) as connection:
        return str(connection.execute("SELECT id FROM runs ORDER BY started DESC LIMIT 1").fetchone()[0])


def window_run(project: Path) -> None:
    """``naps`` in the nightly window that closes two and a half seconds after the run starts."""
    import maint.run as engine

    os.chdir(project)  # the store, the inventory and maint.yml are found as from ``maint run`` there
    saturday_close = dt.datetime(2026, 11, 28, 4, 0, tzinfo=dt.UTC)
    began = time.monotonic()
    start = saturday_close - dt.timedelta(seconds=2.5)
    document = engine.run(
        engine.RunRequest(playbooks=["naps.yml"], inventory=["hosts.ini"], limit="h1,h2", project_dir=project,
                          window="nightly", reason="window closes mid-run", argv=["maint", "run", "naps.yml"]),
        clock=lambda: start + dt.timedelta(seconds=time.monotonic() - began),
    )  # fmt: skip
    assert any(result["summary"].startswith("window 'nightly' closed at") for result in document.results)


def main(destination: Path) -> None:
    project = Path(tempfile.mkdtemp(prefix="maint-release-store-"))
    try:
        (project / "maint.yml").write_text(CONFIG, encoding="utf-8")
        (project / "hosts.ini").write_text(INVENTORY.format(python=sys.executable), encoding="utf-8")
        for name, text in (("health.yml", HEALTH), ("serial.yml", SERIAL), ("naps.yml", NAPS), ("slow.yml", SLOW),
                           ("configure.yml", CONFIGURE), ("site.yml", SITE)):  # fmt: skip
            (project / name).write_text(text, encoding="utf-8")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "maint-ledger", "-f",
                        str(project / "ledger_ed25519")], check=True)  # fmt: skip
        runs = [
            ("run", "health.yml", "-i", "hosts.ini", "-e", "broken=h2", "--reason", "h2 fails"),
            ("run", "health.yml", "-i", "hosts.ini", "-C", "--reason", "check mode"),
            ("run", "health.yml", "-i", "hosts.ini", "--reason", "h2 passes again"),
            ("run", "serial.yml", "-i", "hosts.ini", "--reason", "aborted after the first batch"),
            ("run", "configure.yml", "-i", "hosts.ini", "--reason", "an Ansible playbook"),
        ]
        for args in runs:
            done = maint(project, *args)
            assert done.returncode in (0, 4, 6), (args, done.returncode, done.stderr)
        window_run(project)
        run_id = interrupted_run(project)
        (project / "resumed").touch()
        resumed = maint(project, "resume", run_id, "--reason", "resumed")
        assert resumed.returncode == 0, resumed.stderr
        verified = maint(project, "audit", "verify")
        assert verified.returncode == 0, verified.stdout
        destination.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(project / ".maint" / "maint.db") as source, \
                sqlite3.connect(destination / "release-0.1.0.db") as copy:  # fmt: skip
            source.backup(copy)
        copy = sqlite3.connect(destination / "release-0.1.0.db")
        copy.execute("PRAGMA journal_mode=WAL")  # as maint leaves a store; closing it removes the -wal file
        copy.close()
        public = (project / "ledger_ed25519.pub").read_text(encoding="utf-8")
        (destination / "allowed_signers").write_text(f"maint@release {public}", encoding="utf-8")
    finally:
        shutil.rmtree(project)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
