"""Step types from recorded command output: every outcome each type can produce."""

from __future__ import annotations

import pytest

from maint.checks import ParamError, Status, duration, percent
from maint.checks.command import CommandCheck
from maint.checks.disk import DiskUsage
from maint.checks.files import FileAge
from maint.executors import CommandResult


def result(stdout: str = "", exit_code: int | None = 0, stderr: str = "", timed_out: bool = False) -> CommandResult:
    return CommandResult("cmd", exit_code, stdout, stderr, 0.01, timed_out)


# df -P -k output recorded on Debian 12 (coreutils 9.1) and on Alpine (busybox df -P -k)
DF_DEBIAN = """Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda         263174212 23029684 226698456      10% /
"""
DF_FULL = """Filesystem     1024-blocks  Used Available Capacity Mounted on
tmpfs                 1024   990        34      97% /srv/small
"""
DF_BUSYBOX = """Filesystem           1024-blocks    Used Available Capacity Mounted on
overlay               61255492 49004392   9110364  85% /
"""
DF_LONG_NAME = """Filesystem                                   1024-blocks  Used Available Capacity Mounted on
/dev/mapper/very--long--volume--group-root 10255636 8400000 1331200 87% /var/lib/with space
"""


class TestDiskUsage:
    def test_ok(self) -> None:
        outcome = DiskUsage({"path": "/"}).evaluate(result(DF_DEBIAN))
        assert outcome.status is Status.OK
        assert outcome.metrics["used_percent"] == 10
        assert outcome.metrics["available_bytes"] == 226698456 * 1024
        assert outcome.summary.startswith("/ 10% used, 216.2 GiB free")

    def test_warning_from_busybox(self) -> None:
        outcome = DiskUsage({"path": "/"}).evaluate(result(DF_BUSYBOX))
        assert outcome.status is Status.WARNING
        assert outcome.metrics["used_percent"] == 85

    def test_failed_at_critical(self) -> None:
        outcome = DiskUsage({"path": "/srv/small", "warn": 50, "critical": "95%"}).evaluate(result(DF_FULL))
        assert outcome.status is Status.FAILED
        assert "97% used" in outcome.summary
        assert "critical 95%" in outcome.summary

    def test_mount_point_with_space_parses_from_the_right(self) -> None:
        outcome = DiskUsage({"path": "/var/lib/with space"}).evaluate(result(DF_LONG_NAME))
        assert outcome.metrics["used_percent"] == 87
        assert outcome.status is Status.WARNING

    def test_missing_path_is_error(self) -> None:
        outcome = DiskUsage({"path": "/nope"}).evaluate(
            result("", 1, "df: /nope: No such file or directory\n")
        )
        assert outcome.status is Status.ERROR
        assert "No such file" in outcome.summary

    def test_df_not_installed_is_error(self) -> None:
        outcome = DiskUsage({}).evaluate(result("", 127, "sh: 1: df: not found"))
        assert outcome.status is Status.ERROR
        assert "not found on the host" in outcome.summary

    def test_garbage_is_error(self) -> None:
        outcome = DiskUsage({}).evaluate(result("hello\nworld\n"))
        assert outcome.status is Status.ERROR

    def test_command_quotes_the_path(self) -> None:
        assert DiskUsage({"path": "/a b;rm -rf /"}).command() == "df -P -k -- '/a b;rm -rf /'"

    def test_bad_threshold(self) -> None:
        with pytest.raises(ParamError, match="percentage"):
            DiskUsage({"warn": 180})


