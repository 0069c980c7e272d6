"""What maint prints and records, against the lab: no secret in any form of the command line, no
password of a store or backend URL, a debug log beside the store that holds neither, and no host's
terminal control sequence reaching the operator raw."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab

pytestmark = pytest.mark.lab

QUIET_BOOK = """name: quiet
steps:
  - id: etc-present
    type: command
    command: test -d /etc
"""
# One line of output holding a window title (OSC 0), a clipboard write (OSC 52), a DCS request, a
# screen clear (CSI 2J), a C1 CSI (U+009B as UTF-8) and a right-to-left override, then a failure.
NOISY_BOOK = r"""name: noisy
steps:
  - id: noisy
    type: command
    command: >-
      printf 'title \033]0;pwned\007 clip \033]52;c;cHduZWQ=\007 dcs \033P+q544e\033\\ cls \033[2J
      c1 \302\2336n rlo \342\200\256gnp.exe\n'; exit 1
"""
RAW_CONTROLS = ("\x1b", "\x9b", "\x07", "\u202e")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def store_bytes(directory: Path) -> bytes:
    """Every byte of the SQLite store files (database, WAL, shared memory) in ``directory``."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob("maint.db*")) if path.is_file())


def outputs(*done: subprocess.CompletedProcess[str]) -> str:
    """Everything the commands printed, stdout and stderr."""
    return "".join(result.stdout + result.stderr for result in done)


