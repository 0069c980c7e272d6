"""backup.restic, backup.borg and backup.run over real SSH on the lab, with real restic and borg.

Every lab host has a restic repository with a recent snapshot (maint.labfaults.backups); the faults
stale-backup and corrupt-backup replace it with an old one or damage its packs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.testing import broken

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed"),
]


def db_env(tmp_path: Path) -> dict[str, str]:
    return {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}


def password(lab: Lab) -> str:
    return (lab.directory / "backup-password").read_text().rstrip("\n")


def run_json(maint_cli: Any, tmp_path: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    done = maint_cli("run", *args, "--format", "json", env={**db_env(tmp_path), **(env or {})}, timeout=120)
    assert done.returncode in (0, 4), done.stderr
    return done, json.loads(done.stdout)


def by_host(document: dict[str, Any], step: str = "restic-backup") -> dict[str, dict[str, Any]]:
    return {result["host"]: result for result in document["results"] if result["step"] == step}


def assert_secret_kept(lab: Lab, tmp_path: Path, *runs: subprocess.CompletedProcess[str]) -> None:
    secret = password(lab)
    for done in runs:
        assert secret not in done.stdout + done.stderr
    assert secret.encode() not in (tmp_path / "maint.db").read_bytes()


def test_lab_password_file_is_private_and_hosts_have_vars(lab: Lab) -> None:
    assert (lab.directory / "backup-password").stat().st_mode & 0o777 == 0o600
    inventory = lab.inventory.read_text()
    host = lab.host("lab1")
    assert f"restic_repository={host.state_dir}/backup/restic" in inventory
    assert f"backup_password_file={lab.directory}/backup-password" in inventory
    assert f"backup_paths={host.state_dir}/backup/data" in inventory


def test_healthy_lab_backups_verify_ok(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    done, document = run_json(maint_cli, tmp_path, "backup-verify", "-i", lab.inventory)
    results = by_host(document)
    assert len(results) == len(lab.hosts)
    for host, result in results.items():
        assert result["status"] == "ok", (host, result["summary"])
        assert "1 snapshot, latest " in result["summary"]
        assert "check ok; restore of /data/README ok (1 file, 40 B, verified)" in result["summary"]
        assert result["metrics"]["check_ok"] == 1 and result["metrics"]["restore_ok"] == 1
        assert result["metrics"]["snapshot_age_seconds"] < 2 * 3600
    assert done.returncode == 0
    assert_secret_kept(lab, tmp_path, done)


def test_stale_and_corrupt_backups_fail(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    with broken(lab, "lab2", "stale-backup"), broken(lab, "lab3", "corrupt-backup"):
        done, document = run_json(maint_cli, tmp_path, "backup-verify", "-i", lab.inventory, "-l", "lab1:lab2:lab3")
    assert done.returncode == 4
    results = by_host(document)
    assert results["lab1"]["status"] == "ok"
    stale = results["lab2"]
    assert stale["status"] == "failed"
    assert stale["summary"].startswith("1 snapshot, latest ") and "d ago (max 26h); check ok" in stale["summary"]
    assert stale["metrics"]["snapshot_age_seconds"] > 5 * 365 * 86400
    corrupt = results["lab3"]
    assert corrupt["status"] == "failed"
    assert "check failed: error for tree " in corrupt["summary"]
    assert "ciphertext verification failed" in corrupt["summary"]
    assert corrupt["metrics"]["check_ok"] == 0
    assert_secret_kept(lab, tmp_path, done)
    # Fixed: the fresh repository is back.
    _, again = run_json(maint_cli, tmp_path, "backup-verify", "-i", lab.inventory, "-l", "lab2:lab3")
    assert {result["status"] for result in again["results"]} == {"ok"}


def test_backup_run_makes_a_stale_repository_fresh(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    book = tmp_path / "take.yml"
    book.write_text(
        "steps:\n"
        "  - id: take-backup\n"
        "    type: backup.run\n"
        '    repository: "{{ restic_repository }}"\n'
        '    password: "file:{{ backup_password_file }}"\n'
        '    paths: "{{ backup_paths }}"\n'
        "    tags: [maint-test, nightly]\n"
    )
    host = lab.host("lab4")
    sample = f"backup_restore_test={host.state_dir}/backup/data/README"
    with broken(lab, "lab4", "stale-backup"):
        before, document = run_json(maint_cli, tmp_path, "backup-verify", "-i", lab.inventory, "-l", "lab4")
        assert by_host(document)["lab4"]["status"] == "failed"
        taken, document = run_json(maint_cli, tmp_path, book, "-i", lab.inventory, "-l", "lab4")
        assert taken.returncode == 0, taken.stdout
        result = by_host(document, "take-backup")["lab4"]
        assert result["status"] == "ok"
        assert result["summary"].startswith("snapshot ")
        assert f"of {host.state_dir}/backup/data: 3 files, 90 B processed" in result["summary"]
        assert result["metrics"]["files"] == 3 and result["metrics"]["bytes_added"] > 0
        after, document = run_json(
            maint_cli, tmp_path, "backup-verify", "-i", lab.inventory, "-l", "lab4", "-e", sample
        )
        fresh = by_host(document)["lab4"]
        assert fresh["status"] == "ok", fresh["summary"]
        assert fresh["summary"].startswith("2 snapshots, latest ")
        assert fresh["metrics"]["snapshot_age_seconds"] < 120
        assert fresh["metrics"]["restore_ok"] == 1
    assert_secret_kept(lab, tmp_path, before, taken, after)


def test_wrong_password_is_an_error_and_stays_masked(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    book = tmp_path / "wrong.yml"
    book.write_text(
        "steps:\n"
        "  - id: restic-backup\n"
        "    type: backup.restic\n"
        '    repository: "{{ restic_repository }}"\n'
        "    password: env:MAINT_TEST_BACKUP_PASSWORD\n"
        "    max_age: 26h\n"
    )
    wrong = "not-the-Password-42"
    done, document = run_json(
        maint_cli, tmp_path, book, "-i", lab.inventory, "-l", "lab5", env={"MAINT_TEST_BACKUP_PASSWORD": wrong}
    )
    result = by_host(document)["lab5"]
    assert result["status"] == "error"
    assert result["summary"] == (
        f"restic: wrong password for {lab.host('lab5').state_dir}/backup/restic (from env:MAINT_TEST_BACKUP_PASSWORD)"
    )
    assert wrong not in done.stdout + done.stderr
    assert wrong.encode() not in (tmp_path / "maint.db").read_bytes()


@pytest.mark.skipif(shutil.which("borg") is None, reason="borg is not installed")
def test_borg_backup_run_then_check_with_restore(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    repository = tmp_path / "borg-repo"
    environment = {
        **os.environ,
        "BORG_PASSPHRASE": password(lab),
        "BORG_BASE_DIR": str(tmp_path / "borg-base"),
    }
    subprocess.run(["borg", "init", "-e", "repokey", str(repository)], env=environment, check=True, capture_output=True)
    book = tmp_path / "borg.yml"
    book.write_text(
        "steps:\n"
        "  - id: take-backup\n"
        "    type: backup.run\n"
        "    tool: borg\n"
        f"    repository: {repository}\n"
        '    password: "file:{{ backup_password_file }}"\n'
        '    paths: "{{ backup_paths }}"\n'
        "  - id: borg-backup\n"
        "    type: backup.borg\n"
        f"    repository: {repository}\n"
        '    password: "file:{{ backup_password_file }}"\n'
        "    max_age: 1h\n"
        '    restore_test: "{{ backup_paths }}/reports"\n'
    )
    done, document = run_json(maint_cli, tmp_path, book, "-i", lab.inventory, "-l", "lab6")
    taken = by_host(document, "take-backup")["lab6"]
    assert taken["status"] == "ok", taken["summary"]
    assert taken["summary"].startswith("archive ") and "3 files" in taken["summary"]
    checked = by_host(document, "borg-backup")["lab6"]
    assert checked["status"] == "ok", checked["summary"]
    assert checked["summary"].startswith("1 archive, latest ")
    assert "check ok; restore of " in checked["summary"] and "(2 files, 50 B, verified)" in checked["summary"]
    assert done.returncode == 0
    assert_secret_kept(lab, tmp_path, done)


def test_the_lab_repositories_key_is_cheap_and_restic_reads_it(lab: Lab) -> None:
    # Every restic call of every backup check derives the key: the lab's throwaway key costs a millisecond.
    host = lab.hosts[0]
    repository = host.state_dir / "backup" / "restic"
    (key_file,) = (repository / "keys").iterdir()
    key = json.loads(key_file.read_text())
    assert (key["kdf"], key["N"], key["r"], key["p"]) == ("scrypt", 1024, 8, 1)
    done = subprocess.run(
        ["restic", "--no-cache", "-r", str(repository), "--password-file", str(lab.directory / "backup-password"),
         "snapshots", "--json"], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) >= 1
    wrong = subprocess.run(["restic", "--no-cache", "-r", str(repository), "snapshots"], input="not-it\n",
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert wrong.returncode != 0 and "wrong password" in wrong.stderr