class TestCommand:
    def test_ok_summary_is_first_line(self) -> None:
        outcome = CommandCheck({"command": "uname -r"}).evaluate(result("6.1.0-18-amd64\n"))
        assert outcome.status is Status.OK
        assert outcome.summary == "6.1.0-18-amd64"

    def test_unexpected_exit(self) -> None:
        outcome = CommandCheck({"command": "false"}).evaluate(result("", 1, "boom\n"))
        assert outcome.status is Status.FAILED
        assert outcome.summary == "exit 1, expected 0: boom"

    def test_expect_rc_list(self) -> None:
        check = CommandCheck({"command": "grep x f", "expect_rc": [0, 1]})
        assert check.evaluate(result("", 1)).status is Status.OK
        assert check.evaluate(result("", 2)).status is Status.FAILED

    def test_command_not_found(self) -> None:
        outcome = CommandCheck({"command": "nosuch"}).evaluate(result("", 127, "sh: 1: nosuch: not found"))
        assert outcome.status is Status.FAILED
        assert "command not found" in outcome.summary

    def test_expect_stdout(self) -> None:
        check = CommandCheck({"command": "uname -r", "expect_stdout": r"^\d+\."})
        assert check.evaluate(result("6.1.0\n")).status is Status.OK
        failed = check.evaluate(result("weird\n"))
        assert failed.status is Status.FAILED
        assert "does not match" in failed.summary

    def test_fail_stdout(self) -> None:
        check = CommandCheck({"command": "systemctl --failed", "fail_stdout": r"\bfailed\b"})
        outcome = check.evaluate(result("nginx.service loaded failed failed\n"))
        assert outcome.status is Status.FAILED

    def test_warn_stdout(self) -> None:
        check = CommandCheck({"command": "x", "warn_stdout": "HIGH"})
        assert check.evaluate(result("load 9 HIGH\n")).status is Status.WARNING
        assert check.evaluate(result("load 0.1\n")).status is Status.OK

    def test_bad_regex_is_param_error(self) -> None:
        with pytest.raises(ParamError, match="invalid regular expression"):
            CommandCheck({"command": "x", "expect_stdout": "("})

    def test_unknown_param(self) -> None:
        with pytest.raises(ParamError, match="unknown parameter 'expect'"):
            CommandCheck({"command": "x", "expect": 1})

    def test_missing_command(self) -> None:
        with pytest.raises(ParamError, match="needs parameter 'command'"):
            CommandCheck({})


class TestFileAge:
    check = FileAge({"path": "/var/backups/stamp", "max_age": "1d", "warn_age": "12h"})

    def test_ok(self) -> None:
        outcome = self.check.evaluate(result("1700000000\n1700003600\n"))
        assert outcome.status is Status.OK
        assert outcome.metrics["age_seconds"] == 3600
        assert outcome.summary == "/var/backups/stamp modified 60m ago (max 24h)"

    def test_warning(self) -> None:
        outcome = self.check.evaluate(result("1700000000\n1700050000\n"))
        assert outcome.status is Status.WARNING

    def test_failed(self) -> None:
        outcome = self.check.evaluate(result("1700000000\n1700200000\n"))
        assert outcome.status is Status.FAILED
        assert "2d ago" in outcome.summary

    def test_missing(self) -> None:
        outcome = self.check.evaluate(result("MAINT-FILE-MISSING\n1700200000\n"))
        assert outcome.status is Status.FAILED
        assert "does not exist" in outcome.summary

    def test_missing_as_warning(self) -> None:
        check = FileAge({"path": "/x", "max_age": 60, "missing": "warning"})
        assert check.evaluate(result("MAINT-FILE-MISSING\n1\n")).status is Status.WARNING

    def test_stat_error(self) -> None:
        outcome = self.check.evaluate(result("", 1, "stat: cannot statx '/x': Permission denied\n"))
        assert outcome.status is Status.ERROR
        assert "Permission denied" in outcome.summary

    def test_future_mtime_counts_as_zero(self) -> None:
        assert self.check.evaluate(result("1700000100\n1700000000\n")).metrics["age_seconds"] == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("90", 90), ("15m", 900), ("36h", 129600), ("2d", 172800), ("1w", 604800), ("1.5h", 5400)],
)
def test_duration(text: object, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "1y", "", "-5m"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration(text)


def test_percent() -> None:
    assert percent("85%") == 85
    with pytest.raises(ValueError, match="0 to 100"):
        percent(-1)
