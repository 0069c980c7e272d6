"""Why a skipped result was skipped, and which Ansible task a result is, read from the words maint records
(maint.store.classify): every skip message of the engine and the spool has its kind."""

from __future__ import annotations

import pytest

from maint import run as engine
from maint.store import ResultRecord, SkipKind, spool
from maint.store.classify import NOT_STARTED, derive, step_id

CASES = [
    # status, step, step type, summary -> skip_kind, task
    ("skipped", "nap", "command", engine.INTERRUPTED, "interrupted", None),
    ("skipped", "nap", "command", f"{engine.INTERRUPTED}; ended the step's processes with SIGTERM", "interrupted",
     None),
    ("skipped", "nap", "command", spool.INTERRUPTED, "interrupted", None),
    ("skipped", "nap", "command", "aborted: 1 of 1 hosts failed in batch 1 (100% > max_fail_percentage 0%)",
     "aborted", None),
    ("skipped", "nap", "command", "window 'nightly' closed at 2026-11-28 04:00 UTC", "window-closed", None),
    ("skipped", "clean", "log.cleanup", "check mode: log.cleanup changes the host and has no dry run", "check-mode",
     None),
    ("skipped", "never", "command", "condition is false: False", "condition", None),
    ("skipped", "site", "ansible", "no play of the Ansible playbook ran on this host", "no-play", None),
    ("skipped", "site/restart nginx", "ansible:ansible.builtin.service", "skipped: Conditional result was False",
     "ansible", "restart nginx"),
    ("ok", "site/say hello #2", "ansible:ansible.builtin.debug", "ok: again", None, "say hello #2"),
    ("error", "site", "ansible", "ansible-runner failed: OSError: boom", None, None),
    ("skipped", "backup", "backup.custom", "no repository configured", "other", None),
    ("ok", "disk", "disk.usage", "aborted: is only text here", None, None),
    ("failed", "conf/a", "command", "exit 1", None, None),  # a slash in a step id that is not Ansible's
]  # fmt: skip


@pytest.mark.parametrize(("status", "step", "step_type", "summary", "kind", "task"), CASES)
def test_derive(status: str, step: str, step_type: str, summary: str, kind: str | None, task: str | None) -> None:
    assert derive(status, step, step_type, summary) == (kind, task)
    assert kind is None or kind in set(SkipKind)


def test_the_step_id_of_a_result_without_its_task() -> None:
    assert step_id("site/say hello #2", "say hello #2") == "site"
    assert step_id("site/a/b", "a/b") == "site"
    assert step_id("conf/a", None) == "conf/a"


def test_resume_runs_again_only_what_the_run_itself_skipped() -> None:
    assert set(NOT_STARTED) == {SkipKind.INTERRUPTED, SkipKind.ABORTED, SkipKind.WINDOW_CLOSED}


def test_new_fields_come_last_with_defaults() -> None:
    record = ResultRecord(run_id="r", host="h", playbook="p", step="s", step_type="command", status="ok",
                          exit_code=0, summary="ok", metrics={}, output="", started="t", duration=0.0)  # fmt: skip
    assert list(record.__dict__)[-3:] == ["skip_kind", "task", "command"]
    assert (record.skip_kind, record.task, record.command) == (None, None, None)


def test_a_row_of_each_schema_revision_verifies_against_its_own_digest_and_an_edit_does_not() -> None:
    from maint.store.schema import covered_form, row_digest

    release = {"id": 1, "status": "skipped", "step": "s", "step_type": "command", "summary": "check mode: no dry run"}
    kind, task = derive(release["status"], release["step"], release["step_type"], release["summary"])
    revision_2 = {**release, "skip_kind": kind, "task": task}
    revision_3 = {**revision_2, "command": None}
    now = {**revision_2, "command": "df -P /"}
    # As stored today (command NULL for rows from before), each verifies against the digest it was written with.
    for written in (release, revision_2, revision_3):
        assert covered_form("result", revision_3, row_digest(written)) == written
    assert covered_form("result", now, row_digest(now)) == now
    # A command put into an older row afterwards, or a row edited otherwise, matches nothing.
    assert covered_form("result", now, row_digest(revision_2)) is None
    assert covered_form("result", {**revision_3, "summary": "edited"}, row_digest(release)) is None
