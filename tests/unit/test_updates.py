"""Update step types from recorded output (tests/data/updates): every outcome of each type.

``apt-lab-*`` and ``apply-lab*`` were recorded on the lab (apt 2.6.1, Debian 12) with the lab's
directory renamed to /srv/lab; the others follow the tools' documented formats (Debian 12 and
Ubuntu 22.04 apt, dnf4 on RHEL 9, dnf5 on Fedora 41, zypper on SLES 15 SP6, apk-tools 2.14).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from maint.checks import ParamError, Status
from maint.checks.updates import (
    ApkUpdates,
    ApplyUpdates,
    AptUpdates,
    DnfUpdates,
    ZypperUpdates,
    apt_options,
    parse_simulation,
    state_dir_options,
)
from maint.executors import CommandResult

DATA = Path(__file__).resolve().parent.parent / "data" / "updates"


def recorded(name: str, exit_code: int | None = 0) -> CommandResult:
    stderr_file = (DATA / name).with_suffix(".stderr")
    stderr = stderr_file.read_text() if stderr_file.exists() else ""
    return CommandResult("cmd", exit_code, (DATA / name).read_text(), stderr, 0.5)


def result(stdout: str = "", exit_code: int | None = 0, stderr: str = "") -> CommandResult:
    return CommandResult("cmd", exit_code, stdout, stderr, 0.01)


class TestAptUpdates:
    def test_healthy_lab_host_is_ok(self) -> None:
        outcome = AptUpdates({}).evaluate(recorded("apt-lab-healthy.txt"))
        assert outcome.status is Status.OK
        assert outcome.summary == "no updates pending"
        assert outcome.metrics == {"pending": 0, "security": 0, "held": 0, "kept_back": 0}

    def test_security_update_fails(self) -> None:
        outcome = AptUpdates({}).evaluate(recorded("apt-lab-pending.txt"))
        assert outcome.status is Status.FAILED
        assert outcome.metrics["pending"] == 2
        assert outcome.metrics["security"] == 1
        assert outcome.summary.startswith("2 updates pending (1 security): maint-lab-secure 1.0 -> 1.1")

    def test_debian_security_and_held(self) -> None:
        outcome = AptUpdates({}).evaluate(recorded("apt-debian12-security-held.txt"))
        assert outcome.status is Status.FAILED
        assert outcome.metrics == {"pending": 5, "security": 2, "held": 1, "kept_back": 1}
        assert "held: postgresql-15" in outcome.summary
        assert "kept back: linux-image-amd64" in outcome.summary
        assert "libssl3 3.0.15-1~deb12u1 -> 3.0.16-1~deb12u1" in outcome.summary

    def test_ubuntu_security_pocket_counts(self) -> None:
        outcome = AptUpdates({"security_critical": 5}).evaluate(recorded("apt-ubuntu2204-updates.txt"))
        assert outcome.metrics["security"] == 2
        assert outcome.metrics["pending"] == 3
        assert outcome.status is Status.WARNING

    def test_pending_thresholds(self) -> None:
        check = AptUpdates({"warn": 10, "critical": 3, "security_critical": ""})
        assert check.evaluate(recorded("apt-debian12-security-held.txt")).status is Status.FAILED
        quiet = AptUpdates({"warn": 10, "security_warn": 2, "security_critical": ""})
        assert quiet.evaluate(recorded("apt-debian12-security-held.txt")).status is Status.WARNING

    def test_update_failure_names_apt_get_update(self) -> None:
        outcome = AptUpdates({"update_lists": True}).evaluate(recorded("apt-update-failed.txt", 100))
        assert outcome.status is Status.ERROR
        assert outcome.summary.startswith("apt-get update failed (exit 100): E: Could not get lock")

    def test_apt_missing(self) -> None:
        outcome = AptUpdates({}).evaluate(result("", 127, "apt-get: command not found"))
        assert outcome.status is Status.ERROR
        assert "not found on the host" in outcome.summary

    def test_missing_apt_conf_in_state_dir(self) -> None:
        outcome = AptUpdates({"state_dir": "/srv/x"}).evaluate(
            result("", 2, "/srv/x/apt.conf: no such file (state_dir needs its apt.conf)")
        )
        assert outcome.status is Status.ERROR
        assert "state_dir needs its apt.conf" in outcome.summary

    def test_garbage_is_error(self) -> None:
        assert AptUpdates({}).evaluate(result("hello\n")).status is Status.ERROR

    def test_command_without_state_dir_uses_the_system_apt(self) -> None:
        command = AptUpdates({}).command()
        assert "APT_CONFIG" not in command
        assert "Dir::" not in command
        assert "apt-get -s -o Debug::NoLocking=1 upgrade" in command
        assert "update" not in command.replace("upgrade", "")
        assert "dist-upgrade" in AptUpdates({"dist_upgrade": "true"}).command()

    def test_command_with_state_dir_isolates_apt(self) -> None:
        command = AptUpdates({"state_dir": "/srv/lab 1/apt", "update_lists": True}).command()
        assert "APT_CONFIG='/srv/lab 1/apt/apt.conf'" in command
        assert "-o 'Dir::State::status=/srv/lab 1/apt/dpkg/status'" in command
        assert "apt-get -q update" in command
        for option in state_dir_options("/s"):
            assert option.split("=")[0] in command

    def test_command_runs_under_sh(self) -> None:
        for check in (AptUpdates({"state_dir": "/s", "apt_options": {"Acquire::Retries": 3}}), ApplyUpdates({})):
            subprocess.run(["/bin/sh", "-n", "-c", check.command()], check=True)

    def test_apt_options_forms(self) -> None:
        assert apt_options({"Dir::Cache": "/c"}) == ("Dir::Cache=/c",)
        assert apt_options(["-o Dir::Cache=/c", "APT::Get::List-Cleanup=0"]) == (
            "Dir::Cache=/c",
            "APT::Get::List-Cleanup=0",
        )
        assert apt_options("-o A::B=1 -o C=2") == ("A::B=1", "C=2")
        with pytest.raises(ParamError, match="apt options"):
            AptUpdates({"apt_options": ["; rm -rf /"]})

    def test_bad_flag(self) -> None:
        with pytest.raises(ParamError, match="true or false"):
            AptUpdates({"update_lists": "maybe"})


def test_parse_simulation_new_dependency_has_no_old_version() -> None:
    upgrades = parse_simulation(
        "Inst linux-image-6.1.0-31-amd64 (6.1.128-1 Debian-Security:12/stable-security [amd64])\n"
    )
    assert upgrades[0].old is None
    assert upgrades[0].security
    assert upgrades[0].describe() == "linux-image-6.1.0-31-amd64 (new) 6.1.128-1"


class TestApplyUpdates:
    def test_is_a_task(self) -> None:
        assert ApplyUpdates.changes_host
        assert not AptUpdates.changes_host

    def test_applied(self) -> None:
        outcome = ApplyUpdates({}).evaluate(recorded("apply-lab.txt"))
        assert outcome.status is Status.OK
        assert outcome.metrics == {"upgraded": 2, "security": 1, "remaining": 0, "reboot_required": 1}
        assert outcome.summary == (
            "upgraded 2 packages: maint-lab-secure 1.0 -> 1.1, maint-lab-tool 1.0 -> 1.1; reboot required"
        )

    def test_dry_run(self) -> None:
        outcome = ApplyUpdates({"dry_run": True}).evaluate(recorded("apply-lab-dry-run.txt"))
        assert outcome.status is Status.OK
        assert outcome.metrics == {"upgraded": 0, "pending": 2, "reboot_required": 0}
        assert outcome.summary.startswith("dry run: would upgrade 2 packages (1 security)")

    def test_dry_run_command_does_not_upgrade(self) -> None:
        command = ApplyUpdates({"dry_run": True}).command()
        assert "-y" not in command
        assert "Debug::NoLocking=1" in command

    def test_security_only_keeps_only_security_in_the_plan(self) -> None:
        text = (DATA / "apply-lab.txt").read_text()
        outcome = ApplyUpdates({"security_only": True}).evaluate(result(text))
        assert outcome.metrics["upgraded"] == 1
        assert "maint-lab-tool" not in outcome.summary
        assert "install --only-upgrade $packages" in ApplyUpdates({"security_only": True}).command()

    def test_still_pending_after_upgrade_fails(self) -> None:
        text = (DATA / "apply-lab.txt").read_text()
        before_after, reboot = text.split("@@maint-section@@ reboot")
        plan = before_after.split("@@maint-section@@ after")[0]
        after = "@@maint-section@@ after\nInst maint-lab-tool [1.0] (1.1 maint lab:bookworm [all])\n"
        outcome = ApplyUpdates({}).evaluate(result(plan + after + "@@maint-section@@ reboot" + reboot))
        assert outcome.status is Status.FAILED
        assert outcome.metrics["remaining"] == 1
        assert "still pending: maint-lab-tool" in outcome.summary

    def test_dpkg_failure_names_the_upgrade(self) -> None:
        stdout = "@@maint-section@@ plan\nInst a [1] (2 x:y [all])\n@@maint-section@@ apply\n"
        outcome = ApplyUpdates({}).evaluate(
            result(stdout, 100, "E: Sub-process /usr/bin/dpkg returned an error code (1)")
        )
        assert outcome.status is Status.ERROR
        assert outcome.summary.startswith("apt-get upgrade failed (exit 100): E: Sub-process")

    def test_nothing_to_do(self) -> None:
        stdout = (
            "@@maint-section@@ plan\n0 upgraded\n@@maint-section@@ apply\n@@maint-section@@ after\n"
            "@@maint-section@@ reboot\nno\n"
        )
        outcome = ApplyUpdates({}).evaluate(result(stdout))
        assert outcome.status is Status.OK
        assert outcome.summary == "no updates pending"
        assert outcome.metrics["reboot_required"] == 0

    def test_state_dir_work_dirs_only_when_apt_writes(self) -> None:
        assert "mkdir -p /s/lists/partial" in ApplyUpdates({"state_dir": "/s"}).command()
        assert "mkdir" not in ApplyUpdates({"state_dir": "/s", "dry_run": True}).command()
        assert "mkdir" not in AptUpdates({"state_dir": "/s"}).command()
        assert "mkdir -p" in AptUpdates({"state_dir": "/s", "update_lists": True}).command()

    def test_reboot_file_param(self) -> None:
        assert "[ -e /srv/x/reboot ]" in ApplyUpdates({"reboot_required_file": "/srv/x/reboot"}).command()
        assert "[ -e /var/run/reboot-required ]" in ApplyUpdates({"reboot_required_file": ""}).command()


class TestDnfUpdates:
    def test_dnf4_pending_with_security(self) -> None:
        outcome = DnfUpdates({}).evaluate(recorded("dnf4-rhel9-pending.txt"))
        assert outcome.status is Status.FAILED
        assert outcome.metrics == {"pending": 6, "security": 4}
        assert "grub2-tools" not in outcome.summary

    def test_dnf5_pending_with_security(self) -> None:
        outcome = DnfUpdates({"security_critical": 3}).evaluate(recorded("dnf5-fedora41-pending.txt"))
        assert outcome.metrics == {"pending": 3, "security": 2}
        assert outcome.status is Status.WARNING
        assert outcome.summary == "3 updates pending (2 security): curl, libcurl, python3-pip"

    def test_none(self) -> None:
        outcome = DnfUpdates({}).evaluate(recorded("dnf4-none.txt"))
        assert outcome.status is Status.OK
        assert outcome.metrics == {"pending": 0, "security": 0}

    def test_check_update_error(self) -> None:
        outcome = DnfUpdates({}).evaluate(recorded("dnf-check-failed.txt"))
        assert outcome.status is Status.ERROR
        assert "exit 1" in outcome.summary
        assert "no cache for 'baseos'" in outcome.summary

    def test_dnf_missing(self) -> None:
        outcome = DnfUpdates({}).evaluate(result("", 127, "dnf: command not found"))
        assert outcome.status is Status.ERROR
        assert outcome.summary.startswith("dnf not found on the host")

    def test_refresh(self) -> None:
        assert "--cacheonly" in DnfUpdates({}).command()
        assert "--refresh" in DnfUpdates({"update_lists": True}).command()


class TestZypperUpdates:
    def test_pending_with_security_patch(self) -> None:
        outcome = ZypperUpdates({}).evaluate(recorded("zypper-sle15-pending.txt"))
        assert outcome.status is Status.FAILED
        assert outcome.metrics == {"pending": 3, "security": 1}
        assert "1 security patches" in outcome.summary

    def test_warning_without_security(self) -> None:
        outcome = ZypperUpdates({"security_critical": 2}).evaluate(recorded("zypper-sle15-pending.txt"))
        assert outcome.status is Status.WARNING

    def test_none(self) -> None:
        outcome = ZypperUpdates({}).evaluate(recorded("zypper-none.txt"))
        assert outcome.status is Status.OK
        assert outcome.summary == "no updates pending"

    def test_bad_xml(self) -> None:
        outcome = ZypperUpdates({}).evaluate(
            result("@@maint-section@@ packages\n<stream>\n@@maint-section@@ security\n")
        )
        assert outcome.status is Status.ERROR
        assert "cannot parse" in outcome.summary

    def test_zypper_missing(self) -> None:
        outcome = ZypperUpdates({}).evaluate(result("", 127, "zypper: command not found"))
        assert outcome.summary.startswith("zypper not found on the host")


class TestApkUpdates:
    def test_apk_list(self) -> None:
        outcome = ApkUpdates({"critical": 3}).evaluate(recorded("apk-list-u.txt"))
        assert outcome.status is Status.FAILED
        assert outcome.metrics == {"pending": 3}
        assert outcome.summary == "3 updates pending: busybox, libcrypto3, libssl3"

    def test_apk_version(self) -> None:
        outcome = ApkUpdates({}).evaluate(recorded("apk-version-l.txt"))
        assert outcome.status is Status.WARNING
        assert outcome.summary == "2 updates pending: busybox, libcrypto3"

    def test_none(self) -> None:
        outcome = ApkUpdates({}).evaluate(result(""))
        assert outcome.status is Status.OK

    def test_no_security_params(self) -> None:
        with pytest.raises(ParamError, match="unknown parameter 'security_critical'"):
            ApkUpdates({"security_critical": 1})

    def test_apk_error(self) -> None:
        outcome = ApkUpdates({"update_lists": True}).evaluate(
            result("", 1, "ERROR: unable to select packages: Permission denied")
        )
        assert outcome.status is Status.ERROR
        assert "Permission denied" in outcome.summary
