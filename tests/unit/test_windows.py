"""Maintenance windows: cron and RRULE openings, time zones and DST, blackouts, holidays, merged
periods, the search horizon, status reasons, and the ``windows`` section of maint.yml."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from maint.config import ConfigError, load
from maint.windows import (
    DateRange,
    HolidayCalendar,
    Opening,
    UnknownWindow,
    Window,
    find_window,
    next_openings,
    parse_blackouts,
    parse_cron,
    parse_holidays,
    parse_rrule,
    parse_timezone,
    parse_url,
    status,
)

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def window(**options: Any) -> Window:
    options.setdefault("duration", dt.timedelta(hours=2))
    if "cron" not in options and "rrule" not in options:
        options["cron"] = "0 2 * * 6"
    return Window(name=options.pop("name", "nightly"), **options)


def opens(found: list[Opening]) -> list[str]:
    return [opening.opens_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for opening in found]


# Cron and RRULE openings


def test_open_inside_the_window_with_its_reason() -> None:
    state = status(window(), utc("2026-11-28T03:00"))
    assert state.open
    assert state.opened_at == utc("2026-11-28T02:00")
    assert state.closes_at == utc("2026-11-28T04:00")
    assert state.grace_until == utc("2026-11-28T04:05")
    assert state.next_opens_at == utc("2026-12-05T02:00")
    assert state.next_closes_at == utc("2026-12-05T04:00")
    assert state.reason == "open since Sat 02:00 UTC, closes 04:00 UTC"


def test_closed_before_the_window_with_its_next_opening() -> None:
    state = status(window(), utc("2026-11-27T12:00"))
    assert not state.open
    assert (state.opened_at, state.closes_at, state.grace_until) == (None, None, None)
    assert state.next_opens_at == utc("2026-11-28T02:00")
    assert state.next_closes_at == utc("2026-11-28T04:00")
    assert state.reason == "closed: opens Sat 2026-11-28 02:00 UTC"


def test_the_opening_belongs_to_the_window_and_the_close_does_not() -> None:
    assert status(window(), utc("2026-11-28T02:00")).open
    assert status(window(), utc("2026-11-28T03:59:59")).open
    closed = status(window(), utc("2026-11-28T04:00"))
    assert not closed.open
    assert closed.next_opens_at == utc("2026-12-05T02:00")


def test_a_grace_of_its_own() -> None:
    state = status(window(grace=dt.timedelta(minutes=20)), utc("2026-11-28T03:00"))
    assert state.grace_until == utc("2026-11-28T04:20")


def test_rrule_gives_the_same_openings_as_the_same_cron() -> None:
    cron = window(cron="0 2 * * 6")
    rule = window(rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0")
    after = utc("2026-11-01T00:00")
    assert next_openings(rule, after, 5) == next_openings(cron, after, 5)
    assert opens(next_openings(rule, after, 2)) == ["2026-11-07 02:00", "2026-11-14 02:00"]


def test_rrule_with_dtstart_counts_its_interval_from_it() -> None:
    every_other = window(rrule="DTSTART:20261107T220000\nRRULE:FREQ=WEEKLY;INTERVAL=2")
    assert opens(next_openings(every_other, utc("2026-11-01T00:00"), 3)) == [
        "2026-11-07 22:00", "2026-11-21 22:00", "2026-12-05 22:00",
    ]  # fmt: skip


def test_rrule_dtstart_with_a_zone_is_read_in_the_windows_zone() -> None:
    # 02:00 in New York is 08:00 in Berlin that day; the window recurs at 08:00 Berlin time.
    rule = window(rrule="DTSTART;TZID=America/New_York:20260103T020000\nRRULE:FREQ=WEEKLY", timezone="Europe/Berlin")
    (first,) = next_openings(rule, utc("2026-01-01T00:00"), 1)
    assert first.opens_at == local("2026-01-03T08:00", BERLIN)


def test_rrule_until_and_count_end_the_openings() -> None:
    until = window(rrule="FREQ=DAILY;BYHOUR=2;UNTIL=20261203T030000Z")
    assert opens(next_openings(until, utc("2026-12-01T00:00"), 5)) == [
        "2026-12-01 02:00", "2026-12-02 02:00", "2026-12-03 02:00",
    ]  # fmt: skip
    count = window(rrule="DTSTART:20261201T020000\nRRULE:FREQ=DAILY;COUNT=2")
    assert opens(next_openings(count, utc("2026-11-01T00:00"), 5)) == ["2026-12-01 02:00", "2026-12-02 02:00"]
    state = status(count, utc("2026-12-10T00:00"))
    assert state.next_opens_at is None
    assert state.reason == "closed: does not open within 400 days"


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;INTERVAL=5",
        "FREQ=MINUTELY;INTERVAL=7;BYHOUR=3",
        "FREQ=DAILY;INTERVAL=3;BYHOUR=4",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=22",
        "FREQ=WEEKLY;INTERVAL=3",
        "FREQ=MONTHLY;INTERVAL=5;BYDAY=2TU;BYHOUR=22",
        "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=23;BYMINUTE=30",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=20",
        "FREQ=YEARLY;INTERVAL=3;BYMONTH=6;BYMONTHDAY=15",
        "DTSTART:20260131T010000\nRRULE:FREQ=MONTHLY",
        "DTSTART:20240229T010000\nRRULE:FREQ=YEARLY",
    ],
)
def test_rrule_openings_match_the_rule_expanded_from_its_start(rule: str) -> None:
    # Openings are searched from a start moved close to the moment asked about; this checks the move
    # against the rule expanded from its true start (2000-01-01 00:00 without DTSTART).
    after = utc("2027-05-20T10:17")
    rare = window(rrule=rule, duration=dt.timedelta(minutes=1))
    found = opens(next_openings(rare, after, 4, horizon=dt.timedelta(days=20 * 366)))
    expanded = rrulestr(rule, dtstart=dt.datetime(2000, 1, 1)).xafter(after.replace(tzinfo=None), count=4)
    assert found == [moment.strftime("%Y-%m-%d %H:%M") for moment in expanded]


def test_cron_aliases_and_day_of_week_names() -> None:
    assert opens(next_openings(window(cron="@daily"), utc("2026-11-28T12:00"), 1)) == ["2026-11-29 00:00"]
    assert opens(next_openings(window(cron="0 22 * * tue#2"), utc("2026-11-01T00:00"), 1)) == ["2026-11-10 22:00"]


# Time zones and DST


def test_a_window_in_a_time_zone_opens_by_its_wall_clock() -> None:
    berlin = window(cron="0 2 * * 6", timezone="Europe/Berlin")
    winter = status(berlin, utc("2026-11-28T01:30"))  # 02:30 CET
    assert winter.open
    assert winter.opened_at == local("2026-11-28T02:00", BERLIN) == utc("2026-11-28T01:00")
    assert winter.reason == "open since Sat 02:00 CET, closes 04:00 CET"
    summer = status(berlin, utc("2026-06-06T00:30"))  # 02:30 CEST
    assert summer.opened_at == utc("2026-06-06T00:00")
    assert summer.reason == "open since Sat 02:00 CEST, closes 04:00 CEST"


def test_spring_forward_a_time_that_does_not_exist_is_read_with_the_offset_before_the_gap() -> None:
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST. 02:30 CET is 01:30 UTC, 03:30 CEST.
    daily = window(cron="30 2 * * *", timezone="Europe/Berlin")
    found = next_openings(daily, utc("2026-03-28T00:00"), 3)
    assert [opening.opens_at for opening in found] == [
        local("2026-03-28T02:30", BERLIN), local("2026-03-29T03:30", BERLIN), local("2026-03-30T02:30", BERLIN),
    ]  # fmt: skip
    assert found[1].opens_at == utc("2026-03-29T01:30")
    assert found[1].closes_at == local("2026-03-29T05:30", BERLIN)  # the duration is elapsed time
    state = status(daily, utc("2026-03-29T02:00"))
    assert state.reason == "open since Sun 03:30 CEST, closes 05:30 CEST"
    assert not status(daily, utc("2026-03-29T01:00")).open
    # Asked in local time: 05:15 CEST is within the window, 05:30 CEST is its close.
    assert status(daily, local("2026-03-29T05:15", BERLIN)).open
    assert not status(daily, local("2026-03-29T05:30", BERLIN)).open
    # Times come back in UTC, which compares safely across DST folds.
    assert state.opened_at is not None and state.opened_at.tzinfo is UTC


def test_spring_forward_in_new_york() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 EST is 07:30 UTC.
    daily = window(cron="30 2 * * *", timezone="America/New_York", duration=dt.timedelta(hours=1))
    (gap_day, after) = next_openings(daily, local("2026-03-08T00:00", NEW_YORK), 2)
    assert gap_day.opens_at == utc("2026-03-08T07:30") == local("2026-03-08T03:30", NEW_YORK)
    assert after.opens_at == local("2026-03-09T02:30", NEW_YORK) == utc("2026-03-09T06:30")


def test_openings_around_the_gap_come_in_order_and_once() -> None:
    # Every half hour: 02:00 and 02:30 do not exist and fall on the instants of 03:00 and 03:30.
    half_hourly = window(cron="*/30 * * * *", timezone="Europe/Berlin", duration=dt.timedelta(minutes=10))
    found = next_openings(half_hourly, utc("2026-03-29T00:00"), 5)
    assert opens(found) == [
        "2026-03-29 00:30", "2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 02:00", "2026-03-29 02:30",
    ]  # fmt: skip


def test_fall_back_a_time_that_occurs_twice_opens_once_at_the_first() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    daily = window(cron="30 2 * * *", timezone="Europe/Berlin", duration=dt.timedelta(minutes=45))
    found = next_openings(daily, utc("2026-10-24T12:00"), 2)
    assert found[0].opens_at == utc("2026-10-25T00:30")  # 02:30 CEST
    assert found[0].closes_at == utc("2026-10-25T01:15")  # 02:15 CET
    assert found[1].opens_at == utc("2026-10-26T01:30")  # 02:30 CET
    assert status(daily, utc("2026-10-25T00:45")).reason == "open since Sun 02:30 CEST, closes 02:15 CET"
    assert not status(daily, utc("2026-10-25T01:30")).open  # the second 02:30 (CET)


def test_two_hours_over_the_fall_back_are_two_hours_of_elapsed_time() -> None:
    daily = window(cron="0 2 * * *", timezone="Europe/Berlin")
    state = status(daily, utc("2026-10-25T01:30"))
    assert state.opened_at == utc("2026-10-25T00:00")  # 02:00 CEST
    assert state.closes_at == utc("2026-10-25T02:00")  # 03:00 CET


def test_a_window_spanning_midnight() -> None:
    late = window(cron="0 23 * * *", timezone="America/New_York", duration=dt.timedelta(hours=3))
    state = status(late, local("2026-07-02T01:30", NEW_YORK))
    assert state.open
    assert state.opened_at == local("2026-07-01T23:00", NEW_YORK)
    assert state.closes_at == local("2026-07-02T02:00", NEW_YORK)
    assert state.reason == "open since Wed 23:00 EDT, closes 02:00 EDT"
    before_midnight = status(late, local("2026-07-01T23:30", NEW_YORK))
    assert before_midnight.reason == "open since Wed 23:00 EDT, closes Thu 02:00 EDT"


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="needs a time zone"):
        status(window(), dt.datetime(2026, 11, 28, 3))
    with pytest.raises(ValueError, match="needs a time zone"):
        next_openings(window(), dt.datetime(2026, 11, 28, 3), 1)


# Blackouts and holidays


def test_a_blackout_date_shuts_that_days_opening() -> None:
    nightly = window(cron="0 2 * * *", blackouts=parse_blackouts(["2026-12-24"]))
    state = status(nightly, utc("2026-12-24T03:00"))
    assert not state.open
    assert state.next_opens_at == utc("2026-12-25T02:00")
    assert state.reason == "closed: today is a blackout date (2026-12-24); opens Fri 2026-12-25 02:00 UTC"
    assert status(nightly, utc("2026-12-23T03:00")).open
    # Later that day the window would be shut anyway: the reason is the next opening.
    assert status(nightly, utc("2026-12-24T12:00")).reason == "closed: opens Fri 2026-12-25 02:00 UTC"


def test_a_blackout_range_includes_both_ends() -> None:
    nightly = window(cron="0 2 * * *", blackouts=parse_blackouts(["2026-12-28..2027-01-01"]))
    found = next_openings(nightly, utc("2026-12-26T12:00"), 3)
    assert opens(found) == ["2026-12-27 02:00", "2027-01-02 02:00", "2027-01-03 02:00"]


def test_blackout_dates_are_dates_in_the_windows_time_zone() -> None:
    # 23:30 UTC on the 23rd is 00:30 on the 24th in Berlin: a blackout on the 24th shuts it.
    berlin = window(cron="30 0 * * *", timezone="Europe/Berlin", blackouts=parse_blackouts(["2026-12-24"]))
    assert not status(berlin, utc("2026-12-23T23:45")).open
    assert status(berlin, utc("2026-12-22T23:45")).open


def test_a_window_opened_the_day_before_a_blackout_runs_to_its_close() -> None:
    late = window(cron="0 23 * * *", duration=dt.timedelta(hours=3), blackouts=parse_blackouts(["2026-12-24"]))
    assert status(late, utc("2026-12-24T01:00")).open  # opened on the 23rd
    state = status(late, utc("2026-12-25T01:00"))  # the opening of the 24th was shut
    assert not state.open
    assert state.reason == "closed: yesterday is a blackout date (2026-12-24); opens Fri 2026-12-25 23:00 UTC"


def test_a_public_holiday_shuts_the_opening() -> None:
    nightly = window(cron="0 2 * * *", timezone="Europe/Berlin", holidays=parse_holidays({"country": "DE"}))
    state = status(nightly, local("2026-12-25T03:00", BERLIN))
    assert not state.open
    assert state.reason == (
        "closed: today is a holiday (Erster Weihnachtstag, DE); opens Sun 2026-12-27 02:00 CET"  # 26th: 2nd day
    )


def test_holidays_of_a_subdivision_and_of_several_countries() -> None:
    bavaria = window(cron="0 2 * * *", holidays=parse_holidays({"country": "DE", "subdivision": "BY"}))
    berlin = window(cron="0 2 * * *", holidays=parse_holidays({"country": "DE", "subdivision": "BE"}))
    epiphany = utc("2026-01-06T03:00")
    assert status(bavaria, epiphany).reason.startswith("closed: today is a holiday (Heilige Drei Könige, DE-BY)")
    assert status(berlin, epiphany).open
    both = window(cron="0 2 * * *", holidays=parse_holidays([{"country": "DE"}, {"country": "US"}]))
    # 2026-07-04 is a Saturday: the US observes Independence Day on Friday the 3rd.
    assert status(both, utc("2026-07-03T03:00")).reason.startswith(
        "closed: today is a holiday (Independence Day (observed), US)"
    )


def test_holiday_names_in_another_language() -> None:
    calendar = parse_holidays({"country": "DE", "language": "en_US"})
    assert calendar == (HolidayCalendar("DE", None, "en_US"),)
    assert calendar[0].holiday(dt.date(2026, 12, 25)) == "Christmas Day"
    assert calendar[0].holiday(dt.date(2026, 12, 23)) is None


# Merged periods, next openings, the horizon


def test_a_duration_longer_than_the_interval_merges_the_openings() -> None:
    # Daily at 02:00 for 25 hours: open without a break, until a blackout shuts one opening.
    long = window(cron="0 2 * * *", duration=dt.timedelta(hours=25),
                  blackouts=parse_blackouts(["2026-12-20", "2026-12-30"]))  # fmt: skip
    state = status(long, utc("2026-12-25T12:00"))
    assert state.open
    assert state.opened_at == utc("2026-12-21T02:00")
    assert state.closes_at == utc("2026-12-30T03:00")
    assert state.next_opens_at == utc("2026-12-31T02:00")
    assert state.reason == "open since Mon 02:00 UTC, closes Wed 03:00 UTC"
    assert opens(next_openings(long, utc("2026-12-25T12:00"), 1)) == ["2026-12-31 02:00"]


def test_a_window_that_never_closes_within_the_horizon() -> None:
    always = window(cron="0 * * * *", duration=dt.timedelta(hours=2))
    state = status(always, utc("2026-12-25T12:30"), horizon=dt.timedelta(days=3))
    assert state.open
    assert state.closes_at is None and state.grace_until is None and state.next_opens_at is None
    assert state.reason.endswith(", does not close within 3 days")
    assert next_openings(always, utc("2026-12-25T12:30"), 2, horizon=dt.timedelta(days=3)) == []


def test_next_openings_after_a_moment_leave_out_the_current_period() -> None:
    nightly = window(cron="0 2 * * *")
    found = next_openings(nightly, utc("2026-11-28T03:00"), 3)
    assert opens(found) == ["2026-11-29 02:00", "2026-11-30 02:00", "2026-12-01 02:00"]
    assert found[0] == Opening(utc("2026-11-29T02:00"), utc("2026-11-29T04:00"))
    assert opens(next_openings(nightly, utc("2026-11-28T01:59"), 1)) == ["2026-11-28 02:00"]
    assert next_openings(nightly, utc("2026-11-28T01:59"), 0) == []


def test_a_window_that_never_opens() -> None:
    february_30 = window(cron="0 2 30 2 *")
    state = status(february_30, utc("2026-11-28T03:00"))
    assert not state.open
    assert (state.next_opens_at, state.next_closes_at) == (None, None)
    assert state.reason == "closed: does not open within 400 days"
    assert next_openings(february_30, utc("2026-11-28T03:00"), 3) == []


def test_blackouts_over_the_whole_horizon_mean_it_never_opens() -> None:
    frozen = window(cron="0 2 * * *", blackouts=parse_blackouts(["2026-01-01..2028-12-31"]))
    assert status(frozen, utc("2026-06-01T03:00")).reason == (
        "closed: today is a blackout date (2026-06-01); does not open within 400 days"
    )


def test_an_opening_just_inside_the_horizon_is_found() -> None:
    leap = window(cron="0 2 29 2 *")
    assert opens(next_openings(leap, utc("2027-03-01T00:00"), 1)) == ["2028-02-29 02:00"]
    assert next_openings(leap, utc("2027-01-01T00:00"), 1) == []  # 424 days ahead
    far = next_openings(leap, utc("2029-03-01T00:00"), 1, horizon=dt.timedelta(days=3000))
    assert opens(far) == ["2032-02-29 02:00"]


def test_a_far_away_opening_is_dated_in_the_reason() -> None:
    long = window(cron="0 2 * * *", duration=dt.timedelta(hours=25))
    # Open without a break for longer than the horizon: the earliest opening within it is shown.
    state = status(long, utc("2026-12-25T12:00"), horizon=dt.timedelta(days=10))
    assert state.opened_at == utc("2026-12-16T02:00")
    assert state.reason == "open since Wed 2026-12-16 02:00 UTC, does not close within 10 days"


def test_status_as_plain_data() -> None:
    document = status(window(), utc("2026-11-28T03:00")).as_dict()
    assert document == {
        "window": "nightly", "timezone": "UTC", "at": "2026-11-28T03:00:00+00:00", "open": True,
        "opened_at": "2026-11-28T02:00:00+00:00", "closes_at": "2026-11-28T04:00:00+00:00",
        "grace_until": "2026-11-28T04:05:00+00:00", "next_opens_at": "2026-12-05T02:00:00+00:00",
        "next_closes_at": "2026-12-05T04:00:00+00:00", "reason": "open since Sat 02:00 UTC, closes 04:00 UTC",
    }  # fmt: skip
    json.dumps(window(blackouts=parse_blackouts(["2026-12-24"])).as_dict())


# Parsing and construction


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 2 * * *", "invalid cron expression '61 2 * * *' ("),
        ("0 2 * *", "expected 5 fields"),
        ("0 0 2 * * *", "expected 5 fields"),
        ("@reboot", "aliases: @yearly"),
        ("0 2 * * funday", "invalid cron expression"),
        ("", "expected a cron expression"),
    ],
)
def test_invalid_cron_expressions(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_cron(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FREQ=WEKLY", "invalid 'FREQ': WEKLY"),
        ("BYDAY=SA", "FREQ is required"),
        ("FREQ=DAILY;BYHOUR=25", "hour must be in 0..23"),
        ("FREQ=DAILY\nRRULE:FREQ=WEEKLY", "expected one rule, got 2"),
        ("FREQ=DAILY\nEXDATE:2026-12-24", "invalid EXDATE value"),
        ("DTSTART:tomorrow\nRRULE:FREQ=DAILY", "invalid DTSTART"),
    ],
)
def test_invalid_rrules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rrule(text)


def test_valid_values_are_returned() -> None:
    assert parse_cron(" 0 2 * * 6 ") == "0 2 * * 6"
    assert parse_cron("@Weekly") == "@weekly"
    assert parse_rrule("RRULE:FREQ=WEEKLY;BYDAY=SA\n") == "RRULE:FREQ=WEEKLY;BYDAY=SA"
    assert parse_timezone("Europe/Berlin") == "Europe/Berlin"
    assert parse_blackouts([dt.date(2026, 12, 24), "2026-12-28..2027-01-01"]) == (
        DateRange(dt.date(2026, 12, 24), dt.date(2026, 12, 24)), DateRange(dt.date(2026, 12, 28), dt.date(2027, 1, 1)),
    )  # fmt: skip
    assert parse_blackouts("2026-12-24") == (DateRange(dt.date(2026, 12, 24), dt.date(2026, 12, 24)),)
    assert parse_holidays({"country": "de", "subdivision": "by"}) == (HolidayCalendar("DE", "BY"),)
    assert parse_holidays([]) == ()
    assert parse_url("https://hc-ping.example.org/abc") == "https://hc-ping.example.org/abc"
    assert parse_url("env:PING_URL") == "env:PING_URL"


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_timezone, "Europe/Berln", "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
        (parse_timezone, "Nowhere/Special", "an IANA name such as Europe/Berlin"),
        (parse_blackouts, ["2026-12-32"], "expected a date (YYYY-MM-DD) or a range"),
        (parse_blackouts, ["2026-02-30..2026-03-02"], "expected a date (YYYY-MM-DD) or a range"),
        (parse_blackouts, ["christmas"], "got 'christmas'"),
        (parse_blackouts, ["2027-01-06..2026-12-20"], "ends before it starts"),
        (parse_blackouts, [dt.datetime(2026, 12, 24, 2)], "expected a date"),
        (parse_holidays, {"country": "XX"}, "unknown holiday country 'XX'"),
        (parse_holidays, {"country": "DE", "subdivision": "ZZ"}, "unknown subdivision 'ZZ' of DE (known: BB,"),
        (parse_holidays, {"country": "DE", "language": "tlh"}, "unknown holiday language 'tlh' of DE"),
        (parse_holidays, "DE", "expected {country: CODE, subdivision: CODE}"),
        (parse_holidays, {"country": "DE", "state": "BY"}, "unknown key 'state'"),
        (parse_url, "ftp://example.org/x", "expected an http(s) URL"),
    ],
)
def test_invalid_values(parse: Any, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(value)
    assert message in str(caught.value)


def test_a_window_needs_exactly_one_recurrence_and_a_positive_duration() -> None:
    with pytest.raises(ValueError, match="exactly one of 'cron' and 'rrule'"):
        Window("both", dt.timedelta(hours=1), cron="0 2 * * *", rrule="FREQ=DAILY")
    with pytest.raises(ValueError, match="exactly one of 'cron' and 'rrule'"):
        Window("neither", dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="longer than 0"):
        Window("empty", dt.timedelta(0), cron="0 2 * * *")
    with pytest.raises(ValueError, match="unknown time zone"):
        Window("zone", dt.timedelta(hours=1), cron="0 2 * * *", timezone="Mars/Olympus")


def test_find_window_names_the_known_ones() -> None:
    windows = {"nightly": window(), "weekly": window(name="weekly")}
    assert find_window(windows, "weekly").name == "weekly"
    with pytest.raises(UnknownWindow) as caught:
        find_window(windows, "nighty")
    assert str(caught.value) == "unknown window 'nighty' (did you mean 'nightly'? known: nightly, weekly)"
    assert caught.value.exit_code == 3
    with pytest.raises(UnknownWindow, match="defines no windows"):
        find_window({}, "nightly")


# maint.yml


@pytest.fixture(autouse=True)
def no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAINT_CONFIG", raising=False)


def write(directory: Path, text: str) -> Path:
    path = directory / "maint.yml"
    path.write_text(textwrap.dedent(text))
    return path


def config_errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path=path)
    return caught.value.errors


def test_windows_from_maint_yml(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        windows:
          nightly:
            cron: "0 2 * * 6"
            duration: 2h
            timezone: Europe/Berlin
            blackouts: [2026-12-24, "2026-12-28..2027-01-01"]
            holidays: {country: DE, subdivision: BY}
            hosts: "web:&prod"
            playbooks: [updates-apply, health]
            grace: 15m
            ping:
              start: https://hc-ping.example.org/abc/start
              fail: env:PING_FAIL_URL
          monthly:
            rrule: FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0
            duration: 90m
        """)
    loaded = load(path=path)
    assert list(loaded.windows) == ["nightly", "monthly"]
    nightly = loaded.windows["nightly"]
    assert nightly == Window(
        name="nightly", duration=dt.timedelta(hours=2), cron="0 2 * * 6", timezone="Europe/Berlin",
        blackouts=(DateRange(dt.date(2026, 12, 24), dt.date(2026, 12, 24)),
                   DateRange(dt.date(2026, 12, 28), dt.date(2027, 1, 1))),
        holidays=(HolidayCalendar("DE", "BY"),), hosts="web:&prod", playbooks=("updates-apply", "health"),
        grace=dt.timedelta(minutes=15), ping=nightly.ping,
    )  # fmt: skip
    assert (nightly.ping.start, nightly.ping.success, nightly.ping.fail) == (
        "https://hc-ping.example.org/abc/start", None, "env:PING_FAIL_URL",
    )  # fmt: skip
    monthly = loaded.windows["monthly"]
    assert (monthly.timezone, monthly.hosts, monthly.playbooks, monthly.grace) == (
        "UTC", "all", (), dt.timedelta(minutes=5),
    )  # fmt: skip
    assert opens(next_openings(monthly, utc("2026-11-01T00:00"), 1)) == ["2026-11-10 22:00"]
    # The checked options stay in the data, printable as JSON (config show).
    assert loaded.data["windows"]["monthly"]["duration"] == 5400.0
    assert json.loads(json.dumps(loaded.data["windows"], default=str))["nightly"]["blackouts"] == [
        "2026-12-24", "2026-12-28..2027-01-01",
    ]  # fmt: skip


