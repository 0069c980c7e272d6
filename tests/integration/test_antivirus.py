"""``av.clamav`` over real SSH on the lab: real clamscan, the lab's own tiny signature database.

The lab's healthy state (maint.labfaults.antivirus) gives every host ``STATE_DIR/av/scan`` with clean
files and the lab one ``clamav-db`` holding an EICAR hash signature; the ``virus`` fault plants the
EICAR test file. No system signature database is ever loaded, so each scan takes milliseconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.labfaults.antivirus import database_dir, scan_dir
from maint.testing import broken

pytestmark = pytest.mark.lab


def db_env(tmp_path: Path) -> dict[str, str]:
    return {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}


def results(done: Any) -> dict[tuple[str, str], dict[str, Any]]:
    document = json.loads(done.stdout)
    return {(result["host"], result["step"]): result for result in document["results"]}


def test_lab_has_the_healthy_antivirus_state(lab: Lab) -> None:
    assert sorted(path.name for path in database_dir(lab).iterdir()) == ["lab.hsb"]
    for host in lab.hosts:
        assert sorted(path.name for path in scan_dir(host).iterdir()) == ["notes.txt", "report.csv"]
    inventory = lab.inventory.read_text()
    assert f"av_scan_paths={scan_dir(lab.host('lab1'))} clamav_database={database_dir(lab)}" in inventory


def test_virus_scan_clean_host_ok_infected_host_failed(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    with broken(lab, "lab2", "virus") as host:
        planted = scan_dir(host) / "eicar.com"
        assert planted.is_file()
        done = maint_cli(
            "run", "virus-scan", "-i", lab.inventory, "-l", "lab1,lab2", "--format", "json", env=db_env(tmp_path)
        )
    assert not planted.exists()  # fixed on exit
    assert done.returncode == 4, done.stderr
    pairs = results(done)
    clean = pairs[("lab1", "virus-scan")]
    assert clean["status"] == "ok"
    assert clean["summary"].startswith(f"no infected files in {scan_dir(lab.host('lab1'))} (2 files scanned,")
    assert clean["metrics"]["infected_files"] == 0
    assert clean["metrics"]["scanned_files"] == 2
    assert 0 <= clean["metrics"]["db_age_seconds"] < 3600
    infected = pairs[("lab2", "virus-scan")]
    assert infected["status"] == "failed"
    assert infected["summary"] == (f"1 infected file in {scan_dir(host)}: {planted} (Eicar-Test-Signature.UNOFFICIAL)")
    assert infected["metrics"]["infected_files"] == 1
    assert infected["tier"] == "L2"
    assert infected["severity"] == "critical"


def test_virus_scan_text_output_names_the_file(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    with broken(lab, "lab3", "virus"):
        done = maint_cli("run", "virus-scan", "-i", lab.inventory, env=db_env(tmp_path))
    assert done.returncode == 4, done.stderr
    table = [line.split() for line in done.stdout.splitlines()]
    assert ["STEP", "OK", "FAILED"] in table
    assert ["virus-scan", "5", "1"] in table
    assert "lab3  virus-scan  failed  1 infected file in" in done.stdout
    assert "eicar.com (Eicar-Test-Signature.UNOFFICIAL)" in done.stdout


def test_wrong_database_is_an_error(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-db"
    done = maint_cli(
        "run", "virus-scan", "-i", lab.inventory, "-l", "lab1", "-e", f"clamav_database={missing}",
        "--format", "json", env=db_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    outcome = results(done)[("lab1", "virus-scan")]
    assert outcome["status"] == "error"
    assert outcome["summary"].startswith(f"clamscan cannot load the signature database {missing}: LibClamAV Error")


def test_empty_database_dir_is_an_error(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty-db"
    empty.mkdir()
    done = maint_cli(
        "run", "virus-scan", "-i", lab.inventory, "-l", "lab1", "-e", f"clamav_database={empty}",
        "--format", "json", env=db_env(tmp_path),
    )  # fmt: skip
    outcome = results(done)[("lab1", "virus-scan")]
    assert outcome["status"] == "error"
    assert "No supported database files found" in outcome["summary"]


def test_old_database_is_a_warning(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    old = tmp_path / "old-db"
    shutil.copytree(database_dir(lab), old)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old / "lab.hsb", (ten_days_ago, ten_days_ago))
    done = maint_cli(
        "run", "virus-scan", "-i", lab.inventory, "-l", "lab1", "-e", f"clamav_database={old}",
        "--format", "json", env=db_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = results(done)[("lab1", "virus-scan")]
    assert outcome["status"] == "warning"
    assert outcome["summary"].endswith("; signature database 10d old (max 7d)")
    assert 10 * 86400 - 60 < outcome["metrics"]["db_age_seconds"] < 10 * 86400 + 60


def test_custom_playbook_lists_excludes_and_thresholds(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    # Templates render as text (a comma-separated path list); a literal YAML list is static.
    book = tmp_path / "av.yml"
    book.write_text(
        "steps:\n"
        "  - id: excluded\n    type: av.clamav\n"
        "    paths: '{{ maint_state_dir }}/av/scan, {{ maint_state_dir }}/av'\n"
        "    database: '{{ clamav_database }}'\n    exclude: 'eicar\\.com$'\n"
        "  - id: tolerated\n    type: av.clamav\n"
        "    paths: '{{ av_scan_paths }}'\n    database: '{{ clamav_database }}'\n    max_infected: 1\n"
        "  - id: strict\n    type: av.clamav\n"
        f"    paths: ['{scan_dir(lab.host('lab4'))}', /nonexistent-path]\n"
        f"    database: {database_dir(lab)}\n"
        "  - id: through-clamd\n    type: av.clamav\n"
        "    paths: '{{ av_scan_paths }}'\n    clamd_socket: '{{ maint_state_dir }}/no-clamd.sock'\n",
        encoding="utf-8",
    )
    with broken(lab, "lab4", "virus"):
        done = maint_cli("run", book, "-i", lab.inventory, "-l", "lab4", "--format", "json", env=db_env(tmp_path))
    assert done.returncode == 4, done.stderr
    pairs = results(done)
    assert pairs[("lab4", "excluded")]["status"] == "ok", pairs[("lab4", "excluded")]["summary"]
    assert pairs[("lab4", "tolerated")]["status"] == "warning"
    strict = pairs[("lab4", "strict")]
    assert strict["status"] == "failed"
    assert strict["summary"].startswith("1 infected file in ")
    assert strict["summary"].endswith("; also /nonexistent-path: No such file or directory")
    clamd = pairs[("lab4", "through-clamd")]
    assert clamd["status"] == "error"
    if shutil.which("clamdscan") is None:
        assert clamd["summary"].startswith("clamdscan not found on the host: ")
    else:
        assert clamd["summary"].startswith("clamdscan cannot reach clamd at ")


def test_missing_scan_path_is_an_error(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    done = maint_cli(
        "run", "virus-scan", "-i", lab.inventory, "-l", "lab5", "-e", "av_scan_paths=/nonexistent/maint-av",
        "--format", "json", env=db_env(tmp_path),
    )  # fmt: skip
    outcome = results(done)[("lab5", "virus-scan")]
    assert outcome["status"] == "error"
    assert (
        outcome["summary"]
        == "clamscan could not scan everything (exit 2): /nonexistent/maint-av: No such file or directory"
    )


def test_virus_fault_is_listed_and_survives_a_restart() -> None:
    from maint.lab import faults

    fault = faults()["virus"]
    assert fault.survives_restart
    assert "EICAR" in fault.description


@pytest.fixture
def clamd_socket(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    """A real clamd on a unix socket, with the lab's signature database."""
    socket_path = tmp_path / "clamd.sock"
    config = tmp_path / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket_path}\nDatabaseDirectory {lab.directory / 'clamav-db'}\nForeground yes\n"
        f"LogFile {tmp_path / 'clamd.log'}\nTemporaryDirectory {tmp_path}\n"
    )
    daemon = subprocess.Popen(["clamd", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not socket_path.exists() and time.monotonic() < deadline and daemon.poll() is None:
        time.sleep(0.1)
    assert socket_path.exists(), (tmp_path / "clamd.log").read_text() if (tmp_path / "clamd.log").exists() else ""
    try:
        yield socket_path
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_clamdscan_through_a_real_clamd(lab: Lab, maint_cli: Any, tmp_path: Path, clamd_socket: Path) -> None:
    book = tmp_path / "clamd.yml"
    book.write_text(
        "steps:\n  - id: clamd-scan\n    type: av.clamav\n    paths: '{{ av_scan_paths }}'\n"
        f"    clamd_socket: {clamd_socket}\n    database: '{{{{ clamav_database }}}}'\n"
    )
    with broken(lab, "lab2", "virus"):
        done = maint_cli("run", book, "-i", lab.inventory, "-l", "lab1,lab2", "--format", "json",
                         env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    results = {r["host"]: r for r in json.loads(done.stdout)["results"]}
    assert results["lab1"]["status"] == "ok", results["lab1"]
    assert results["lab2"]["status"] == "failed"
    assert "Eicar-Test-Signature" in results["lab2"]["summary"]
    assert done.returncode == 4
