"""disk.inodes, mem.available, reboot.required, time.sync, service.active, process.running, cert.expiry,
log.size and log.cleanup from recorded command output: every outcome each can produce."""

from __future__ import annotations

import pytest

from maint.checks import ParamError, Status
from maint.checks.cert import CertExpiry
from maint.checks.disk import DiskInodes
from maint.checks.files import LogCleanup, LogSize, size
from maint.checks.host import MemAvailable, RebootRequired, TimeSync
from maint.checks.services import ProcessRunning, ServiceActive
from maint.executors import CommandResult

S = "@@maint-section@@"


def result(stdout: str = "", exit_code: int | None = 0, stderr: str = "") -> CommandResult:
    return CommandResult("cmd", exit_code, stdout, stderr, 0.01)


class TestDiskInodes:
    def test_ok_warning_failed(self) -> None:
        line = "Filesystem Inodes IUsed IFree IUse% Mounted on\n/dev/vda 16384000 {used} 100 {pct}% /\n"
        assert DiskInodes({}).evaluate(result(line.format(used=1000, pct=10))).status is Status.OK
        assert DiskInodes({}).evaluate(result(line.format(used=1000, pct=85))).status is Status.WARNING
        failed = DiskInodes({}).evaluate(result(line.format(used=1000, pct=97)))
        assert failed.status is Status.FAILED
        assert failed.metrics["inodes_used_percent"] == 97

    def test_filesystem_without_inodes_is_error(self) -> None:
        btrfs = "Filesystem Inodes IUsed IFree IUse% Mounted on\n/dev/sda2 0 0 0 - /\n"
        assert DiskInodes({}).evaluate(result(btrfs)).status is Status.ERROR

    def test_missing_path(self) -> None:
        outcome = DiskInodes({"path": "/x"}).evaluate(result("", 1, "df: /x: No such file or directory"))
        assert outcome.status is Status.ERROR


MEMINFO = "MemTotal:       {total} kB\nMemFree:          100000 kB\nMemAvailable:   {available} kB\n"


class TestMemAvailable:
    @pytest.mark.parametrize(("available", "status"), [(8_000_000, Status.OK), (1_500_000, Status.WARNING),
                                                       (500_000, Status.FAILED)])  # fmt: skip
    def test_thresholds(self, available: int, status: Status) -> None:
        outcome = MemAvailable({}).evaluate(result(MEMINFO.format(total=10_000_000, available=available)))
        assert outcome.status is status
        assert outcome.metrics["available_bytes"] == available * 1024

    def test_old_kernel_without_memavailable(self) -> None:
        outcome = MemAvailable({}).evaluate(result("MemTotal: 100 kB\nMemFree: 50 kB\n"))
        assert outcome.status is Status.ERROR


class TestRebootRequired:
    def test_none(self) -> None:
        outcome = RebootRequired({}).evaluate(result(f"{S} flag\nnone\n{S} packages\n{S} uptime\n12345.6 100.0\n"))
        assert outcome.status is Status.OK
        assert outcome.metrics == {"uptime_seconds": 12345.6, "reboot_required": 0.0}

    def test_pending_names_packages(self) -> None:
        text = f"{S} flag\npending\n{S} packages\nlinux-image-6.1.0-18-amd64\nlibc6\nlibc6\n{S} uptime\n5 1\n"
        outcome = RebootRequired({"status": "failed"}).evaluate(result(text))
        assert outcome.status is Status.FAILED
        assert outcome.summary == "reboot pending (asked by libc6, linux-image-6.1.0-18-amd64)"

    def test_broken_output(self) -> None:
        assert RebootRequired({}).evaluate(result("", 1, "sh: boom")).status is Status.ERROR


CHRONY = """Reference ID    : C0A80001 (192.168.0.1)
Stratum         : 3
System time     : {offset} seconds {side} of NTP time
Leap status     : {leap}
"""


class TestTimeSync:
    def test_chrony_ok_and_offset(self) -> None:
        synced = CHRONY.format(offset="0.000012", side="fast", leap="Normal")
        ok = TimeSync({}).evaluate(result(f"{S} chrony\n" + synced))
        assert ok.status is Status.OK
        off = TimeSync({}).evaluate(result(f"{S} chrony\n" + CHRONY.format(offset="2.5", side="slow", leap="Normal")))
        assert off.status is Status.FAILED
        assert off.metrics["offset_seconds"] == 2.5

    def test_chrony_unsynchronised(self) -> None:
        text = f"{S} chrony\n" + CHRONY.format(offset="0", side="fast", leap="Not synchronised")
        assert TimeSync({}).evaluate(result(text)).status is Status.FAILED

    def test_timedatectl(self) -> None:
        assert TimeSync({}).evaluate(result(f"{S} timedatectl\nNTP=yes\nNTPSynchronized=yes\n")).status is Status.OK
        no = TimeSync({}).evaluate(result(f"{S} timedatectl\nNTP=no\nNTPSynchronized=no\n"))
        assert no.status is Status.FAILED
        assert "NTP service off" in no.summary

    def test_nothing_installed(self) -> None:
        assert TimeSync({}).evaluate(result(f"{S} none\n")).status is Status.ERROR