def test_no_windows_by_default(tmp_path: Path) -> None:
    loaded = load(project_dir=tmp_path)
    assert loaded.windows == {}
    assert loaded.data["windows"] == {}


@pytest.mark.parametrize(
    ("body", "line", "option", "expected"),
    [
        ('cron: "61 2 * * *"\n    duration: 2h\n', 3, "windows.nightly.cron",
         "invalid cron expression '61 2 * * *' ([61 2 * * *] is not acceptable, out of range)"),
        ("rrule: FREQ=WEKLY\n    duration: 2h\n", 3, "windows.nightly.rrule",
         "invalid RRULE 'FREQ=WEKLY' (invalid 'FREQ': WEKLY)"),
        ('cron: "@daily"\n    duration: soon\n', 4, "windows.nightly.duration",
         "expected a duration like 90, 15m, 36h or 2d, got 'soon'"),
        ('cron: "@daily"\n    duration: 0\n', 4, "windows.nightly.duration",
         "expected a duration longer than 0, got 0"),
        ('cron: "@daily"\n    duration: 1h\n    timezone: Europe/Berln\n', 5, "windows.nightly.timezone",
         "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
        ('cron: "@daily"\n    duration: 1h\n    blackouts: ["2026-02-30"]\n', 5, "windows.nightly.blackouts",
         "expected a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD), got '2026-02-30'"),
        ('cron: "@daily"\n    duration: 1h\n    holidays: {country: XX}\n', 5, "windows.nightly.holidays",
         "unknown holiday country 'XX' (an ISO 3166-1 code such as DE or US)"),
        ('cron: "@daily"\n    duration: 1h\n    grace: -1\n', 5, "windows.nightly.grace",
         "expected a duration >= 0, got -1"),
        ('cron: "@daily"\n    duration: 1h\n    ping:\n      start: ftp://x\n', 6, "windows.nightly.ping.start",
         "expected an http(s) URL or an env:/file: reference, got 'ftp://x'"),
        ('cron: "@daily"\n    duration: 1h\n    durations: 2h\n', 5, "windows.nightly.durations",
         "unknown option (did you mean 'duration'?)"),
        ('cron: "@daily"\n    rrule: FREQ=DAILY\n    duration: 1h\n', 2, "windows.nightly",
         "give either 'cron' or 'rrule', not both"),
        ("duration: 1h\n", 2, "windows.nightly", "needs 'cron' or 'rrule' (when the window opens)"),
        ('cron: "@daily"\n', 2, "windows.nightly", "needs 'duration' (how long it stays open, e.g. 2h)"),
    ],
)  # fmt: skip
def test_window_errors_name_file_line_and_option(tmp_path: Path, body: str, line: int, option: str,
                                                 expected: str) -> None:  # fmt: skip
    path = tmp_path / "maint.yml"
    path.write_text("windows:\n  nightly:\n    " + body)
    assert config_errors(path) == [f"{path}:{line}: At '{option}': {expected}"]


def test_every_window_error_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        windows:
          first:
            cron: "0 25 * * *"
            duration: 2h
          second:
            cron: "@daily"
            duration: 2h
            timezone: Atlantis/Capital
          "not a name":
            cron: "@daily"
            duration: 1h
          third: every night
        """)
    errors = config_errors(path)
    assert [error.split(": ", 2)[:2] for error in errors] == [
        [f"{path}:3", "At 'windows.first.cron'"],
        [f"{path}:8", "At 'windows.second.timezone'"],
        [f"{path}:9", "At 'windows.not a name'"],
        [f"{path}:12", "At 'windows.third'"],
    ]
    assert errors[3].endswith("expected a mapping of window options (cron or rrule, duration, ...), got 'every night'")


def test_windows_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "windows: [nightly]\n")
    assert config_errors(path) == [f"{path}:1: At 'windows': expected a mapping, got ['nightly']"]


def test_exdate_lines_of_an_rrule_black_out_those_dates(tmp_path: Path) -> None:
    from maint import config as config_module

    path = tmp_path / "maint.yml"
    path.write_text(
        "windows:\n  w:\n    rrule: \"DTSTART:20261101T020000\\nRRULE:FREQ=WEEKLY;BYDAY=SA\\n"
        "EXDATE:20261128T020000,20261212T020000\"\n    duration: 2h\n",
        encoding="utf-8",
    )
    window = config_module.load(path=path).windows["w"]
    saturday = dt.datetime(2026, 11, 28, 2, 30, tzinfo=dt.UTC)
    assert status(window, saturday).reason.startswith("closed: today is a blackout date (2026-11-28)")
    assert status(window, saturday + dt.timedelta(days=7)).open
    assert not status(window, saturday + dt.timedelta(days=14)).open
    path.write_text(
        "windows:\n  w:\n    rrule: \"FREQ=DAILY\\nEXDATE:2026-11-28\"\n    duration: 1h\n", encoding="utf-8"
    )
    with pytest.raises(config_module.ConfigError, match="invalid EXDATE value"):
        config_module.load(path=path)
