"""``maint windows list|status`` as a real subprocess, with a maint.yml in a temporary project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAINT_YML = """\
windows:
  nightly:
    cron: "0 2 * * 6"
    duration: 2h
    timezone: Europe/Berlin
    blackouts: [2026-12-26]
    hosts: web
    playbooks: [updates-apply]
  monthly:
    rrule: FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0
    duration: 90m
"""

# Without MAINT_CONFIG, maint.yml in the working directory is read.
ENV = {"MAINT_CONFIG": ""}


def project(tmp_path: Path, text: str = MAINT_YML) -> Path:
    (tmp_path / "maint.yml").write_text(text)
    return tmp_path


def test_list_shows_every_window(run_maint: Any, tmp_path: Path) -> None:
    cwd = project(tmp_path)
    done = run_maint("windows", "list", "--format", "json", cwd=cwd, env=ENV)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [item["name"] for item in listed] == ["nightly", "monthly"]
    nightly = listed[0]
    assert {key: nightly[key] for key in ("cron", "rrule", "duration", "timezone", "hosts", "playbooks", "grace",
                                          "blackouts")} == {
        "cron": "0 2 * * 6", "rrule": None, "duration": 7200.0, "timezone": "Europe/Berlin", "hosts": "web",
        "playbooks": ["updates-apply"], "grace": 300.0, "blackouts": ["2026-12-26"],
    }  # fmt: skip
    assert isinstance(nightly["open"], bool)
    assert nightly["next_opens_at"].endswith(("+01:00", "+02:00"))
    assert {"at", "opened_at", "closes_at", "next_closes_at", "reason"} <= set(nightly)
    text = run_maint("windows", "list", cwd=cwd, env=ENV)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "DURATION", "TIMEZONE", "HOSTS", "OPEN", "NEXT", "OPENING"]
    assert lines[1].split()[:2] == ["nightly", "0"]
    assert "2h" in lines[1].split() and "90m" in lines[2].split()


def test_status_at_a_given_time(run_maint: Any, tmp_path: Path) -> None:
    cwd = project(tmp_path)
    # Without an offset, --at is read in each window's time zone: Saturday 02:30 in Berlin.
    done = run_maint("windows", "status", "--at", "2026-11-28T02:30", cwd=cwd, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nightly: open since Sat 02:00 CET, closes 04:00 CET",
        "monthly: closed: opens Tue 2026-12-08 22:00 UTC",
    ]
    blackout = run_maint("windows", "status", "nightly", "--at", "2026-12-26T02:30:00+01:00", cwd=cwd, env=ENV)
    assert blackout.stdout == "nightly: closed: today is a blackout date (2026-12-26); opens Sat 2027-01-02 02:00 CET\n"


def test_status_json_is_one_object_for_a_name_and_a_list_without(run_maint: Any, tmp_path: Path) -> None:
    cwd = project(tmp_path)
    one = run_maint("windows", "status", "nightly", "--at", "2026-11-28T01:30:00Z", "--format", "json",
                    cwd=cwd, env=ENV)  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {
        "schema_version": 1, "window": "nightly", "timezone": "Europe/Berlin", "at": "2026-11-28T02:30:00+01:00",
        "open": True, "opened_at": "2026-11-28T02:00:00+01:00", "closes_at": "2026-11-28T04:00:00+01:00",
        "grace_until": "2026-11-28T04:05:00+01:00", "next_opens_at": "2026-12-05T02:00:00+01:00",
        "next_closes_at": "2026-12-05T04:00:00+01:00", "reason": "open since Sat 02:00 CET, closes 04:00 CET",
    }  # fmt: skip
    every = run_maint("windows", "status", "--at", "2026-11-28T01:30:00Z", "--format", "json", cwd=cwd, env=ENV)
    documents = json.loads(every.stdout)
    assert [(item["window"], item["open"]) for item in documents] == [("nightly", True), ("monthly", False)]


def test_an_unknown_window_is_bad_input_naming_the_known_ones(run_maint: Any, tmp_path: Path) -> None:
    done = run_maint("windows", "status", "nighlty", cwd=project(tmp_path), env=ENV)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "maint: error: unknown window 'nighlty' (did you mean 'nightly'? known: nightly, monthly)"
    )


def test_an_invalid_window_is_bad_input_with_file_and_line(run_maint: Any, tmp_path: Path) -> None:
    cwd = project(tmp_path, 'windows:\n  nightly:\n    cron: "61 2 * * *"\n    duration: 2h\n')
    for command in (["windows", "list"], ["windows", "status", "nightly"]):
        done = run_maint(*command, cwd=cwd, env=ENV)
        assert done.returncode == 3
        assert done.stderr.startswith(
            f"maint: error: {cwd / 'maint.yml'}:3: At 'windows.nightly.cron': invalid cron expression '61 2 * * *' ("
        )
        assert "Traceback" not in done.stderr


def test_a_bad_at_is_a_usage_error(run_maint: Any, tmp_path: Path) -> None:
    done = run_maint("windows", "status", "--at", "next saturday", cwd=project(tmp_path), env=ENV)
    assert done.returncode == 2
    assert "expected a time in ISO 8601" in done.stderr
    assert "Traceback" not in done.stderr
