"""The audit trail end to end on the lab: who and why recorded, a mandatory reason, every run's
ledger head signed by the real ssh-keygen, verified, and a tampered result named."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from store_history import signing_key

from maint.lab import Lab
from maint.testing import broken

pytestmark = pytest.mark.lab

BOOK = """name: audit-book
steps:
  - id: root-disk
    type: disk.usage
    path: /
    warn: "{{ disk_warn | default(100) }}"
    critical: "{{ disk_critical | default(100) }}"
  - id: etc-present
    type: command
    command: test -d /etc
  - id: never
    type: command
    command: "false"
    when: false
"""


def manual_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a person at a shell: no CI variables (the test suite may run in CI)."""
    from maint.provenance import ci_metadata

    job = ci_metadata(os.environ)
    environment = {name: value for name, value in os.environ.items() if name not in job}
    environment.update(extra or {})
    return environment


def test_who_why_signed_and_verified(lab: Lab, maint_bin: Path, tmp_path: Path, run_maint: Any) -> None:
    _, signers = signing_key(tmp_path, "maint@lab")  # maint.yml names the key by its relative path
    (tmp_path / "maint.yml").write_text(
        "audit:\n  require_reason: true\n  signing_key: ledger_ed25519\ntickets:\n  enabled: true\n", encoding="utf-8"
    )
    (tmp_path / "book.yml").write_text(BOOK, encoding="utf-8")

    def maint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(maint_bin), *args], cwd=tmp_path, env=manual_environment(env), text=True,
                              capture_output=True, timeout=120, check=False)  # fmt: skip

    refused = maint("run", "book.yml", "-i", str(lab.inventory), "-l", "lab1")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"maint: error: {tmp_path / 'maint.yml'}: audit.require_reason is set: a manual run needs --reason "
        "(e.g. --reason 'CHG-1234 kernel updates')"
    ]
    with broken(lab, "lab2", "disk-full"):
        done = maint("run", "book.yml", "-i", str(lab.inventory), "-l", "lab1,lab2", "--reason", "monthly window",
                     "--ref", "CHG-1234", "--ref", "INC-9", "--format", "json", env={"SUDO_USER": "alice"})  # fmt: skip
    assert done.returncode == 4, done.stderr
    document = json.loads(done.stdout)
    assert document["operator"] == "alice" and document["reason"] == "monthly window"
    assert document["options"]["refs"] == ["CHG-1234", "INC-9"]
    assert document["argv"][:3] == ["maint", "run", "book.yml"] and document["controller"]
    assert document["tickets"]["actions"].get("opened") == 1, document["tickets"]
    in_ci = maint("run", "book.yml", "-i", str(lab.inventory), "-l", "lab1", "--format", "json",
                  env={"CI": "true", "GITHUB_RUN_ID": "4711", "GITHUB_REPOSITORY": "ops/fleet"})  # fmt: skip
    assert in_ci.returncode == 0, in_ci.stderr  # a CI job records its job instead of a reason
    assert json.loads(in_ci.stdout)["ci"] == {"CI": "true", "GITHUB_RUN_ID": "4711", "GITHUB_REPOSITORY": "ops/fleet"}

    rerun = maint("rerun", document["id"], "--failed", "--reason", "retry after cleanup", "--format", "json")
    assert rerun.returncode == 0, rerun.stderr  # lab2 is fixed by now
    again = json.loads(rerun.stdout)
    assert again["reason"] == "retry after cleanup" and again["options"]["rerun_of"] == document["id"]

    verified = maint("audit", "verify", "--signers", str(signers))
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.rstrip().endswith("; 3 signatures verified")
    report = json.loads(maint("audit", "verify", "--format", "json").stdout)
    with sqlite3.connect(tmp_path / ".maint" / "maint.db") as connection:
        kinds = dict(connection.execute("SELECT kind, count(*) FROM ledger GROUP BY kind").fetchall())
        failed_id = connection.execute(
            "SELECT id FROM results WHERE run_id = ? AND status = 'failed'", (document["id"],)
        ).fetchone()[0]  # fmt: skip
        entry = connection.execute(
            "SELECT seq FROM ledger WHERE kind = 'result' AND ref = ?", (str(failed_id),)
        ).fetchone()[0]  # fmt: skip
    # 2 hosts x 3 steps, 1 x 3 in CI, 1 rerun; the skipped step's results (duration 0) verify too
    assert kinds["run"] == 6 and kinds["result"] == 10 and kinds["ticket"] >= 2  # opened, then resolved
    assert report["entries"] == sum(kinds.values())

    # Someone hides the failure in the database: verify names the entry, exit 4.
    with sqlite3.connect(tmp_path / ".maint" / "maint.db") as connection:
        connection.execute("UPDATE results SET status = 'ok' WHERE id = ?", (failed_id,))
    caught = maint("audit", "verify", "--signers", str(signers))
    assert caught.returncode == 4
    assert caught.stdout.splitlines()[0] == (
        f"ledger broken: entry {entry}: result {failed_id} (run {document['id']}, lab2 root-disk) "
        "was changed after it was recorded"
    )
