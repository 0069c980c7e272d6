"""``maint run`` end to end over real SSH against the lab fleet (sshd on loopback).

Every test runs maint as a subprocess, the way a sysadmin or a CI job does, and checks both what it
printed and what it recorded in the store.
"""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from maint import playbooks
from maint.lab import Lab
from maint.testing import broken

pytestmark = pytest.mark.lab


# The lab hosts share this machine, whose load the test suite itself drives up: the health
# playbook's load thresholds are host vars, raised here so that load cannot fail these tests.
CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")
HEALTH_STEPS = len(playbooks.load("health").steps)


def db_env(tmp_path: Path) -> dict[str, str]:
    return {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}


def write_playbook(tmp_path: Path, text: str, name: str = "book.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def by_pair(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(result["host"], result["step"]): result for result in document["results"]}


def test_health_on_the_whole_lab_passes_and_is_recorded(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    done = run_maint(
        "run", "health", "-i", lab.inventory, *CALM, "--reason", "weekly window", "--format", "json",
        env=db_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "ok"
    assert document["exit_code"] == 0
    assert document["reason"] == "weekly window"
    assert document["operator"]
    assert document["argv"][:3] == ["maint", "run", "health"]
    assert len(document["playbooks"][0]["digest"]) == 64
    assert len(document["inventory"]["digest"]) == 64
    results = document["results"]
    assert len(results) == 6 * HEALTH_STEPS
    # The lab's hosts share this machine's clock and declare it: the clock check is skipped, saying why.
    assert {result["status"] for result in results} == {"ok", "skipped"}
    assert {result["step"] for result in results if result["status"] == "skipped"} == {"clock"}
    assert {result["host"] for result in results} == {f"lab{i}" for i in range(1, 7)}
    disk = by_pair(document)[("lab1", "root-disk")]
    assert 0 < disk["metrics"]["used_percent"] < 100
    assert disk["exit_code"] == 0
    assert "used" in disk["summary"]
    assert all(result["duration"] >= 0 for result in results)

    # `runs show --format json` prints the same document `run --format json` printed, which adds
    # what the run did to tickets (`tickets`).
    shown = run_maint("runs", "show", document["id"], "--format", "json", env=db_env(tmp_path))
    assert shown.returncode == 0
    assert document.pop("tickets")["actions"] == {}
    assert json.loads(shown.stdout) == document
    listed = json.loads(run_maint("runs", "list", "--format", "json", env=db_env(tmp_path)).stdout)
    assert [run["id"] for run in listed] == [document["id"]]
    assert "results" not in listed[0]

    # The rows themselves, as an auditor's own tools would read them.
    with sqlite3.connect(tmp_path / "maint.db") as connection:
        row = connection.execute(
            "select status, exit_code, operator, controller, reason, finished from runs where id = ?",
            (document["id"],),
        ).fetchone()
        count = connection.execute("select count(*) from results where run_id = ?", (document["id"],)).fetchone()
    assert row[0:2] == ("ok", 0)
    assert row[4] == "weekly window"
    assert row[5] is not None
    assert count == (6 * HEALTH_STEPS,)


def test_down_host_is_unreachable_and_others_finish(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    with broken(lab, "lab3", "down"):
        done = run_maint("run", "health", "-i", lab.inventory, *CALM, "--format", "json", env=db_env(tmp_path))
    assert done.returncode == 5, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "unreachable"
    for result in document["results"]:
        if result["host"] == "lab3":
            assert result["status"] == "unreachable"
            assert "refused" in result["summary"]
        else:
            assert result["status"] in ("ok", "skipped"), result
    assert len(document["results"]) == 6 * HEALTH_STEPS


def test_hung_host_times_out_while_the_rest_finish(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    with broken(lab, "lab2", "hang"):
        done = run_maint(
            "run", "health", "-i", lab.inventory, *CALM, "--connect-timeout", "2", "--format", "json",
            env=db_env(tmp_path),
        )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 5, done.stderr
    document = json.loads(done.stdout)
    hung = [result for result in document["results"] if result["host"] == "lab2"]
    assert {result["status"] for result in hung} == {"unreachable"}
    assert "no SSH banner" in hung[0]["summary"]
    assert all(result["status"] in ("ok", "skipped") for result in document["results"] if result["host"] != "lab2")
    assert elapsed < 20, f"a hung host must not hold the run: {elapsed:.1f}s"
    assert "Traceback" not in done.stderr


def test_file_age_on_each_hosts_state_dir(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    fresh = Path(lab.host("lab1").state_dir) / "backup.stamp"
    stale = Path(lab.host("lab2").state_dir) / "backup.stamp"
    fresh.write_text("ok")
    stale.write_text("ok")
    old = time.time() - 3 * 86400
    os.utime(stale, (old, old))
    (Path(lab.host("lab3").state_dir) / "backup.stamp").unlink(missing_ok=True)
    book = write_playbook(
        tmp_path,
        "steps:\n  - id: backup-stamp\n    type: file.age\n"
        "    path: '{{ maint_state_dir }}/backup.stamp'\n    max_age: 2d\n    warn_age: 1d\n",
    )
    try:
        done = run_maint("run", book, "-i", lab.inventory, "-l", "lab[0:2]", "--format", "json", env=db_env(tmp_path))
    finally:
        fresh.unlink()
        stale.unlink()
    assert done.returncode == 4, done.stderr
    pairs = by_pair(json.loads(done.stdout))
    assert pairs[("lab1", "backup-stamp")]["status"] == "ok"
    assert pairs[("lab1", "backup-stamp")]["metrics"]["age_seconds"] < 60
    assert pairs[("lab2", "backup-stamp")]["status"] == "failed"
    assert pairs[("lab2", "backup-stamp")]["metrics"]["age_seconds"] >= 3 * 86400 - 60
    assert pairs[("lab3", "backup-stamp")]["status"] == "failed"
    assert "does not exist" in pairs[("lab3", "backup-stamp")]["summary"]


def test_changed_host_key_is_refused(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    # known_hosts that holds another key for lab1's address: maint must refuse to log in.
    entries = Path(lab.known_hosts).read_text().splitlines()
    lab1 = lab.host("lab1")
    lab2 = lab.host("lab2")
    lab2_key = next(line for line in entries if line.startswith(f"[{lab2.address}]:"))
    forged = tmp_path / "known_hosts"
    forged.write_text(lab2_key.replace(f"[{lab2.address}]", f"[{lab1.address}]", 1) + "\n")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        lab.inventory.read_text().replace(str(lab.known_hosts), str(forged))
    )
    done = run_maint(
        "run", "health", "-i", inventory, "-l", "lab1,lab4", *CALM, "--format", "json", env=db_env(tmp_path)
    )
    assert done.returncode == 5, done.stderr
    pairs = by_pair(json.loads(done.stdout))
    assert pairs[("lab1", "root-disk")]["status"] == "unreachable"
    assert "does not match" in pairs[("lab1", "root-disk")]["summary"]
    # lab4 has no entry at all in the forged file: unknown keys are refused by default too.
    assert pairs[("lab4", "root-disk")]["status"] == "unreachable"
    assert "is not in" in pairs[("lab4", "root-disk")]["summary"]


def test_live_progress_on_a_terminal_and_none_in_ci(lab: Lab, maint_bin: Path, tmp_path: Path) -> None:
    book = write_playbook(tmp_path, "steps:\n  - id: wait\n    type: command\n    command: sleep 1\n")
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(db_env(tmp_path))
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [str(maint_bin), "run", str(book), "-i", str(lab.inventory), "-f", "2"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60, check=False,
        )  # fmt: skip
        os.close(slave)
        terminal = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(master)
    assert done.returncode == 0
    shown = terminal.decode()
    assert "[0/6 hosts]" in shown or "[2/6 hosts]" in shown
    assert "hosts]" in shown and "results" in shown
    assert "run " in done.stdout and "exit 0: every step ok" in done.stdout
    # Not a terminal (or CI set): no progress line at all.
    quiet = subprocess.run(
        [str(maint_bin), "run", str(book), "-i", str(lab.inventory), "-l", "lab1"],
        cwd=tmp_path, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "hosts]" not in quiet.stderr
    assert quiet.stderr.count("\n") == 1


def test_secrets_reach_the_host_on_stdin_and_are_masked_everywhere(
    lab: Lab, run_maint: Any, tmp_path: Path
) -> None:
    secret_value = "s3cr3t-Value-91"
    book = write_playbook(
        tmp_path,
        "steps:\n  - id: token\n    type: command\n    stdin_secret: env:MAINT_TEST_TOKEN\n"
        "    command: read -r t; echo \"token is $t\"; echo \"again $t\" >&2; test \"$t\" = " + secret_value + "\n",
    )
    env = {**db_env(tmp_path), "MAINT_TEST_TOKEN": secret_value}
    done = run_maint("run", book, "-i", lab.inventory, "-l", "lab1", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["results"][0]
    assert result["summary"] == "token is ***"
    assert "again ***" in result["output"]
    assert secret_value not in done.stdout + done.stderr
    assert secret_value.encode() not in (tmp_path / "maint.db").read_bytes()
    # A reference to a variable that is not set is bad input, found before any host is touched.
    missing = run_maint("run", book, "-i", lab.inventory, "-l", "lab1", env=db_env(tmp_path))
    assert missing.returncode == 3
    assert "MAINT_TEST_TOKEN" in missing.stderr and "is not set" in missing.stderr


def test_values_in_quoted_templates_never_run_on_the_host(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    """The quoting habits of playbook authors ("{{ p }}", '{{ q }}', here-documents) with values from -e
    (JSON) and from host_vars that try to run a command on the host: each arrives as text, none runs."""
    marker = tmp_path / "pwned"
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text(lab.inventory.read_text())
    (inventory / "host_vars" / "lab1.yml").write_text(json.dumps({"hv": f"x'; touch {marker}; echo '"}))
    book = write_playbook(
        tmp_path,
        "steps:\n"
        "  - id: double\n    type: command\n    command: printf '%s' \"{{ p }}\"\n"
        "  - id: single\n    type: command\n    command: printf '%s' '{{ q }}'\n"
        "  - id: nested\n    type: command\n    command: printf '%s' \"$(printf '%s' '{{ p }}')\"\n"
        "  - id: heredoc\n    type: command\n    command: |\n      cat <<EOF\n      {{ p }}\n      EOF\n"
        "  - id: host-var\n    type: command\n    command: printf '%s' '{{ hv }}'\n",
    )
    payloads = {"p": f"$(touch {marker})`touch {marker}`", "q": f"a';touch {marker};'"}
    done = run_maint(
        "run", book, "-i", inventory / "hosts.ini", "-l", "lab1", "-e", json.dumps(payloads), "--format", "json",
        env=db_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    # The outputs (a summary is cut short when long, as this test's temporary paths can be).
    outputs = {step: result["output"] for (_, step), result in by_pair(json.loads(done.stdout)).items()}
    assert outputs == {
        "double": payloads["p"], "single": payloads["q"], "nested": payloads["p"], "heredoc": payloads["p"],
        "host-var": f"x'; touch {marker}; echo '",
    }  # fmt: skip

    # A value handed to another shell is refused before any host is touched, naming file and line.
    refused = write_playbook(tmp_path, "steps:\n  - id: a\n    type: command\n    command: sh -c \"echo {{ p }}\"\n",
                             name="refused.yml")  # fmt: skip
    done = run_maint("run", refused, "-i", lab.inventory, "-l", "lab1", env=db_env(tmp_path))
    assert done.returncode == 3
    assert done.stderr.startswith(f"maint: error: {refused}:4: step 'a': 'command': a placeholder inside code run")
    assert "Traceback" not in done.stderr


def test_values_of_secret_looking_variables_are_masked_in_what_steps_print(
    lab: Lab, run_maint: Any, tmp_path: Path
) -> None:
    """A template may put -e db_password or a host's api_token into a command; whatever the command prints
    of them is masked before it is recorded (the host still gets the real value)."""
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text(lab.inventory.read_text())
    (inventory / "host_vars" / "lab1.yml").write_text(json.dumps({"api_token": "tok-9f8e7d6c"}))
    book = write_playbook(
        tmp_path,
        "steps:\n"
        "  - id: leak\n    type: command\n"
        "    command: echo \"db={{ db_password }} token={{ api_token }}\"; test \"{{ db_password }}\" = Sup3r-S3cret\n",
    )
    done = run_maint("run", book, "-i", inventory / "hosts.ini", "-l", "lab1", "-e", "db_password=Sup3r-S3cret",
                     "--format", "json", env=db_env(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr  # the command compared the real value
    result = json.loads(done.stdout)["results"][0]
    assert result["summary"] == "db=*** token=***"
    shown = run_maint("runs", "show", "last", env=db_env(tmp_path))
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("maint.db*") if path.is_file())
    for value in ("Sup3r-S3cret", "tok-9f8e7d6c"):
        assert value not in done.stdout + done.stderr + shown.stdout
        assert value.encode() not in stored
