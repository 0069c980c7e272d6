"""Acceptance: tickets from `maint run nightly` on a 20-host lab with five faults, filed for real.

The tickets go to a real Request Tracker 5 (rt-server, REST2), a real Roundup tracker
(roundup-server, REST) and a real SMTP server (aiosmtpd), besides maint's own store:

1. five faults -> five tickets with the right tiers, in every system; RT is killed while the run
   works, and its tickets arrive after it is back (`maint tickets sync`), exactly once;
2. a second run adds an occurrence to each and opens none; Roundup is down this time and gets
   its comments from the next run;
3. after `maint lab fix`, a third run resolves all five, everywhere.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_accounts import acceptance_lab
from roundup_server import RoundupServer
from rt_server import RTServer, backend_settings
from rt_server import missing as rt_missing
from smtp_server import SMTPServer

from maint import lab as lab_library

pytestmark = pytest.mark.lab

# host -> (fault, the nightly check that finds it, the ticket's tier)
FAULTS = {
    "lab2": ("virus", "virus-scan", "L2"),
    "lab5": ("stale-backup", "restic-backup", "L3"),
    "lab8": ("corrupt-backup", "restic-backup", "L3"),
    "lab11": ("disk-full", "root-disk", "L1"),
    "lab14": ("pending-updates", "pending-updates", "L1"),
}
CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")
KEYS = {f"{host}/{check}" for host, (_, check, _) in FAULTS.items()}


def run_nightly(maint_bin: Path, lab: Any, directory: Path, env: dict[str, str], become: tuple[str, ...],
                while_running: Any = None) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Run nightly as a subprocess (with the lab's ``become`` options); ``while_running`` is called once the first
    results are recorded."""
    process = subprocess.Popen(
        [str(maint_bin), "run", "nightly", "-i", str(lab.inventory), *become, *CALM, "--format", "json"],
        cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if while_running is not None:
        database = directory / "maint.db"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with sqlite3.connect(database) as connection:
                    if connection.execute("SELECT count(*) FROM results").fetchone()[0] > 0:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.1)
        assert process.poll() is None, "the run ended before anything could be done during it"
        while_running()
    stdout, stderr = process.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    assert process.returncode in (0, 4), stderr
    return json.loads(stdout), stderr


def maint_tickets(maint_bin: Path, directory: Path, env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([str(maint_bin), "tickets", *args], cwd=directory, env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_five_faults_five_tickets_everywhere_then_occurrences_then_resolved(
    maint_bin: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reason = rt_missing()
    if reason:
        pytest.skip(reason)

    with (
        acceptance_lab("maintaccept2", "127.0.31.2", 20) as (lab, become),
        SMTPServer(tmp_path_factory.mktemp("smtp")) as smtp,
        RoundupServer() as roundup,
    ):
        rt = RTServer(tmp_path_factory.mktemp("rt")).start()
        directory = tmp_path / "project"
        directory.mkdir()
        config = {
            "store": f"sqlite:///{directory / 'maint.db'}",
            "tickets": {
                "timeout": "2s",
                "backends": {
                    "helpdesk": backend_settings(rt),
                    "tracker": {"type": "roundup", "url": roundup.url, "user": roundup.user,
                                "password": "env:MAINT_ROUNDUP_PASSWORD"},
                    "mail": {"type": "email", "host": smtp.host, "port": smtp.port, "from": "maint@example.org",
                             "to": ["ops@example.org"]},
                },
                "routing": [{"backends": ["helpdesk", "tracker", "mail"]}],
            },
        }
        (directory / "maint.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {**os.environ, **rt.environment(), "MAINT_ROUNDUP_PASSWORD": roundup.password,
               "MAINT_DEBUG_LOG": str(tmp_path / "debug.log")}  # fmt: skip
        for host, (fault, _, _) in FAULTS.items():
            lab_library.break_host(lab.directory, host, fault)

        # 1. Five tickets; RT dies while the run works.
        first, stderr = run_nightly(maint_bin, lab, directory, env, become, while_running=lambda: rt.stop(kill=True))
        assert first["tickets"]["actions"] == {"opened": 5}
        assert "ticket backend 'helpdesk' failed" in stderr
        listed = json.loads(maint_tickets(maint_bin, directory, env, "list", "--format", "json").stdout)
        assert {(t["key"], t["tier"]) for t in listed} == {
            (f"{host}/{check}", tier) for host, (_, check, tier) in FAULTS.items()
        }
        assert {issue.title.split("]")[0][1:] for issue in roundup.issues()} == KEYS
        assert {mail.message["X-Maint-Key"] for mail in smtp.wait_for(5)} == KEYS
        assert maint_tickets(maint_bin, directory, env, "sync").returncode == 4  # RT is still down
        rt.start()
        synced = maint_tickets(maint_bin, directory, env, "sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        rt_tickets = {key: rt.tickets_with(rt.custom_fields["key"], key) for key in KEYS}
        assert all(len(found) == 1 for found in rt_tickets.values()), rt_tickets
        queues = {key: rt.queue_name(found[0]) for key, found in rt_tickets.items()}
        tier_of = {f"{host}/{check}": tier for host, (_, check, tier) in FAULTS.items()}
        assert queues == {key: rt.queues[tier_of[key]] for key in KEYS}

        # 2. Occurrences, no new ticket; Roundup is down for this run.
        roundup.stop()
        second, stderr = run_nightly(maint_bin, lab, directory, env, become)
        assert second["tickets"]["actions"] == {"occurrence": 5}
        assert "ticket backend 'tracker' failed" in stderr
        assert len(json.loads(maint_tickets(maint_bin, directory, env, "list", "--format", "json").stdout)) == 5
        roundup.start()

        # 3. Fixed: every ticket resolved, everywhere; Roundup first gets the comments it missed.
        for host in FAULTS:
            lab_library.fix_host(lab.directory, host)
        third, _ = run_nightly(maint_bin, lab, directory, env, become)
        assert third["exit_code"] == 0
        assert third["tickets"]["actions"] == {"resolved": 5}
        assert third["tickets"]["pending"] == 0
        assert json.loads(maint_tickets(maint_bin, directory, env, "list", "--format", "json").stdout) == []

        for key, (ticket_id,) in rt_tickets.items():
            assert rt.ticket(ticket_id)["Status"] == "resolved"
            texts = [transaction.text for transaction in rt.history(ticket_id)]
            assert sum("Occurrence 2" in text for text in texts) == 1, (key, texts)
        issues = roundup.issues()
        assert len(issues) == 5  # exactly once
        for issue in issues:
            assert issue.status == "resolved"
            assert sum("Occurrence 2" in message.content for message in issue.messages) == 1
        mails = smtp.wait_for(15)
        assert len(mails) == 15
        assert sorted(mail.message["X-Maint-Action"] for mail in mails).count("resolve") == 5
        # Three nightly runs, every ticket action and every delivery (retried ones too) are in the ledger.
        verified = subprocess.run([str(maint_bin), "audit", "verify", "--format", "json"], cwd=directory, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert verified.returncode == 0, verified.stdout
        assert json.loads(verified.stdout)["entries"] > 3 * 20 * 14
        rt.stop()