def test_no_form_of_a_secret_on_the_command_line_is_recorded_or_shown(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    secrets = [f"S3cr3t-{index}-q7Zp" for index in range(8)]
    (tmp_path / "book.yml").write_text(QUIET_BOOK, encoding="utf-8")
    (tmp_path / "vars.yml").write_text(f"vault_password: {secrets[6]}\n", encoding="utf-8")
    (tmp_path / "store").mkdir()
    db = f"sqlite:///{tmp_path / 'store' / 'maint.db'}"
    done = run_maint(
        "run", "book.yml", "-i", lab.inventory, "-l", "lab1", "--db", db, "--reason", "secrets in argv",
        "-e", json.dumps({"db_password": secrets[0]}),
        "-e", json.dumps({"nested": {"api_token": secrets[1], "list": [{"password": secrets[2]}]}}),
        f"--extra-vars=svc_api_token={secrets[3]}",
        "--extra-vars", f"deploy_token={secrets[4]} region=eu",
        f"-eapi_secret={secrets[5]}",
        "-e", "@vars.yml",
        "-e", f"backup_url=https://backup:{secrets[7]}@127.0.0.1/repo",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = [
        run_maint("runs", "show", "last", "--db", db),
        run_maint("runs", "show", "last", "--db", db, "--format", "json"),
        run_maint("report", "last", "--db", db, "--format", "html"),
        run_maint("report", "last", "--db", db, "--format", "json"),
        run_maint("audit", "export", "--db", db),
        run_maint("audit", "export", "--db", db, "--format", "csv"),
    ]
    assert all(result.returncode == 0 for result in shown), outputs(*shown)
    everything = outputs(done, *shown)
    recorded = store_bytes(tmp_path / "store")
    for secret in secrets:
        assert secret not in everything
        assert secret.encode() not in recorded
    argv = json.loads(shown[1].stdout)["argv"]
    assert argv[argv.index("--reason") + 2 :] == [
        "-e", '{"db_password": "***"}',
        "-e", '{"nested": {"api_token": "***", "list": [{"password": "***"}]}}',
        "--extra-vars=svc_api_token=***",
        "--extra-vars", "deploy_token=*** region=eu",
        "-eapi_secret=***",
        "-e", "@vars.yml",
        "-e", "backup_url=https://backup:***@127.0.0.1/repo",
    ]  # fmt: skip
    options = json.loads(shown[1].stdout)["options"]["extra_vars"]
    assert options["vault_password"] == "***" and options["nested"]["list"] == [{"password": "***"}]
    assert options["region"] == "eu"


def test_store_and_backend_passwords_never_printed(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    password = "pg-Pa55-w0rd-x1"
    url = f"postgresql+psycopg://maint:{password}@127.0.0.1:{closed_port()}/maint"
    refused = run_maint("runs", "list", "--db", url)
    assert refused.returncode == 8  # the store cannot be used now (a scheduler may retry)
    assert password not in outputs(refused)
    assert "postgresql+psycopg://maint:***@127.0.0.1" in refused.stderr

    hook_password = "hook-Pa55-w0rd-x2"
    hook = f"http://hook:{hook_password}@127.0.0.1:{closed_port()}/hooks/maint"
    (tmp_path / "book.yml").write_text(NOISY_BOOK, encoding="utf-8")
    (tmp_path / "maint.yml").write_text(
        f"store: sqlite:///{tmp_path / 'maint.db'}\ntickets:\n  timeout: 1s\n  deliver_within: 2s\n  backends:\n"
        f"    hook:\n      type: webhook\n      url: {hook}\n  routing:\n    - backends: [hook]\n",
        encoding="utf-8",
    )
    ran = run_maint("run", "book.yml", "-i", lab.inventory, "-l", "lab1")
    assert ran.returncode == 4, ran.stderr
    synced = run_maint("tickets", "sync")
    assert "cannot connect to http://hook:***@127.0.0.1" in ran.stderr + synced.stderr
    assert hook_password not in outputs(ran, synced, run_maint("tickets", "list", "--format", "json"))
    assert hook_password.encode() not in store_bytes(tmp_path)

    # A store URL in maint.yml: shown by config show, without its password.
    (tmp_path / "maint.yml").write_text(f"store: {url}\n", encoding="utf-8")
    shown = run_maint("config", "show")
    assert shown.returncode == 0 and "maint:***@127.0.0.1" in shown.stdout and password not in outputs(shown)

    # A URL's credentials would replace the configured token: refused as a config error.
    (tmp_path / "maint.yml").write_text(
        f"tickets:\n  backends:\n    hook:\n      type: webhook\n      url: {hook}\n      token: env:HOOK_TOKEN\n",
        encoding="utf-8",
    )
    validated = run_maint("config", "validate")
    assert validated.returncode == 3
    assert f"{tmp_path / 'maint.yml'}:5: At 'tickets.backends.hook.url': the URL holds user:password@" in (
        validated.stderr
    )
    assert hook_password not in outputs(validated)


def test_internal_error_debug_log_beside_the_store_private_and_masked(
    lab: Lab, run_maint: Any, tmp_path: Path
) -> None:
    secret = "dbg-S3cr3t-x3"
    store = tmp_path / "records" / "maint.db"
    store.parent.mkdir()
    db = f"sqlite:///{store}"
    assert run_maint("db", "upgrade", "--db", db).returncode == 0  # creates the store
    with sqlite3.connect(store) as connection:  # every new run now fails inside SQLAlchemy: a "bug"
        connection.execute("CREATE TRIGGER forced BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'forced'); END")
    log = store.parent / "maint-debug.log"
    log.write_text("")
    log.chmod(0o644)  # an earlier, wider log is narrowed
    (tmp_path / "book.yml").write_text(QUIET_BOOK, encoding="utf-8")
    done = run_maint(
        "run", "book.yml", "-i", lab.inventory, "-l", "lab1", "--db", db, "--reason", "forced",
        "-e", json.dumps({"db_password": secret}), f"--extra-vars=api_token={secret}",
        env={"MAINT_DEBUG_LOG": ""},
    )  # fmt: skip
    assert done.returncode == 1
    assert f"(traceback in {log})" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert secret not in done.stderr and "[parameters:" not in done.stderr
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert "IntegrityError" in text and "[SQL parameters hidden" in text
    assert secret not in text and "[parameters:" not in text
    assert '{"db_password": "***"}' in text


def test_host_control_sequences_reach_no_output_raw(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    (tmp_path / "book.yml").write_text(NOISY_BOOK, encoding="utf-8")
    (tmp_path / "maint.yml").write_text("tickets:\n  enabled: true\n", encoding="utf-8")
    ran = run_maint("run", "book.yml", "-i", lab.inventory, "-l", "lab1")
    assert ran.returncode == 4, ran.stderr
    listed = run_maint("tickets", "list")
    ticket = listed.stdout.splitlines()[1].split()[0].lstrip("#")
    shown = [
        run_maint("runs", "show", "last"),
        listed,
        run_maint("tickets", "show", ticket),
        run_maint("report", "last", "--format", "csv"),
        run_maint("runs", "list"),
    ]
    assert all(result.returncode == 0 for result in shown), outputs(*shown)
    for result in (ran, *shown):
        for raw in RAW_CONTROLS:
            assert raw not in result.stdout + result.stderr, (result.args, raw)
    start = "title \\u001b]0;pwned\\u0007 clip \\u001b]52;c;cHduZWQ=\\u0007 dcs \\u001bP+q544e\\u001b\\ cls"
    escaped = start + " \\u001b[2J c1 \\u009b6n"
    for result in (ran, shown[0], shown[3]):
        assert escaped in result.stdout, result.stdout
    assert "rlo \\u202egnp.exe" in shown[0].stdout
    # Tickets keep the text without CSI sequences (colours); the rest shows escaped there too.
    assert start in shown[2].stdout
    assert "title \\u001b]0;pwned" in listed.stdout
    # JSON output stays JSON: the escape is JSON's own, so a program reading it gets the host's text.
    document = json.loads(run_maint("runs", "show", "last", "--format", "json").stdout)
    assert "\x1b]0;pwned\x07" in document["results"][0]["summary"]
