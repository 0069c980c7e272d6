"""``av.clamav`` from recorded output: clamscan 1.4.6 on Debian 12, and clamdscan's documented format.

Every recording is the whole stdout of ClamAV.command(): the host's clock, the signature files'
mtimes and the scan (clean files' lines already dropped on the host), each after its marker.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from maint.checks import SECTION as S
from maint.checks import ParamError, Status
from maint.checks.antivirus import ClamAV, path_list
from maint.executors import CommandResult

NOW = 1795466637
DAY = 86400


def result(stdout: str, exit_code: int | None = 0, stderr: str = "") -> CommandResult:
    return CommandResult("cmd", exit_code, stdout, stderr, 0.05)


def recorded(scan: str, exit_code: int, db: str = f"{NOW - 3600} /srv/clamav-db/lab.hsb\n") -> str:
    return f"{S} now\n{NOW}\n{S} db\n{db}{S} scan\n{scan}MAINT-AV-EXIT {exit_code}\n"


def summary(scanned: int, infected: int, known: int = 1, errors: int = 0) -> str:
    lines = [
        "",
        "----------- SCAN SUMMARY -----------",
        f"Known viruses: {known}",
        "Engine version: 1.4.6",
        "Scanned directories: 1",
        f"Scanned files: {scanned}",
        f"Infected files: {infected}",
        *([f"Total errors: {errors}"] if errors else []),
        "Data scanned: 0.00 MB",
        "Data read: 0.00 MB (ratio 0.00:1)",
        "Time: 0.006 sec (0 m 0 s)",
        "Start Date: 2026:11:23 20:43:57",
        "End Date:   2026:11:23 20:43:57",
    ]
    return "\n".join(lines) + "\n"


CLEAN = recorded(summary(scanned=2, infected=0), 0)
ONE_INFECTED = recorded("/srv/scan/eicar.com: Eicar-Test-Signature.UNOFFICIAL FOUND\n" + summary(3, 1), 1)
SEVERAL_INFECTED = recorded(
    "/home/a/eicar.com: Eicar-Test-Signature.UNOFFICIAL FOUND\n"
    "/home/b/invoice.pdf.exe: Win.Trojan.Agent-1234 FOUND\n"
    "/home/c/x.zip: Eicar-Test-Signature.UNOFFICIAL FOUND\n"
    "/home/d/name: with colon.doc: Doc.Dropper.Agent-42 FOUND\n" + summary(250, 4, known=8700000),
    1,
)
NO_DATABASE = recorded(summary(0, 0, known=0), 2, db="")
NO_DATABASE_STDERR = (
    "LibClamAV Error: cli_loaddbdir: No supported database files found in /srv/clamav-db\n"
    "ERROR: Can't open file or directory\n"
)
ACCESS_DENIED = recorded("/srv/scan/secret: Access denied\n" + summary(1, 0, errors=1), 2)
NOT_FOUND = recorded("", 127)
CLAMDSCAN_INFECTED = recorded(
    "/srv/scan/eicar.com: Eicar-Test-Signature.UNOFFICIAL FOUND\n\n"
    "----------- SCAN SUMMARY -----------\n"
    "Infected files: 1\n"
    "Time: 0.004 sec (0 m 0 s)\n"
    "Start Date: 2026:11:23 20:43:57\n"
    "End Date:   2026:11:23 20:43:57\n",
    1,
    db=(
        f"{NOW - 2 * DAY} /var/lib/clamav/daily.cld\n"
        f"{NOW - 40 * DAY} /var/lib/clamav/main.cvd\n"
        f"{NOW} /var/lib/clamav/freshclam.dat\n"
    ),
)
CLAMDSCAN_NO_DAEMON = recorded(
    "\n----------- SCAN SUMMARY -----------\nInfected files: 0\nTotal errors: 1\nTime: 0.000 sec (0 m 0 s)\n", 2
)
CLAMDSCAN_NO_DAEMON_STDERR = (
    "ERROR: Could not connect to clamd on LocalSocket /run/clamav/clamd.ctl: No such file or directory\n"
)


def clamav(**values: object) -> ClamAV:
    return ClamAV({"paths": "/srv/scan", "database": "/srv/clamav-db", **values})


class TestOutcomes:
    def test_clean_is_ok_with_metrics(self) -> None:
        outcome = clamav().evaluate(result(CLEAN))
        assert outcome.status is Status.OK
        assert outcome.summary == "no infected files in /srv/scan (2 files scanned, signatures 60m old)"
        assert outcome.metrics == {
            "infected_files": 0,
            "scanned_files": 2,
            "db_age_seconds": 3600,
            "known_signatures": 1,
        }

    def test_one_infected_file_fails_naming_file_and_signature(self) -> None:
        outcome = clamav().evaluate(result(ONE_INFECTED))
        assert outcome.status is Status.FAILED
        assert outcome.summary == (
            "1 infected file in /srv/scan: /srv/scan/eicar.com (Eicar-Test-Signature.UNOFFICIAL)"
        )
        assert outcome.metrics["infected_files"] == 1
        assert outcome.metrics["scanned_files"] == 3

    def test_several_infected_files_show_the_first_three(self) -> None:
        outcome = clamav(paths=["/home"]).evaluate(result(SEVERAL_INFECTED))
        assert outcome.status is Status.FAILED
        assert outcome.summary.startswith("4 infected files in /home: /home/a/eicar.com (Eicar-Test-Signature")
        assert "/home/b/invoice.pdf.exe (Win.Trojan.Agent-1234)" in outcome.summary
        assert outcome.summary.endswith("and 1 more")
        assert outcome.metrics["infected_files"] == 4
        assert outcome.metrics["known_signatures"] == 8700000

    def test_path_with_colon_keeps_its_name(self) -> None:
        outcome = clamav(paths="/home").evaluate(result(SEVERAL_INFECTED))
        assert "/home/c/x.zip (Eicar-Test-Signature.UNOFFICIAL)" in outcome.summary
        # Only three are shown; the fourth, with ": " in its name, is counted.
        assert outcome.metrics["infected_files"] == 4

    def test_infected_up_to_max_infected_is_a_warning(self) -> None:
        outcome = clamav(max_infected=1).evaluate(result(ONE_INFECTED))
        assert outcome.status is Status.WARNING
        assert clamav(max_infected=3).evaluate(result(SEVERAL_INFECTED)).status is Status.FAILED

    def test_old_database_is_a_warning(self) -> None:
        old = recorded(summary(2, 0), 0, db=f"{NOW - 9 * DAY} /srv/clamav-db/lab.hsb\n")
        outcome = clamav().evaluate(result(old))
        assert outcome.status is Status.WARNING
        assert outcome.summary.endswith("; signature database 9d old (max 7d)")
        assert outcome.metrics["db_age_seconds"] == 9 * DAY

    def test_max_db_age_is_configurable(self) -> None:
        old = recorded(summary(2, 0), 0, db=f"{NOW - 9 * DAY} /srv/clamav-db/lab.hsb\n")
        assert clamav(max_db_age="10d").evaluate(result(old)).status is Status.OK
        assert clamav(max_db_age="1h").evaluate(result(CLEAN)).status is Status.OK
        assert clamav(max_db_age="30m").evaluate(result(CLEAN)).status is Status.WARNING

    def test_newest_signature_file_counts_and_freshclam_state_does_not(self) -> None:
        outcome = clamav(clamd_socket="/run/clamav/clamd.ctl", database=None).evaluate(result(CLAMDSCAN_INFECTED))
        assert outcome.metrics["db_age_seconds"] == 2 * DAY

    def test_old_database_is_noted_on_a_failure_too(self) -> None:
        old = ONE_INFECTED.replace(f"{NOW - 3600} ", f"{NOW - 30 * DAY} ")
        outcome = clamav().evaluate(result(old))
        assert outcome.status is Status.FAILED
        assert outcome.summary.endswith("signature database 30d old (max 7d)")

    def test_unknown_database_age_is_a_warning(self) -> None:
        outcome = clamav(database=None).evaluate(result(recorded(summary(2, 0), 0, db="")))
        assert outcome.status is Status.WARNING
        assert "cannot tell the signature database's age: no files in /var/lib/clamav" in outcome.summary
        assert "db_age_seconds" not in outcome.metrics

    def test_no_database_is_an_error_with_the_reason(self) -> None:
        outcome = clamav().evaluate(result(NO_DATABASE, stderr=NO_DATABASE_STDERR))
        assert outcome.status is Status.ERROR
        assert outcome.summary == (
            "clamscan cannot load the signature database /srv/clamav-db: "
            "LibClamAV Error: cli_loaddbdir: No supported database files found in /srv/clamav-db"
        )

    def test_default_database_missing_says_so(self) -> None:
        stderr = "LibClamAV Error: cli_loaddbdir: No supported database files found in /var/lib/clamav\n"
        outcome = clamav(database="").evaluate(result(NO_DATABASE, stderr=stderr))
        assert outcome.status is Status.ERROR
        assert "signature database (clamscan's default)" in outcome.summary

    def test_unreadable_file_is_an_error_naming_it(self) -> None:
        outcome = clamav().evaluate(result(ACCESS_DENIED))
        assert outcome.status is Status.ERROR
        assert (
            outcome.summary == "clamscan could not scan everything (exit 2): 1 error: /srv/scan/secret: Access denied"
        )

    def test_missing_path_is_an_error(self) -> None:
        scan = "/nope: No such file or directory\n" + summary(0, 0)
        stderr = "WARNING: /nope: Can't access file\n"
        outcome = clamav(paths="/nope").evaluate(result(recorded(scan, 2), stderr=stderr))
        assert outcome.status is Status.ERROR
        assert outcome.summary.endswith("(exit 2): /nope: No such file or directory")

    def test_infected_with_errors_is_still_failed(self) -> None:
        scan = "/srv/scan/eicar.com: Eicar-Test-Signature.UNOFFICIAL FOUND\n/srv/scan/x: Access denied\n"
        outcome = clamav().evaluate(result(recorded(scan + summary(2, 1, errors=1), 1)))
        assert outcome.status is Status.FAILED
        assert outcome.summary.endswith("; also 1 error: /srv/scan/x: Access denied")

    def test_clamscan_not_installed(self) -> None:
        outcome = clamav().evaluate(result(NOT_FOUND, stderr="sh: 1: clamscan: not found\n"))
        assert outcome.status is Status.ERROR
        assert outcome.summary == "clamscan not found on the host: sh: 1: clamscan: not found"

    def test_no_exit_marker_is_an_error(self) -> None:
        outcome = clamav().evaluate(result(f"{S} now\n1\n{S} db\n{S} scan\n", stderr="Killed\n"))
        assert outcome.status is Status.ERROR
        assert outcome.summary == "clamscan did not finish: Killed"

    def test_exit_1_without_a_found_line_is_an_error(self) -> None:
        outcome = clamav().evaluate(result(recorded(summary(2, 0), 1)))
        assert outcome.status is Status.ERROR

    def test_old_database_warning_on_stderr_is_not_an_error(self) -> None:
        stderr = "LibClamAV Warning: ***  The virus database is older than 7 days!  ***\n"
        outcome = clamav().evaluate(result(ONE_INFECTED, stderr=stderr))
        assert "also" not in outcome.summary


class TestClamdscan:
    def test_infected_through_clamd(self) -> None:
        outcome = clamav(clamd_socket="/run/clamav/clamd.ctl").evaluate(result(CLAMDSCAN_INFECTED))
        assert outcome.status is Status.FAILED
        assert "/srv/scan/eicar.com (Eicar-Test-Signature.UNOFFICIAL)" in outcome.summary
        assert "scanned_files" not in outcome.metrics  # clamdscan does not count them

    def test_clamd_not_running_is_an_error(self) -> None:
        step = clamav(clamd_socket="/run/clamav/clamd.ctl")
        outcome = step.evaluate(result(CLAMDSCAN_NO_DAEMON, stderr=CLAMDSCAN_NO_DAEMON_STDERR))
        assert outcome.status is Status.ERROR
        assert outcome.summary.startswith("clamdscan cannot reach clamd at /run/clamav/clamd.ctl: ERROR: Could not")

    def test_clamdscan_not_installed(self) -> None:
        step = clamav(clamd_socket="/run/clamav/clamd.ctl")
        outcome = step.evaluate(result(NOT_FOUND, stderr="sh: 1: clamdscan: not found\n"))
        assert outcome.summary == "clamdscan not found on the host: sh: 1: clamdscan: not found"

    def test_unix_socket_command(self) -> None:
        command = clamav(clamd_socket="/run/clamav/clamd.ctl").command()
        assert "printf '%s\\n' 'LocalSocket /run/clamav/clamd.ctl' > \"$conf\"" in command
        assert 'clamdscan --config-file="$conf" --fdpass -- /srv/scan;' in command
        assert "clamscan " not in command

    def test_tcp_socket_command_streams(self) -> None:
        command = clamav(clamd_socket="10.0.0.5:3310").command()
        assert "'TCPSocket 3310' 'TCPAddr 10.0.0.5'" in command
        assert "--stream" in command

    def test_exclude_is_refused_with_clamd(self) -> None:
        with pytest.raises(ParamError, match="ExcludePath"):
            clamav(clamd_socket="/run/clamav/clamd.ctl", exclude=r"\.iso$")


class TestCommand:
    def test_values_are_shell_quoted(self) -> None:
        command = clamav(
            paths=["/srv/a b", "-rf;reboot"], database="/db dir", exclude=[r"\.iso$"], exclude_dir="^/proc"
        ).command()
        assert (
            "clamscan -r -d '/db dir' '--exclude=\\.iso$' '--exclude-dir=^/proc' -- '/srv/a b' '-rf;reboot';" in command
        )
        assert "if [ -d '/db dir' ]; then for f in '/db dir'/*;" in command
        shlex.split(command)  # balanced quotes

    def test_no_database_means_no_d_option(self) -> None:
        command = clamav(database="").command()
        assert "clamscan -r -- /srv/scan;" in command
        assert "for f in /var/lib/clamav/*;" in command

    def test_clean_file_lines_are_dropped_on_the_host(self) -> None:
        command = clamav().command()
        assert command.endswith(
            "| LC_ALL=C sed -e '/: OK$/d' -e '/: Empty file$/d' -e '/: Symbolic link$/d' -e '/: Excluded$/d'"
        )

    def test_command_is_valid_sh_and_reports_a_missing_clamscan(self, tmp_path: Path) -> None:
        # A PATH with the helpers the command uses, but no clamscan: the marker still comes, with 127.
        for tool in ("date", "stat", "sed"):
            (tmp_path / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
        (tmp_path / "db").mkdir()
        (tmp_path / "db" / "x.hsb").write_text("")
        step = clamav(database=str(tmp_path / "db"))
        done = subprocess.run(
            ["/bin/sh", "-c", step.command()], capture_output=True, text=True, env={"PATH": str(tmp_path)}, check=False
        )
        outcome = step.evaluate(result(done.stdout, done.returncode, done.stderr))
        assert outcome.status is Status.ERROR
        assert outcome.summary.startswith("clamscan not found on the host: ")


class TestParams:
    @pytest.mark.parametrize(
        ("value", "paths"),
        [
            ("/home", ("/home",)),
            ("/home /srv", ("/home", "/srv")),
            ("/home,/srv", ("/home", "/srv")),
            ("/home:/srv, /opt", ("/home", "/srv", "/opt")),
            (["/a b", "/c"], ("/a b", "/c")),
            ("['/home', '/srv']", ("/home", "/srv")),
        ],
    )
    def test_paths(self, value: object, paths: tuple[str, ...]) -> None:
        assert path_list(value) == paths

    @pytest.mark.parametrize("value", ["", "  ", [], ","])
    def test_no_path_is_a_param_error(self, value: object) -> None:
        with pytest.raises(ParamError, match="paths"):
            ClamAV({"paths": value})

    def test_paths_required(self) -> None:
        with pytest.raises(ParamError, match="needs parameter 'paths'"):
            ClamAV({})

    def test_bad_max_infected(self) -> None:
        with pytest.raises(ParamError, match="max_infected"):
            ClamAV({"paths": "/", "max_infected": -1})

    def test_bad_max_db_age(self) -> None:
        with pytest.raises(ParamError, match="max_db_age"):
            ClamAV({"paths": "/", "max_db_age": "a week"})

    def test_defaults(self) -> None:
        values = ClamAV({"paths": "/home"}).values
        assert values["database"] is None
        assert values["max_infected"] == 0
        assert values["max_db_age"] == 7 * DAY
        assert values["exclude"] == ()
        assert values["clamd_socket"] is None
