"""backup.restic, backup.borg and backup.run from recorded output: every outcome each can produce.

tests/data/backup/*.json hold the whole output of each step's script, recorded with restic 0.14.0
and borg 1.2.4 against real repositories (paths rewritten to /srv/backup): healthy, stale, damaged
(pack headers, or only data blobs, which only the restore test finds), moved (borg), wrong password,
missing repository, tool not installed. The newer restic format (0.17: ``program_version`` and
``summary`` in each snapshot, exit codes 10 and 12) is written by hand from restic's documentation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maint.checks import ParamError, Status
from maint.checks.backup import BackupRun, BorgBackup, ResticBackup, parse_sections
from maint.executors import CommandResult
from maint.secrets import Secret

DATA = Path(__file__).parent.parent / "data" / "backup"
PASSWORD = "pw-Secret-77"
NOW = 1795467541  # the host clock in restic-ok.json


def recorded(name: str) -> CommandResult:
    data = json.loads((DATA / f"{name}.json").read_text())
    return CommandResult("cmd", data["exit_code"], data["stdout"], data["stderr"], 0.5, False)


def result(stdout: str = "", exit_code: int | None = 0, stderr: str = "") -> CommandResult:
    return CommandResult("cmd", exit_code, stdout, stderr, 0.01, False)


def restic(**values: Any) -> ResticBackup:
    params = {"repository": "/srv/backup/repo", "password": Secret("env:PW", PASSWORD), "max_age": "26h"}
    return ResticBackup({**params, **values})


def borg(**values: Any) -> BorgBackup:
    params = {"repository": "/srv/backup/borg", "password": Secret("env:PW", PASSWORD), "max_age": "26h"}
    return BorgBackup({**params, **values})


def sections(now: int, listing: str, check: tuple[int, str] | None = (0, "no errors were found"), rc: int = 0) -> str:
    text = f"@@MAINT-SECTION now 0\n{now}\n@@MAINT-SECTION list {rc}\n{listing}\n@@MAINT-STDERR list\n\n"
    if check is not None:
        text += f"@@MAINT-SECTION check {check[0]}\n{check[1]}\n"
    return text


class TestParams:
    def test_password_must_be_a_reference(self) -> None:
        with pytest.raises(ParamError, match="never the secret itself"):
            ResticBackup({"repository": "/r", "password": "hunter2", "max_age": "1d"})

    def test_password_and_max_age_are_required(self) -> None:
        with pytest.raises(ParamError, match="needs parameter 'password'"):
            BorgBackup({"repository": "/r", "max_age": "1d"})
        with pytest.raises(ParamError, match="needs parameter 'max_age'"):
            ResticBackup({"repository": "/r", "password": Secret("env:X", "x")})

    def test_defaults(self) -> None:
        values = restic().values
        assert values["max_age"] == 26 * 3600
        assert values["warn_age"] is None
        assert values["min_snapshots"] == 1
        assert values["check"] is True and values["read_data"] is False
        assert values["restore_test"] is None

    def test_empty_restore_test_means_none_and_check_accepts_text(self) -> None:
        values = restic(restore_test="", check="no").values
        assert values["restore_test"] is None and values["check"] is False
        with pytest.raises(ParamError, match="true or false"):
            restic(check="maybe")

    def test_backup_run_params(self) -> None:
        step = BackupRun({"repository": "/r", "password": Secret("env:P", "p"), "paths": "/srv/data"})
        assert step.values["tool"] == "restic" and step.values["paths"] == ("/srv/data",)
        assert step.changes_host
        with pytest.raises(ParamError, match="expected one of restic, borg"):
            BackupRun({"tool": "tar", "repository": "/r", "password": Secret("env:P", "p"), "paths": "/x"})


class TestCommands:
    def test_password_only_on_stdin_never_in_the_command(self) -> None:
        for step in (restic(restore_test="/data"), borg(restore_test="/srv/data")):
            assert step.stdin() == PASSWORD + "\n"
            assert PASSWORD not in step.command()
            assert step.secret_values() == (PASSWORD,)
            assert step.command().startswith("IFS= read -r ")
        run = BackupRun({"repository": "/r", "password": Secret("env:P", PASSWORD), "paths": ["/a b", "/c"]})
        assert PASSWORD not in run.command() and run.stdin() == PASSWORD + "\n"
        assert "-- '/a b' /c" in run.command()

    def test_restic_script_quotes_and_reads_without_locks(self) -> None:
        command = restic(repository="/srv/it's", restore_test="/data/x y", read_data=True).command()
        assert "restic -r '/srv/it'\"'\"'s' --no-cache --no-lock snapshots --json" in command
        assert "check --read-data" in command
        assert "--include '/data/x y' --verify" in command
        assert "trap 'rm -rf \"$t\"' EXIT" in command
        assert " check" not in restic(check=False).command()

    def test_borg_script_never_prompts_and_uses_utc(self) -> None:
        command = borg(restore_test="/srv/data").command()
        assert "TZ=UTC" in command and "BORG_RELOCATED_REPO_ACCESS_IS_OK=no" in command
        assert "borg extract" in command and "srv/data" in command and "'/srv/data'" not in command

    def test_sections_parse_stdout_and_stderr(self) -> None:
        parsed = parse_sections("junk\n@@MAINT-SECTION list 1\nout\n@@MAINT-STDERR list\nerr line\n")
        assert parsed["list"].exit_code == 1
        assert parsed["list"].output == "out" and parsed["list"].stderr == "err line"


class TestRestic:
    def test_healthy_repository_with_restore_test_is_ok(self) -> None:
        outcome = restic(restore_test="/data").evaluate(recorded("restic-ok"))
        assert outcome.status is Status.OK, outcome.summary
        assert outcome.summary.startswith("5 snapshots, latest 2m ago (max 26h); check ok")
        assert "restore of /data ok (2 files, 12 B, verified)" in outcome.summary
        assert outcome.metrics["snapshots"] == 5
        assert 60 < outcome.metrics["snapshot_age_seconds"] < 300
        assert outcome.metrics["check_ok"] == 1 and outcome.metrics["restore_ok"] == 1

    def test_stale_snapshot_fails_with_its_age(self) -> None:
        outcome = restic().evaluate(recorded("restic-stale"))
        assert outcome.status is Status.FAILED
        assert outcome.summary.startswith("1 snapshot, latest 2518d ago (max 26h)")
        assert outcome.metrics["snapshot_age_seconds"] > 2500 * 86400

    def test_warning_between_warn_age_and_max_age(self) -> None:
        listing = json.dumps([{"time": "2026-11-23T00:00:00Z"}])
        now = 1795392000 + 25 * 3600  # 2026-11-23T00:00:00Z + 25 h
        outcome = restic(warn_age="24h", check=False).evaluate(result(sections(now, listing, None)))
        assert outcome.status is Status.WARNING
        assert outcome.summary == "1 snapshot, latest 25h ago (max 26h)"
        assert "check_ok" not in outcome.metrics

    def test_too_few_and_no_snapshots_fail(self) -> None:
        outcome = restic(min_snapshots=7).evaluate(recorded("restic-ok"))
        assert outcome.status is Status.FAILED and "fewer than 7 snapshots" in outcome.summary
        empty = restic().evaluate(result(sections(NOW, "[]")))
        assert empty.status is Status.FAILED
        assert empty.summary.startswith("no snapshots in /srv/backup/repo")
        assert empty.metrics["snapshots"] == 0

    def test_damaged_repository_fails_with_check_output(self) -> None:
        outcome = restic(restore_test="/data").evaluate(recorded("restic-check-failed"))
        assert outcome.status is Status.FAILED
        assert "check failed: error for tree 795fb5dd: decrypting blob" in outcome.summary
        assert "ciphertext verification failed" in outcome.summary
        assert outcome.metrics["check_ok"] == 0 and outcome.metrics["restore_ok"] == 0

    def test_damaged_data_that_check_misses_fails_the_restore_test(self) -> None:
        outcome = restic(restore_test="/data").evaluate(recorded("restic-corrupt"))
        assert outcome.status is Status.FAILED
        assert "check ok" in outcome.summary
        assert "restore test of /data failed: ignoring error for /data/a.txt: ciphertext verification failed" in (
            outcome.summary
        )
        assert outcome.metrics["check_ok"] == 1 and outcome.metrics["restore_ok"] == 0

    def test_restore_test_of_a_path_not_in_the_snapshot_fails(self) -> None:
        stdout = recorded("restic-ok").stdout
        head, _, _ = stdout.partition("@@MAINT-SECTION expected")
        tail = '@@MAINT-SECTION expected 0\n{"struct_type":"snapshot"}\n@@MAINT-STDERR expected\n'
        tail += "@@MAINT-SECTION restore 0\n@@MAINT-STDERR restore\n@@MAINT-SECTION restored 0\n\n"
        outcome = restic(restore_test="/nothing").evaluate(result(head + tail))
        assert outcome.status is Status.FAILED
        assert "restore test: /nothing holds no files in the latest snapshot" in outcome.summary

    def test_restore_that_misses_a_file_fails(self) -> None:
        stdout = recorded("restic-ok").stdout.replace("data/b.txt\t6\n", "")
        outcome = restic(restore_test="/data").evaluate(result(stdout))
        assert outcome.status is Status.FAILED
        assert "restore test of /data: 1 missing of 2 files (e.g. data/b.txt)" in outcome.summary

    def test_wrong_password_is_an_error(self) -> None:
        outcome = restic().evaluate(recorded("restic-wrong-password"))
        assert outcome.status is Status.ERROR
        assert outcome.summary == "restic: wrong password for /srv/backup/repo (from env:PW)"

    def test_missing_repository_is_an_error(self) -> None:
        outcome = restic().evaluate(recorded("restic-missing-repo"))
        assert outcome.status is Status.ERROR
        assert outcome.summary == "restic: no repository at /srv/backup/repo"

    def test_restic_not_installed_is_an_error(self) -> None:
        outcome = restic().evaluate(recorded("restic-not-installed"))
        assert outcome.status is Status.ERROR
        assert outcome.summary.startswith("restic not found on the host")

    def test_locked_repository_is_an_error_not_damage(self) -> None:
        listing = json.dumps([{"time": "2026-11-23T20:00:00Z"}])
        check = (1, "create exclusive lock for repository\nunable to create lock in backend: repository is already "
                 "locked exclusively by PID 11 on vm by root (UID 0, GID 0)")  # fmt: skip
        outcome = restic().evaluate(result(sections(1795464000, listing, check)))
        assert outcome.status is Status.ERROR
        assert "check failed: unable to create lock in backend" in outcome.summary

    def test_newer_restic_format_and_exit_codes(self) -> None:
        snapshot = {
            "time": "2026-11-23T19:00:00.123456789+01:00",
            "tree": "ab" * 32,
            "paths": ["/srv/data"],
            "hostname": "web1",
            "username": "root",
            "program_version": "restic 0.17.3",
            "summary": {"backup_start": "2026-11-23T19:00:00+01:00", "files_new": 3, "total_bytes_processed": 12},
            "id": "cd" * 32,
            "short_id": "cdcdcdcd",
        }
        now = 1795392000 + 18 * 3600 + 30 * 60  # 18:30Z is 30 min after 19:00+01:00
        outcome = restic().evaluate(result(sections(now, json.dumps([snapshot]))))
        assert outcome.status is Status.OK
        assert outcome.metrics["snapshot_age_seconds"] == pytest.approx(1800, abs=1)
        missing = "@@MAINT-SECTION now 0\n1\n@@MAINT-SECTION list 10\n\n@@MAINT-STDERR list\nFatal: repository does not exist: unable to open config file: stat /r/config: no such file or directory\n"  # noqa: E501
        assert restic().evaluate(result(missing)).summary == "restic: no repository at /srv/backup/repo"
        wrong = missing.replace("list 10", "list 12").replace("repository does not exist", "wrong password")
        assert restic().evaluate(result(wrong)).summary.startswith("restic: wrong password")

    def test_unparsable_listing_is_an_error(self) -> None:
        outcome = restic().evaluate(result(sections(NOW, "not json")))
        assert outcome.status is Status.ERROR
        assert "cannot parse the snapshot list" in outcome.summary

    def test_other_listing_failure_names_restic_s_message(self) -> None:
        stdout = "@@MAINT-SECTION now 0\n1\n@@MAINT-SECTION list 1\n\n@@MAINT-STDERR list\nFatal: permission denied\n"
        outcome = restic().evaluate(result(stdout))
        assert outcome.status is Status.ERROR
        assert outcome.summary == "restic snapshots /srv/backup/repo failed (exit 1): Fatal: permission denied"


class TestBorg:
    def test_healthy_repository_with_restore_test_is_ok(self) -> None:
        outcome = borg(restore_test="/srv/backup/data").evaluate(recorded("borg-ok"))
        assert outcome.status is Status.OK, outcome.summary
        assert outcome.summary.startswith("3 archives, latest ")
        assert "check ok" in outcome.summary and "restore of /srv/backup/data ok (2 files" in outcome.summary
        assert outcome.metrics["check_ok"] == 1 and outcome.metrics["restore_ok"] == 1

    def test_times_without_offset_are_read_as_utc(self) -> None:
        listing = json.dumps({"archives": [{"name": "a", "time": "2026-11-23T00:00:00.000000"}]})
        outcome = borg(check=False).evaluate(result(sections(1795392000 + 3 * 86400, listing, None)))
        assert outcome.status is Status.FAILED
        assert outcome.summary == "1 archive, latest 3d ago (max 26h)"
        assert outcome.metrics["snapshot_age_seconds"] == 3 * 86400

    def test_damaged_repository_fails(self) -> None:
        outcome = borg().evaluate(recorded("borg-corrupt"))
        assert outcome.status is Status.FAILED
        assert "check failed: Data integrity error: Invalid segment entry header [segment 1, offset 17]" in (
            outcome.summary
        )
        assert outcome.metrics["check_ok"] == 0

    def test_wrong_passphrase_missing_and_moved_repositories_are_errors(self) -> None:
        wrong = borg().evaluate(recorded("borg-wrong-passphrase"))
        assert (wrong.status, wrong.summary) == (
            Status.ERROR,
            "borg: wrong passphrase for /srv/backup/borg (from env:PW)",
        )
        missing = borg().evaluate(recorded("borg-missing-repo"))
        assert (missing.status, missing.summary) == (Status.ERROR, "borg: no repository at /srv/backup/borg")
        moved = borg().evaluate(recorded("borg-moved"))
        assert moved.status is Status.ERROR and "was moved or copied" in moved.summary

    def test_borg_not_installed_is_an_error(self) -> None:
        outcome = borg().evaluate(result("", 127, "borg: command not found\n"))
        assert outcome.status is Status.ERROR
        assert outcome.summary == "borg not found on the host: borg: command not found"


class TestBackupRun:
    def run(self, **values: Any) -> BackupRun:
        return BackupRun(
            {"repository": "/srv/backup/repo", "password": Secret("env:P", "p"), "paths": "/srv/backup/data", **values}
        )

    def test_restic_backup_records_snapshot_and_size(self) -> None:
        outcome = self.run(tags=["nightly"]).evaluate(recorded("restic-backup"))
        assert outcome.status is Status.OK
        assert (
            outcome.summary.startswith("snapshot ")
            and "of /srv/backup/data: 2 files, 12 B processed" in outcome.summary
        )
        assert outcome.metrics["files"] == 2 and outcome.metrics["bytes_processed"] == 12
        assert outcome.metrics["bytes_added"] > 0
        assert "--tag nightly" in self.run(tags=["nightly"]).command()

    def test_borg_backup_records_archive_and_size(self) -> None:
        outcome = self.run(tool="borg").evaluate(recorded("borg-backup"))
        assert outcome.status is Status.OK
        assert outcome.summary.startswith("archive vm-") and "2 files, 559 B processed" in outcome.summary
        assert "borg create --json" in self.run(tool="borg").command()

    def test_incomplete_restic_backup_is_a_warning(self) -> None:
        stdout = recorded("restic-backup").stdout
        outcome = self.run().evaluate(result(stdout, 3, "error: open /srv/backup/data/x: permission denied\n"))
        assert outcome.status is Status.WARNING
        assert outcome.summary.endswith("incomplete: error: open /srv/backup/data/x: permission denied")

    def test_failures_are_errors(self) -> None:
        wrong = self.run().evaluate(result("", 1, "Fatal: wrong password or no key found\n"))
        assert (wrong.status, wrong.summary) == (Status.ERROR, "restic: wrong password for /srv/backup/repo")
        missing = self.run().evaluate(
            result("", 1, "Fatal: unable to open config file: stat /r/config: no such file\n")
        )
        assert missing.summary == "restic: no repository at /srv/backup/repo"
        absent = self.run().evaluate(result("", 127, "restic: command not found\n"))
        assert absent.summary.startswith("restic not found on the host")
        garbage = self.run().evaluate(result('{"message_type":"status"}\n'))
        assert garbage.status is Status.ERROR and "cannot parse" in garbage.summary
