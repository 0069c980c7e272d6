"""Ansible Vault values through the CLI: a lab run whose step sees the plaintext while nothing recorded or
printed holds it, and the one-line refusals without a password or with a wrong one (exit 3)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab

ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"
PLAINTEXT = "Vaulted-motto-9fQx2"
PASSWORD = "correct horse battery"
BOOK = """name: vaulted
steps:
  - id: motto
    type: command
    command: "echo {{ site_motto }}; echo {{ site_motto }} | sha256sum"
"""


def vaulted_inventory(directory: Path) -> Path:
    """``vault.yml``: an inventory giving group ``all`` a vaulted ``site_motto`` (real ansible-vault)."""
    (directory / "pw").write_text(PASSWORD + "\n")
    encrypted = subprocess.run(
        [str(ANSIBLE_VAULT), "encrypt_string", "--vault-password-file", str(directory / "pw"), PLAINTEXT,
         "--name", "site_motto"], capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    indented = "".join(f"    {line}\n" for line in encrypted.splitlines())
    path = directory / "vault.yml"
    path.write_text(f"all:\n  vars:\n{indented}")
    (directory / "book.yml").write_text(BOOK)
    return path


@pytest.mark.lab
def test_a_step_sees_the_decrypted_value_and_no_record_holds_it(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    vault = vaulted_inventory(tmp_path)
    (tmp_path / "store").mkdir()
    db = f"sqlite:///{tmp_path / 'store' / 'maint.db'}"
    done = run_maint("run", "book.yml", "-i", lab.inventory, "-i", vault, "-l", "lab1", "--db", db,
                     "--vault-password-file", tmp_path / "pw", "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    [result] = document["results"]
    digest = hashlib.sha256(f"{PLAINTEXT}\n".encode()).hexdigest()
    assert digest in result["output"]  # the host got the plaintext
    assert "***" in result["output"]
    shown = run_maint("runs", "show", "last", "--db", db, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert "--vault-password-file" in json.loads(shown.stdout)["argv"]
    everything = done.stdout + done.stderr + shown.stdout
    assert PLAINTEXT not in everything and PASSWORD not in everything
    stored = b"".join(path.read_bytes() for path in (tmp_path / "store").glob("maint.db*") if path.is_file())
    assert PLAINTEXT.encode() not in stored and PASSWORD.encode() not in stored
    # Without a maint.yml the inventory cache is in the user's state directory, with the default store.
    state = Path(os.environ["XDG_STATE_HOME"]) / "maint"
    cached = b"".join(path.read_bytes() for path in (state / "cache").rglob("*") if path.is_file())
    assert PLAINTEXT.encode() not in cached and b"$ANSIBLE_VAULT" in cached


def test_without_a_password_the_run_stops_in_one_line(run_maint: Any, tmp_path: Path) -> None:
    vault = vaulted_inventory(tmp_path)
    (tmp_path / "hosts.ini").write_text("web1 ansible_host=127.0.0.2\n")
    db = f"sqlite:///{tmp_path / 'maint.db'}"
    done = run_maint("run", "book.yml", "-i", tmp_path / "hosts.ini", "-i", vault, "--db", db,
                     env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})  # fmt: skip
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{vault}:3:" in lines[0] and "site_motto" in lines[0] and "host web1" in lines[0]
    assert "--vault-password-file FILE" in lines[0]
    assert not (tmp_path / "maint.db").exists()  # nothing recorded


def test_a_wrong_password_stops_in_one_line(maint_cli: Any, tmp_path: Path) -> None:
    vault = vaulted_inventory(tmp_path)
    (tmp_path / "hosts.ini").write_text("web1 ansible_host=127.0.0.2\n")
    (tmp_path / "wrong").write_text("not the password\n")
    db = f"sqlite:///{tmp_path / 'maint.db'}"
    done = maint_cli("run", "book.yml", "-i", tmp_path / "hosts.ini", "-i", vault, "--db", db,
                     "--vault-id", f"prod@{tmp_path / 'wrong'}")  # fmt: skip
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "site_motto" in lines[0] and "cannot be decrypted" in lines[0]
    assert not (tmp_path / "maint.db").exists()


def test_a_rerun_takes_the_vault_password_again(maint_cli: Any, tmp_path: Path) -> None:
    vault = vaulted_inventory(tmp_path)
    (tmp_path / "hosts.ini").write_text("here ansible_connection=local\n")
    (tmp_path / "book.yml").write_text(BOOK.replace("sha256sum", "sha256sum; exit 1"))
    db = f"sqlite:///{tmp_path / 'maint.db'}"
    first = maint_cli("run", "book.yml", "-i", tmp_path / "hosts.ini", "-i", vault, "--db", db, "--format", "json",
                      "--vault-password-file", tmp_path / "pw")  # fmt: skip
    assert first.returncode == 4, first.stderr
    run_id = json.loads(first.stdout)["id"]
    refused = maint_cli("rerun", run_id, "--failed", "--db", db, env={"ANSIBLE_VAULT_PASSWORD_FILE": ""})
    assert refused.returncode == 3 and "site_motto" in refused.stderr, refused.stderr
    again = maint_cli("rerun", run_id, "--failed", "--db", db, "--format", "json",
                      env={"ANSIBLE_VAULT_PASSWORD_FILE": str(tmp_path / "pw")})  # fmt: skip
    assert again.returncode == 4, again.stderr
    [result] = json.loads(again.stdout)["results"]
    assert hashlib.sha256(f"{PLAINTEXT}\n".encode()).hexdigest() in result["output"]
    assert PLAINTEXT.encode() not in (tmp_path / "maint.db").read_bytes()
