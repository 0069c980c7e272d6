"""Schedules and pings: cron and RRULE as systemd calendars and crontab lines, the unit files and
crontab an export writes, export errors, and the dead man's switch pings of a window.

Every calendar is checked against maint.windows' own openings; where ``systemd-analyze`` exists,
every OnCalendar expression is also checked by systemd itself (its normalized form and its next
elapses against maint.windows' next openings).
"""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maint.cli.schedule import schedule as schedule_command
from maint.notify.pings import PingResult, WindowPings, finish_event, ping
from maint.schedules import (
    Calendar,
    ScheduleError,
    Target,
    Unconvertible,
    calendars,
    cron_lines,
    crontab,
    on_calendars,
    run_request,
    systemd_units,
    window_lines,
)
from maint.windows import Ping, Window, next_openings

UTC = dt.UTC
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
TARGET = Target(Path("/srv/maint"), ("/opt/maint/bin/maint",), ("/srv/maint/inventory/prod.ini",))


def window(name: str = "nightly", **options: Any) -> Window:
    options.setdefault("duration", dt.timedelta(hours=2))
    if "cron" not in options and "rrule" not in options:
        options["cron"] = "0 2 * * 6"
    return Window(name=name, **options)


# cron expression -> OnCalendar lines (time zone UTC)
CRON_CASES = [
    ("0 2 * * 6", ["Sat *-*-* 02:00:00"]),
    ("30 22 * * 1-5", ["Mon..Fri *-*-* 22:30:00"]),
    ("*/15 * * * *", ["*-*-* *:00/15:00"]),
    ("5-50/15 */3 1-10 jan-mar/2 *", ["*-01,03-01..10 00/3:05/15:00"]),
    ("0 1 * * sat,sun", ["Sat,Sun *-*-* 01:00:00"]),
    ("0 1 * * 0", ["Sun *-*-* 01:00:00"]),
    ("0 1 * * 7", ["Sun *-*-* 01:00:00"]),
    ("0 1 * * 1,2,3,5", ["Mon..Wed,Fri *-*-* 01:00:00"]),
    ("0 4 1,15 * *", ["*-*-01,15 04:00:00"]),
    ("0 4 1-7 * *", ["*-*-01..07 04:00:00"]),
    ("0 8-18/2 * * *", ["*-*-* 08..18/2:00:00"]),
    ("0 0 */2 * *", ["*-*-01/2 00:00:00"]),
    ("0 3 1 */3 *", ["*-01/3-01 03:00:00"]),
    # Both restricted: cron matches either the day of the month or the weekday.
    ("0 4 1,15 * 1", ["*-*-01,15 04:00:00", "Mon *-*-* 04:00:00"]),
    ("0 4 */2 * 1", ["*-*-01/2 04:00:00", "Mon *-*-* 04:00:00"]),
    ("0 22 * * 2#2", ["Tue *-*-08..14 22:00:00"]),
    ("0 22 * * 2#2,4#1", ["Thu *-*-01..07 22:00:00", "Tue *-*-08..14 22:00:00"]),
    ("0 22 * * L5", ["Fri *-*~01..07 22:00:00"]),
    ("0 23 L * *", ["*-*~01 23:00:00"]),
    ("0 23 1,L * *", ["*-*-01 23:00:00", "*-*~01 23:00:00"]),
    ("0 23 3-L * *", ["*-*-03..31 23:00:00"]),
    ("0 23 L * 1", ["*-*~01 23:00:00", "Mon *-*-* 23:00:00"]),
    ("0 12 * * fri#3", ["Fri *-*-15..21 12:00:00"]),
    ("0 1 * * 5-1", ["Mon,Fri..Sun *-*-* 01:00:00"]),
    ("0 1 ? * 1", ["Mon *-*-* 01:00:00"]),
    ("@daily", ["*-*-* 00:00:00"]),
    ("@midnight", ["*-*-* 00:00:00"]),
    ("@hourly", ["*-*-* *:00:00"]),
    ("@weekly", ["Sun *-*-* 00:00:00"]),
    ("@monthly", ["*-*-01 00:00:00"]),
    ("@yearly", ["*-01-01 00:00:00"]),
    ("@annually", ["*-01-01 00:00:00"]),
]