class TestServiceActive:
    def test_states(self) -> None:
        check = ServiceActive({"name": "nginx"})
        ok = check.evaluate(result(f"{S} state\nactive\n{S} since\nMon 2026-11-23 10:00:00 UTC\n"))
        assert ok.status is Status.OK
        assert "since Mon" in ok.summary
        assert check.evaluate(result(f"{S} state\nactivating\n{S} since\n\n", 3)).status is Status.WARNING
        failed = check.evaluate(result(f"{S} state\nfailed\n{S} since\n\n", 3))
        assert (failed.status, failed.summary) == (Status.FAILED, "nginx is failed")

    def test_no_systemd_points_to_process_running(self) -> None:
        outcome = ServiceActive({"name": "nginx"}).evaluate(result(f"{S} no-systemd\n"))
        assert outcome.status is Status.ERROR
        assert "process.running" in outcome.summary


class TestProcessRunning:
    def test_by_name(self) -> None:
        check = ProcessRunning({"name": "sshd"})
        assert "pgrep -x -- sshd" in check.command()
        assert check.evaluate(result(f"{S} pids\n101\n202\n")).status is Status.OK
        none = check.evaluate(result(f"{S} pids\n"))
        assert (none.status, none.summary) == (Status.FAILED, "0 sshd processes running (need 1)")

    def test_min(self) -> None:
        check = ProcessRunning({"pattern": "worker --queue", "min": 3})
        assert check.evaluate(result(f"{S} pids\n1\n2\n")).status is Status.FAILED

    def test_pidfile(self) -> None:
        check = ProcessRunning({"pidfile": "/run/app.pid"})
        assert check.evaluate(result(f"{S} pid\n4242\n{S} alive\nsshd\n")).status is Status.OK
        dead = check.evaluate(result(f"{S} pid\n4242\n{S} alive\nno\n"))
        assert dead.status is Status.FAILED
        assert "4242" in dead.summary
        missing = check.evaluate(result(f"{S} missing\n"))
        assert "missing" in missing.summary

    def test_needs_exactly_one_selector(self) -> None:
        check = ProcessRunning({"name": "a", "pidfile": "/b"})
        assert check.evaluate(result("", 64, "process.running needs exactly one of name, pattern, pidfile\n")).status \
            is Status.ERROR
        assert "exit 64" in check.command()


def cert_output(not_after: str, now: int, rc: int = 0) -> str:
    return f"{S} cert\nnotAfter={not_after}\nsubject=CN = lab1\n{S} rc\n{rc}\n{S} now\n{now}\n"


class TestCertExpiry:
    NOW = 1_800_000_000  # 2027-01-15T08:00:00Z

    def test_days_left(self) -> None:
        check = CertExpiry({"path": "/etc/ssl/a.pem"})
        ok = check.evaluate(result(cert_output("Jan 15 08:00:00 2028 GMT", self.NOW)))
        assert ok.status is Status.OK
        assert ok.metrics["days_left"] == 365
        warning = check.evaluate(result(cert_output("Feb  4 08:00:00 2027 GMT", self.NOW)))
        assert warning.status is Status.WARNING
        failed = check.evaluate(result(cert_output("Jan 18 08:00:00 2027 GMT", self.NOW)))
        assert failed.status is Status.FAILED
        expired = check.evaluate(result(cert_output("Jan  5 08:00:00 2027 GMT", self.NOW)))
        assert expired.status is Status.FAILED
        assert "expired 10 days ago" in expired.summary

    def test_unreadable(self) -> None:
        text = f"{S} cert\n{S} rc\n1\n{S} now\n{self.NOW}\n"
        outcome = CertExpiry({"path": "/x.pem"}).evaluate(result(text, 0, "Could not open file or uri for loading"))
        assert outcome.status is Status.ERROR
        assert "Could not open" in outcome.summary

    def test_needs_exactly_one_of_path_and_address(self) -> None:
        assert "exit 64" in CertExpiry({}).command()
        live = CertExpiry({"address": "127.0.0.1:8443"}).command()
        assert "s_client -connect 127.0.0.1:8443 -servername 127.0.0.1" in live


class TestLogs:
    def test_size_parser(self) -> None:
        assert size("500M") == 500 * 1024**2
        assert size("2GiB") == 2 * 1024**3
        assert size(10) == 10
        with pytest.raises(ValueError, match="size"):
            size("lots")

    def test_log_size(self) -> None:
        check = LogSize({"path": "/var/log", "max_size": "1M", "warn_size": "512K"})
        assert check.evaluate(result("1000\t/var/log\n")).status is Status.OK
        assert check.evaluate(result("600000\t/var/log\n")).status is Status.WARNING
        failed = check.evaluate(result("2000000\t/var/log\n"))
        assert failed.status is Status.FAILED
        assert failed.metrics["size_bytes"] == 2000000
        assert check.evaluate(result("", 1, "du: cannot access '/var/log': No such file")).status is Status.ERROR

    def test_log_size_needs_max(self) -> None:
        with pytest.raises(ParamError, match="max_size"):
            LogSize({"path": "/x"})

    def test_cleanup(self) -> None:
        check = LogCleanup({"path": "/var/log/app", "older_than": "2d"})
        assert check.changes_host
        assert "-mmin +2880" in check.command()
        outcome = check.evaluate(result("100 /var/log/app/a.1.gz\n300 /var/log/app/b.2.gz\n"))
        assert outcome.summary == "removed 2 files, 400 B freed under /var/log/app"
        assert outcome.metrics == {"files_removed": 2.0, "bytes_freed": 400.0}