# RRULE -> OnCalendar lines (time zone UTC; a rule without DTSTART starts on Saturday 2000-01-01 00:00)
RRULE_CASES = [
    ("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0", ["Tue *-*-08..14 22:00:00"]),
    ("FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0", ["Sat *-*-* 02:00:00"]),
    ("FREQ=WEEKLY", ["Sat *-*-* 00:00:00"]),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=22;BYMINUTE=30", ["Mon..Fri *-*-* 22:30:00"]),
    ("FREQ=DAILY;BYHOUR=2,14;BYMINUTE=0,30", ["*-*-* 02,14:00,30:00"]),
    ("FREQ=DAILY", ["*-*-* 00:00:00"]),
    ("FREQ=HOURLY;BYMINUTE=10", ["*-*-* *:10:00"]),
    ("FREQ=HOURLY;INTERVAL=6;BYMINUTE=30", ["*-*-* 00/6:30:00"]),
    ("FREQ=MINUTELY", ["*-*-* *:*:00"]),
    ("FREQ=MINUTELY;INTERVAL=15", ["*-*-* *:00/15:00"]),
    ("FREQ=MONTHLY", ["*-*-01 00:00:00"]),
    ("FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=3", ["*-*-01,15 03:00:00"]),
    ("FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=23", ["*-*~01 23:00:00"]),
    ("FREQ=MONTHLY;BYMONTHDAY=-1,15;BYHOUR=23", ["*-*-15 23:00:00", "*-*~01 23:00:00"]),
    ("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=20", ["Fri *-*~01..07 20:00:00"]),
    ("FREQ=MONTHLY;BYDAY=1SA,3SA;BYHOUR=6", ["Sat *-*-01..07,15..21 06:00:00"]),
    ("FREQ=MONTHLY;BYDAY=5SU;BYHOUR=6", ["Sun *-*-29..31 06:00:00"]),
    ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;BYHOUR=13", ["Fri *-*-13 13:00:00"]),
    ("FREQ=MONTHLY;BYDAY=2TU;BYMONTHDAY=10,11,12", ["Tue *-*-10..12 00:00:00"]),
    ("FREQ=MONTHLY;BYMONTH=1,4,7,10;BYMONTHDAY=1;BYHOUR=5", ["*-01/3-01 05:00:00"]),
    ("FREQ=YEARLY", ["*-01-01 00:00:00"]),
    ("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;BYHOUR=4", ["Sun *-03~01..07 04:00:00"]),
    ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;BYHOUR=18", ["Thu *-11-22..28 18:00:00"]),
    ("FREQ=YEARLY;BYDAY=2TU", ["Tue *-01-08..14 00:00:00"]),
    ("FREQ=YEARLY;BYDAY=-1MO;BYHOUR=9", ["Mon *-12~01..07 09:00:00"]),
    ("DTSTART:20260301T033000\nRRULE:FREQ=WEEKLY", ["Sun *-*-* 03:30:00"]),
    # A DTSTART in another zone is read in the window's (here UTC: 22:15 in Berlin in January is 21:15).
    ("DTSTART;TZID=Europe/Berlin:20260105T221500\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH", ["Mon,Thu *-*-* 21:15:00"]),
    ("FREQ=DAILY;BYHOUR=3;BYMINUTE=0;BYSECOND=30", ["*-*-* 03:00:30"]),
]


@pytest.mark.parametrize(("expression", "expected"), CRON_CASES)
def test_cron_as_on_calendar(expression: str, expected: list[str]) -> None:
    assert on_calendars(window(cron=expression)) == [f"{line} UTC" for line in expected]


@pytest.mark.parametrize(("rule", "expected"), RRULE_CASES)
def test_rrule_as_on_calendar(rule: str, expected: list[str]) -> None:
    assert on_calendars(window(rrule=rule)) == [f"{line} UTC" for line in expected]


def test_on_calendar_carries_the_window_time_zone() -> None:
    assert on_calendars(window(cron="0 2 * * 6", timezone="Europe/Berlin")) == ["Sat *-*-* 02:00:00 Europe/Berlin"]
    assert on_calendars(window(rrule="FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22", timezone="America/New_York")) == [
        "Tue *-*-08..14 22:00:00 America/New_York"
    ]


# Faithfulness: a calendar's times are exactly the window's openings (maint.windows computes those).


def _matches(calendar: Calendar, moment: dt.datetime) -> bool:
    last = month_calendar.monthrange(moment.year, moment.month)[1] - moment.day + 1
    checks = [
        (calendar.weekdays, moment.weekday()), (calendar.months, moment.month), (calendar.days, moment.day),
        (calendar.last_days, last), (calendar.hours, moment.hour), (calendar.minutes, moment.minute),
        (calendar.seconds, moment.second),
    ]  # fmt: skip
    return all(values is None or value in values for values, value in checks)


def _calendar_times(found: list[Calendar], start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every time (UTC) in (start, end) that one of the calendars matches, by walking the days."""
    times = set()
    day = start.replace(hour=0, minute=0, second=0)
    while day < end:
        for calendar in found:
            hours = sorted(calendar.hours) if calendar.hours is not None else range(24)
            minutes = sorted(calendar.minutes) if calendar.minutes is not None else range(60)
            for hour, minute, second in itertools.product(hours, minutes, sorted(calendar.seconds)):
                moment = day.replace(hour=hour, minute=minute, second=second)
                if start < moment < end and _matches(calendar, moment):
                    times.add(moment)
        day += dt.timedelta(days=1)
    return sorted(times)


def _span(found: list[Calendar]) -> dt.timedelta:
    frequent = any(calendar.minutes is None or calendar.hours is None for calendar in found)
    return dt.timedelta(days=3) if frequent else dt.timedelta(days=4 * 366)


@pytest.mark.parametrize(
    "schedule", [("cron", case[0]) for case in CRON_CASES] + [("rrule", case[0]) for case in RRULE_CASES],
    ids=lambda schedule: schedule[1].replace("\n", " "),
)  # fmt: skip
def test_calendars_match_exactly_the_window_openings(schedule: tuple[str, str]) -> None:
    # One second open: openings a minute apart stay separate periods.
    tested = window(**{schedule[0]: schedule[1]}, duration=dt.timedelta(seconds=1))
    found = calendars(tested)
    # After the table's DTSTARTs: before its DTSTART a rule has no openings, while a calendar repeats forever.
    start = dt.datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)
    end = start + _span(found)
    expected = _calendar_times(found, start, end)
    openings = next_openings(tested, start, len(expected) + 1, horizon=end - start)
    assert [opening.opens_at for opening in openings if opening.opens_at < end] == expected
    assert expected, "the table case never opens"


# systemd's own reading of the expressions


def _systemd_elapses(expression: str, base: str, count: int) -> list[dt.datetime]:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "calendar", f"--iterations={count}", f"--base-time={base}", expression],
        capture_output=True, text=True, timeout=30, env={**os.environ, "TZ": "UTC"}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"systemd refuses {expression!r}: {done.stderr}"
    normalized = re.search(r"Normalized form: (.+)", done.stdout)
    assert normalized is not None, done.stdout
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", done.stdout)
    assert len(found) == count, done.stdout
    return [dt.datetime.fromisoformat(text).replace(tzinfo=UTC) for text in found]


SYSTEMD_CASES = (
    [("cron", case[0], "UTC") for case in CRON_CASES]
    + [("rrule", case[0], "UTC") for case in RRULE_CASES]
    + [("cron", "0 2 * * 6", "Europe/Berlin"), ("cron", "30 22 * * 1-5", "America/New_York"),
       ("rrule", "FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0", "Europe/Berlin"),
       ("rrule", "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=20", "Asia/Tokyo"), ("cron", "*/20 * * * *", "Australia/Adelaide")]
)  # fmt: skip


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed on this machine")
@pytest.mark.parametrize("case", SYSTEMD_CASES, ids=lambda case: f"{case[1]} {case[2]}".replace("\n", " "))
def test_systemd_reads_each_on_calendar_as_maint_reads_the_window(case: tuple[str, str, str]) -> None:
    kind, schedule, timezone = case
    tested = window(**{kind: schedule}, timezone=timezone, duration=dt.timedelta(seconds=1))
    # Mid-May: no DST change near the first elapses (systemd skips a wall time a change skips).
    base = dt.datetime(2026, 5, 12, 7, 0, 30, tzinfo=UTC)
    count = 8
    found = {moment for expression in on_calendars(tested)
             for moment in _systemd_elapses(expression, "2026-05-12 07:00:30 UTC", count)}  # fmt: skip
    elapses = sorted(found)[:count]
    openings = next_openings(tested, base, count, horizon=dt.timedelta(days=4000))
    assert elapses == [opening.opens_at for opening in openings]


# Crontab lines

CRON_LINE_CASES = [
    ("cron", "0 2 * * 6", ["0 2 * * 6"]),
    ("cron", "*/15 8-17 * * mon-fri", ["*/15 8-17 * * 1-5"]),
    ("cron", "0 4 1,15 * 1", ["0 4 1,15 * 1"]),
    ("cron", "@weekly", ["0 0 * * 0"]),
    ("cron", "5-50/15 */3 1-10 jan-mar/2 *", ["5-50/15 */3 1-10 1,3 *"]),
    ("rrule", "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0", ["0 2 * * 6"]),
    ("rrule", "FREQ=DAILY;BYHOUR=2,14;BYMINUTE=0,30", ["0,30 2,14 * * *"]),
    ("rrule", "FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=3", ["0 3 1,15 * *"]),
    ("rrule", "FREQ=HOURLY;INTERVAL=6;BYMINUTE=30", ["30 */6 * * *"]),
    ("rrule", "FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4;BYHOUR=12", ["0 12 4 7 *"]),
]


@pytest.mark.parametrize(("kind", "schedule", "expected"), CRON_LINE_CASES)
def test_cron_lines(kind: str, schedule: str, expected: list[str]) -> None:
    assert cron_lines(window(**{kind: schedule})) == expected


@pytest.mark.parametrize(
    ("kind", "schedule", "reason"),
    [
        ("rrule", "FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22", "day of the month OR the weekday"),
        ("cron", "0 22 * * 2#2", "day of the month OR the weekday"),
        ("rrule", "FREQ=MONTHLY;BYMONTHDAY=-1", "counted from the end of the month"),
        ("cron", "0 0 L * *", "counted from the end of the month"),
        ("rrule", "FREQ=DAILY;BYSECOND=30", "whole minutes"),
    ],
)
def test_what_cron_cannot_say_is_an_error_pointing_to_systemd(kind: str, schedule: str, reason: str) -> None:
    with pytest.raises(Unconvertible, match=reason) as refused:
        cron_lines(window(**{kind: schedule}))
    assert "--systemd" in str(refused.value) or "seconds" in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "schedule", "reason"),
    [
        ("rrule", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", "INTERVAL=2 (every 2nd week)"),
        ("rrule", "FREQ=DAILY;INTERVAL=3", "INTERVAL=3 (every 3rd day)"),
        ("rrule", "FREQ=MONTHLY;INTERVAL=2", "INTERVAL=2 (every 2nd month)"),
        ("rrule", "FREQ=HOURLY;INTERVAL=5", "INTERVAL=5"),
        ("rrule", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1", "BYSETPOS"),
        ("rrule", "FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO"),
        ("rrule", "FREQ=YEARLY;BYYEARDAY=100", "BYYEARDAY"),
        ("rrule", "FREQ=SECONDLY", "too frequent"),
        ("rrule", "FREQ=MONTHLY;BYDAY=MO,2TU", "with and without an ordinal"),
        ("rrule", "FREQ=YEARLY;BYDAY=20MO", "20th weekday"),
        ("cron", "0 0 15W * *", "nearest"),
    ],
)
def test_what_systemd_cannot_say_is_unconvertible(kind: str, schedule: str, reason: str) -> None:
    with pytest.raises(Unconvertible) as refused:
        on_calendars(window(**{kind: schedule}))
    assert reason in str(refused.value)


def test_the_interval_error_names_the_fix() -> None:
    with pytest.raises(Unconvertible) as refused:
        on_calendars(window(rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=SA"))
    assert str(refused.value) == (
        "INTERVAL=2 (every 2nd week): systemd calendars and crontabs cannot count every other week or day; use a "
        "rule without INTERVAL, e.g. FREQ=MONTHLY;BYDAY=1SA,3SA for the 1st and 3rd Saturday of each month"
    )


# Unit files


def test_service_and_timer_of_a_window() -> None:
    nightly = window(timezone="Europe/Berlin", hosts="web:&prod", playbooks=("updates-apply", "health"))
    exported = systemd_units({"nightly": nightly}, TARGET, source="/srv/maint/maint.yml", randomized_delay=300,
                             user="maint")  # fmt: skip
    assert sorted(exported.files) == ["maint-nightly.service", "maint-nightly.timer"]
    assert exported.files["maint-nightly.service"] == (
        "# maint: window 'nightly' of /srv/maint/maint.yml, written by 'maint schedule export --systemd'.\n"
        "# Export again after changing the window rather than editing this file.\n"
        "[Unit]\n"
        "Description=maint: updates-apply, health in window nightly on web:&prod\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "WorkingDirectory=/srv/maint\n"
        "ExecStart=/opt/maint/bin/maint schedule run nightly -i /srv/maint/inventory/prod.ini\n"
        "# 4 (a step failed) and 5 (a host was unreachable): the run went through, tickets report the findings;\n"
        "# 7 (not started): the window was closed when the timer fired (a blackout, a holiday, a late boot).\n"
        "SuccessExitStatus=4 5 7\n"
        "User=maint\n"
    )
    assert exported.files["maint-nightly.timer"] == (
        "# maint: window 'nightly' of /srv/maint/maint.yml, written by 'maint schedule export --systemd'.\n"
        "# Export again after changing the window rather than editing this file.\n"
        "[Unit]\n"
        "Description=maint: window nightly (0 2 * * 6, Europe/Berlin)\n"
        "\n"
        "[Timer]\n"
        "OnCalendar=Sat *-*-* 02:00:00 Europe/Berlin\n"
        "# The window opens at these times: start within a second, not within systemd's default minute.\n"
        "AccuracySec=1s\n"
        "RandomizedDelaySec=5min\n"
        "# After downtime the missed run starts at boot; maint runs it only if the window is still open.\n"
        "Persistent=true\n"
        "Unit=maint-nightly.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


def test_user_units_have_no_user_and_no_system_targets() -> None:
    exported = systemd_units({"nightly": window(playbooks=("health",))}, TARGET, source="maint.yml",
                             user_units=True, user="alice")  # fmt: skip
    service = exported.files["maint-nightly.service"]
    assert "User=" not in service
    assert "network-online.target" not in service
    assert "--systemd --user" in service
    assert "RandomizedDelaySec" not in exported.files["maint-nightly.timer"]
    assert "WantedBy=timers.target" in exported.files["maint-nightly.timer"]


def test_both_day_rules_of_cron_give_two_on_calendar_lines() -> None:
    exported = systemd_units({"twice": window("twice", cron="0 4 1,15 * 1", playbooks=("health",))}, TARGET,
                             source="maint.yml")  # fmt: skip
    timer = exported.files["maint-twice.timer"]
    assert "OnCalendar=*-*-01,15 04:00:00 UTC\nOnCalendar=Mon *-*-* 04:00:00 UTC\n" in timer


def test_paths_with_spaces_percent_and_dollar_are_quoted_for_systemd() -> None:
    target = Target(Path("/srv/my maint/100%"), ("/opt/maint $HOME/bin/maint",), ("/srv/my maint/inv.ini", "a,b,"),
                    config=Path("/etc/maint/other maint.yml"))  # fmt: skip
    service = systemd_units({"nightly": window(playbooks=("health",))}, target, source="maint.yml").files[
        "maint-nightly.service"
    ]
    assert "WorkingDirectory=/srv/my maint/100%%\n" in service
    assert ('ExecStart="/opt/maint $$HOME/bin/maint" schedule run nightly -i "/srv/my maint/inv.ini" -i a,b,\n'
            in service)  # fmt: skip
    assert 'Environment="MAINT_CONFIG=/etc/maint/other maint.yml"\n' in service


def test_windows_without_playbooks_are_skipped_with_a_note() -> None:
    exported = systemd_units(
        {"nightly": window(playbooks=("health",)), "adhoc": window("adhoc")}, TARGET, source="maint.yml",
        lines={"adhoc": {"": 9}},
    )  # fmt: skip
    assert sorted(exported.files) == ["maint-nightly.service", "maint-nightly.timer"]
    assert exported.notes == ["maint.yml:9: window 'adhoc' has no playbooks: not scheduled"]


def test_a_rule_that_ends_is_exported_with_a_note() -> None:
    ending = window(rrule="FREQ=WEEKLY;BYDAY=SA;COUNT=10", playbooks=("health",))
    notes = systemd_units({"nightly": ending}, TARGET, source="maint.yml").notes
    assert notes == ["maint.yml: window 'nightly': the schedule does not end with the rule's COUNT or UNTIL; later "
                     "runs find the window closed and exit 7"]  # fmt: skip


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ({}, "maint.yml: defines no windows"),
        ({"adhoc": window("adhoc")}, "maint.yml: no window has 'playbooks'"),
    ],
)
def test_nothing_to_export_is_bad_input(windows: dict[str, Window], message: str) -> None:
    for export in (systemd_units, crontab):
        with pytest.raises(ScheduleError) as refused:
            export(windows, TARGET, source="maint.yml")
        assert refused.value.exit_code == 3
        assert str(refused.value).startswith(message)


def test_every_unconvertible_window_is_listed_with_its_line() -> None:
    windows = {
        "fortnightly": window("fortnightly", rrule="FREQ=WEEKLY;INTERVAL=2", playbooks=("health",)),
        "nightly": window(playbooks=("health",)),
        "setpos": window("setpos", rrule="FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1", playbooks=("health",)),
    }
    lines = {"fortnightly": {"": 2, "rrule": 3}, "setpos": {"": 8}}
    with pytest.raises(ScheduleError) as refused:
        systemd_units(windows, TARGET, source="/p/maint.yml", lines=lines)
    assert [error.split(": ", 2)[:2] for error in refused.value.errors] == [
        ["/p/maint.yml:3", "At 'windows.fortnightly.rrule'"],
        ["/p/maint.yml:8", "At 'windows.setpos.rrule'"],
    ]
    assert str(refused.value).endswith("(and 1 more)")


def test_a_randomized_delay_as_long_as_the_window_is_refused() -> None:
    short = window(duration=dt.timedelta(minutes=5), playbooks=("health",))
    with pytest.raises(ScheduleError, match=r"open for 5min: a randomized delay of 5min could start its run after"):
        systemd_units({"nightly": short}, TARGET, source="maint.yml", randomized_delay=300)
    assert systemd_units({"nightly": short}, TARGET, source="maint.yml", randomized_delay=90).files


# Crontab


def test_crontab_sets_the_time_zone_per_window() -> None:
    windows = {
        "nightly": window(timezone="Europe/Berlin", playbooks=("updates-apply",)),
        "weekdays": window("weekdays", rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=22;BYMINUTE=30",
                           playbooks=("health", "backup")),
    }  # fmt: skip
    target = Target(Path("/srv/maint"), ("/opt/maint/bin/maint",), ("/srv/maint/inv.ini",),
                    config=Path("/etc/maint.yml"))  # fmt: skip
    text = crontab(windows, target, source="/etc/maint.yml").files["crontab"]
    job = "cd /srv/maint && MAINT_CONFIG=/etc/maint.yml /opt/maint/bin/maint schedule run {} -i /srv/maint/inv.ini"
    assert text.splitlines() == [
        "# maint windows of /etc/maint.yml, written by 'maint schedule export --cron'.",
        "# CRON_TZ is read by cronie (RHEL, Fedora, SUSE, Arch); other crons use the system's time zone.",
        "",
        "# window nightly: 0 2 * * 6 (updates-apply)",
        "CRON_TZ=Europe/Berlin",
        "0 2 * * 6 " + job.format("nightly"),
        "",
        "# window weekdays: FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=22;BYMINUTE=30 (health, backup)",
        "CRON_TZ=UTC",
        "30 22 * * 1-5 " + job.format("weekdays"),
    ]


def test_crontab_quotes_for_the_shell_and_escapes_percent() -> None:
    target = Target(Path("/srv/my maint"), ("/opt/maint/bin/maint",), ("/srv/my maint/100%.ini",))
    text = crontab({"nightly": window(playbooks=("health",))}, target, source="maint.yml").files["crontab"]
    assert ("0 2 * * 6 cd '/srv/my maint' && /opt/maint/bin/maint schedule run nightly -i '/srv/my maint/100\\%.ini'"
            in text.splitlines())  # fmt: skip


def test_crontab_refuses_what_cron_cannot_say_naming_the_window() -> None:
    windows = {"patch": window("patch", rrule="FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22", playbooks=("updates-apply",))}
    with pytest.raises(ScheduleError) as refused:
        crontab(windows, TARGET, source="maint.yml", lines={"patch": {"": 4, "rrule": 5}})
    assert str(refused.value).startswith("maint.yml:5: At 'windows.patch.rrule': cron runs a job when the day of")
    assert "use --systemd" in str(refused.value)


# From maint.yml


def test_lines_and_scheduled_request_from_maint_yml(tmp_path: Path) -> None:
    from maint import config

    path = tmp_path / "maint.yml"
    path.write_text(
        "windows:\n  nightly:\n    cron: '0 2 * * 6'\n    duration: 2h\n    hosts: web\n"
        "    playbooks: [updates-apply, health]\n  adhoc:\n    cron: '@daily'\n    duration: 1h\n"
    )
    lines = window_lines(path)
    assert lines["nightly"][""] == 2
    assert lines["nightly"]["cron"] == 3
    assert lines["adhoc"][""] == 7
    loaded = config.load(path=path)
    request = run_request(loaded.windows["nightly"], ["inv.ini"], project_dir=tmp_path, source=str(path), lines=lines,
                          db_url="sqlite://")  # fmt: skip
    assert (request.playbooks, request.limit, request.window, request.reason, request.db_url) == (
        ("updates-apply", "health"), "web", "nightly", "scheduled: window nightly", "sqlite://",
    )  # fmt: skip
    assert not request.ignore_window
    with pytest.raises(Exception, match=r"maint.yml:7: window 'adhoc' has no playbooks to run") as refused:
        run_request(loaded.windows["adhoc"], ["inv.ini"], project_dir=tmp_path, source=str(path), lines=lines)
    assert getattr(refused.value, "exit_code", None) == 3


# The CLI's argument handling (the real runs are in tests/integration/test_schedule_run.py)


DAILY = "windows:\n  a:\n    cron: '@daily'\n    duration: 1h\n    playbooks: [health]\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MAINT_CONFIG", raising=False)
    monkeypatch.delenv("MAINT_INVENTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.ini").write_text("web1 ansible_host=127.0.0.1\n")
    return tmp_path


def test_export_needs_exactly_one_of_systemd_and_cron(project: Path) -> None:
    for arguments in ([], ["--cron", "--systemd", "units"], ["--cron", "--user"]):
        done = CliRunner().invoke(schedule_command, ["export", "-i", "inventory.ini", *arguments])
        assert done.exit_code == 2, done.output


def test_export_errors_are_one_line_each_with_file_and_line(project: Path) -> None:
    (project / "maint.yml").write_text(
        "windows:\n  a:\n    rrule: FREQ=WEEKLY;INTERVAL=2\n    duration: 1h\n    playbooks: [health]\n"
        "  b:\n    rrule: FREQ=DAILY;INTERVAL=2\n    duration: 1h\n    playbooks: [health]\n"
    )  # fmt: skip
    done = CliRunner().invoke(schedule_command, ["export", "--systemd", "units", "-i", "inventory.ini"])
    assert done.exit_code == 3
    errors = [line for line in done.output.splitlines() if line.startswith("maint: error: ")]
    assert [line.split(": ")[2] for line in errors] == [f"{project / 'maint.yml'}:3", f"{project / 'maint.yml'}:7"]
    assert not (project / "units").exists()
    assert "Traceback" not in done.output


def test_export_refuses_a_missing_inventory(project: Path) -> None:
    (project / "maint.yml").write_text(DAILY)
    done = CliRunner().invoke(schedule_command, ["export", "--cron", "-i", "missing.ini"])
    assert done.exit_code != 0
    assert "inventory missing.ini not found" in str(done.exception)


def test_export_cron_prints_the_crontab_with_absolute_paths(project: Path) -> None:
    (project / "maint.yml").write_text(DAILY)
    done = CliRunner().invoke(schedule_command, ["export", "--cron", "-i", "inventory.ini"])
    assert done.exit_code == 0, done.output
    (line,) = [line for line in done.output.splitlines() if line.startswith("0 0 * * * ")]
    assert line.startswith(f"0 0 * * * cd {project} && /")
    assert line.endswith(f" schedule run a -i {project / 'inventory.ini'}")


# Pings


@pytest.mark.parametrize(
    ("exit_code", "event"), [(0, "success"), (4, "success"), (5, "success"), (7, None), (3, "fail"), (6, "fail"),
                             (130, "fail"), (1, "fail")],
)  # fmt: skip
def test_which_ping_ends_a_run(exit_code: int, event: str | None) -> None:
    assert finish_event(exit_code) == event


class Recorder:
    """A transport that records each POST and answers with ``status`` (or raises ``error``)."""

    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.status = status
        self.error = error
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, url: str, body: dict[str, Any], timeout: float) -> int:
        self.sent.append((url, body))
        if self.error is not None:
            raise self.error
        return self.status


def pinged(**urls: str) -> Window:
    return window(playbooks=("health",), ping=Ping(**urls))


def test_start_then_success_with_run_id_and_exit_code() -> None:
    recorder = Recorder()
    pings = WindowPings(pinged(start="https://hc.example/u/start", success="https://hc.example/u"), post=recorder)
    assert pings.start("20261128-020000-abcdef") == PingResult("nightly", "start")
    assert pings.finish(4, status="failed") == PingResult("nightly", "success")
    assert recorder.sent == [
        ("https://hc.example/u/start",
         {"window": "nightly", "event": "start", "run_id": "20261128-020000-abcdef", "status": "running"}),
        ("https://hc.example/u",
         {"window": "nightly", "event": "success", "run_id": "20261128-020000-abcdef", "status": "failed",
          "exit_code": 4}),
    ]  # fmt: skip


def test_no_ping_for_a_run_that_did_not_start_or_a_missing_url() -> None:
    recorder = Recorder()
    pings = WindowPings(pinged(start="https://hc.example/u/start", fail="https://hc.example/u/fail"), post=recorder)
    assert pings.finish(7) is None
    assert pings.finish(0, status="ok") is None  # no success URL
    assert recorder.sent == []
    assert pings.finish(3, error="maint.yml:3: bad") == PingResult("nightly", "fail")
    assert recorder.sent == [("https://hc.example/u/fail", {"window": "nightly", "event": "fail", "run_id": None,
                                                            "status": "error", "exit_code": 3,
                                                            "error": "maint.yml:3: bad"})]  # fmt: skip


def test_references_are_resolved_and_failures_never_show_the_url(tmp_path: Path) -> None:
    secret = tmp_path / "ping-url"
    secret.write_text("https://hc.example/SECRET-TOKEN\n")
    recorder = Recorder(status=404)
    result = WindowPings(pinged(success=f"file:{secret}"), post=recorder).finish(0, status="ok")
    assert recorder.sent[0][0] == "https://hc.example/SECRET-TOKEN"
    assert result is not None
    assert result.warning == "ping 'success' of window 'nightly' failed: HTTP 404"
    missing = WindowPings(pinged(start="env:MAINT_TEST_PING_URL"), environ={}).start("run")
    assert missing is not None
    assert missing.warning == ("ping 'start' of window 'nightly' failed: environment variable MAINT_TEST_PING_URL "
                               "(from env:MAINT_TEST_PING_URL) is not set")  # fmt: skip
    not_url = ping("env:URL", {}, environ={"URL": "hc.example/SECRET-TOKEN"})
    assert not_url == "the value of env:URL is not an http(s) URL"


def test_a_transport_error_is_a_warning_without_the_url() -> None:
    import requests

    error = requests.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /SECRET-TOKEN/start "
        "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))"
    )
    result = ping("https://hc.example/SECRET-TOKEN/start", {}, post=Recorder(error=error))
    assert result == "cannot connect: connection refused"
    assert ping("https://hc.example/x", {}, post=Recorder(error=requests.Timeout("slow")), timeout=5) == (
        "no answer within 5s"
    )
    assert ping("https://hc.example/SECRET-TOKEN", {}, post=Recorder(error=RuntimeError("/SECRET-TOKEN"))) == (
        "RuntimeError"
    )
