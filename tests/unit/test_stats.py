"""maint.stats (pure) on histories generated here with known answers, and maint.store.history's
queries on a real SQLite store written through the Store API (last attempts, the period, patterns)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from maint.clock import timestamp
from maint.stats import ResultRow, TicketRow, parse_bound, summarize
from maint.store import ResultRecord, RunRecord, Store, history

DAY_ONE = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
SINCE = timestamp(DAY_ONE - dt.timedelta(hours=1))
UNTIL = timestamp(DAY_ONE + dt.timedelta(days=40))


def day(number: int, hours: float = 0) -> str:
    """The stored start of the nightly run of day ``number`` (day 1 is DAY_ONE), plus ``hours``."""
    return timestamp(DAY_ONE + dt.timedelta(days=number - 1, hours=hours))


def series(
    host: str, step: str, statuses: dict[int, str], days: int = 30, step_type: str = "disk.usage"
) -> list[ResultRow]:
    """One (host, check) series over ``days`` nightly runs: ok except the given days' statuses."""
    rows = []
    for number in range(1, days + 1):
        status = statuses.get(number, "ok")
        summary = f"{step} broke" if status in ("failed", "error") else None
        rows.append(ResultRow(host, step, step_type, status, day(number), f"run-{number:02d}", summary))
    return rows


def in_store_order(*groups: Sequence[ResultRow]) -> list[ResultRow]:
    """The rows in the order the store sends them: by run start, then run id."""
    return sorted((row for group in groups for row in group), key=lambda row: (row.started, row.run_id))


# ---------------------------------------------------------------------------------------------------
# The definitions, on rows


def test_episodes_and_mtbf_of_one_series() -> None:
    failing = {3: "failed", 4: "failed", 10: "error", 20: "failed", 21: "failed", 22: "failed"}
    # Other series interleave (run order): they must not split or join web-03's episodes.
    rows = in_store_order(series("web-03", "root-disk", failing), series("web-04", "root-disk", {5: "failed"}))
    found = summarize(rows, [], SINCE, UNTIL)
    host = found.hosts[0]
    assert (host.host, host.results, host.failures, host.episodes) == ("web-03", 30, 6, 3)
    assert host.failure_rate == round(6 / 30, 4)
    # Episodes start on days 3, 10 and 20: intervals of 7 and 10 days.
    assert host.mtbf_hours == (7 * 24 + 10 * 24) / 2 == 204.0
    (check,) = found.checks
    assert (check.check, check.type, check.hosts, check.results, check.failures, check.episodes) == (
        "root-disk", "disk.usage", 2, 60, 7, 4,
    )  # fmt: skip
    assert check.mtbf_hours == 204.0  # web-04's single episode has no interval
    assert (check.mttr_hours, check.tickets_resolved, check.tickets_active) == (None, 0, 0)


def test_one_episode_has_no_mtbf_and_a_clean_series_no_rate_of_failure() -> None:
    found = summarize(
        in_store_order(series("a", "disk", {5: "failed", 6: "failed"}), series("b", "disk", {})), [], SINCE, UNTIL
    )
    hosts = {line.host: line for line in found.hosts}
    assert (hosts["a"].episodes, hosts["a"].mtbf_hours) == (1, None)
    assert (hosts["b"].failures, hosts["b"].failure_rate, hosts["b"].mtbf_hours) == (0, 0.0, None)
    assert [line.host for line in found.hosts] == ["a", "b"]  # worst first


def test_host_mtbf_pools_its_series_and_check_mtbf_pools_its_hosts() -> None:
    rows = in_store_order(
        series("a", "disk", {1: "failed", 3: "failed"}),  # interval 2 days
        series("a", "backup", {1: "failed", 7: "failed"}, step_type="backup.restic"),  # 6 days
        series("b", "disk", {2: "failed", 12: "failed"}),  # 10 days
    )
    found = summarize(rows, [], SINCE, UNTIL)
    hosts = {line.host: line for line in found.hosts}
    checks = {line.check: line for line in found.checks}
    assert hosts["a"].mtbf_hours == (2 * 24 + 6 * 24) / 2
    assert hosts["b"].mtbf_hours == 10 * 24
    assert checks["disk"].mtbf_hours == (2 * 24 + 10 * 24) / 2
    assert checks["backup"].mtbf_hours == 6 * 24
    assert checks["disk"].hosts == 2


def test_unreachable_is_counted_per_host_not_as_a_failure_and_does_not_split_an_episode() -> None:
    disk = series("db-01", "disk", {4: "failed", 5: "unreachable", 6: "unreachable", 7: "failed"})
    backup = series("db-01", "backup", {5: "unreachable", 6: "unreachable"}, step_type="backup.restic")
    found = summarize(in_store_order(disk, backup), [], SINCE, UNTIL)
    (host,) = found.hosts
    # Unreachable in runs 5 and 6 (once per run, whatever the number of its checks).
    assert host.unreachable == 2
    assert (host.results, host.failures, host.episodes) == (56, 2, 1)
    checks = {line.check: line for line in found.checks}
    assert (checks["backup"].results, checks["backup"].failures) == (28, 0)


def test_a_warning_ends_an_episode_and_skipped_is_ignored() -> None:
    rows = series("a", "disk", {2: "failed", 3: "warning", 4: "failed", 5: "skipped", 6: "failed"})
    (host,) = summarize(rows, [], SINCE, UNTIL).hosts
    assert (host.results, host.failures, host.episodes) == (29, 3, 2)
    assert host.mtbf_hours == 2 * 24


def test_mttr_from_tickets_resolved_within_the_period() -> None:
    tickets = [
        TicketRow("web-03", "root-disk", "disk.usage", "resolved", day(3), day(5, hours=6)),  # 54 h
        TicketRow("web-03", "root-disk", "disk.usage", "resolved", day(10), day(11)),  # 24 h
        TicketRow("web-03", "root-disk", "disk.usage", "open", day(20), None),
        TicketRow("web-01", "backup", "backup.restic", "acknowledged", day(15), None),
        # Resolved before the period: neither in MTTR nor active.
        TicketRow("web-01", "backup", "backup.restic", "resolved", day(-20), day(-10)),
    ]
    found = summarize([], tickets, day(1), UNTIL)
    hosts = {line.host: line for line in found.hosts}
    assert (hosts["web-03"].mttr_hours, hosts["web-03"].tickets_resolved, hosts["web-03"].tickets_active) == (
        39.0, 2, 1,
    )  # fmt: skip
    assert (hosts["web-01"].mttr_hours, hosts["web-01"].tickets_resolved, hosts["web-01"].tickets_active) == (
        None, 0, 1,
    )  # fmt: skip
    checks = {line.check: line for line in found.checks}
    assert (checks["root-disk"].mttr_hours, checks["root-disk"].tickets_resolved) == (39.0, 2)
    assert checks["backup"].tickets_active == 1
    # Tickets alone list the host and check, with no result counted.
    assert (hosts["web-03"].results, hosts["web-03"].failure_rate) == (0, None)


def test_top_recurring_failures_order_limit_and_details() -> None:
    rows = in_store_order(
        # disk: 3 episodes, 4 failures, on two hosts
        series("web-02", "disk", {2: "failed", 9: "failed", 10: "failed"}),
        series("web-01", "disk", {20: "failed"}),
        # backup: 3 episodes, 6 failures: ahead of disk on failures
        series("db-01", "backup", {1: "failed", 2: "failed", 5: "failed", 6: "failed", 8: "failed", 9: "failed"},
               step_type="backup.restic"),
        # certs: 1 episode of 10 failures: fewer episodes, so after both
        series("web-01", "certs", {number: "failed" for number in range(11, 21)}, step_type="cert.expiry"),
        series("web-01", "clean", {}, step_type="command"),
    )  # fmt: skip
    tickets = [
        TicketRow("db-01", "backup", "backup.restic", "resolved", day(1), day(3)),
        TicketRow("db-01", "backup", "backup.restic", "resolved", day(5), day(7)),
        TicketRow("web-02", "disk", "disk.usage", "open", day(9), None),
    ]
    found = summarize(rows, tickets, SINCE, UNTIL, top=10)
    assert [(entry.check, entry.episodes, entry.failures) for entry in found.top] == [
        ("backup", 3, 6), ("disk", 3, 4), ("certs", 1, 10),
    ]  # fmt: skip
    disk = found.top[1]
    assert (disk.type, disk.hosts_affected, disk.hosts, disk.last_seen) == (
        "disk.usage", 2, ["web-01", "web-02"], day(20),
    )  # fmt: skip
    assert (disk.summary, disk.tickets_opened) == ("disk broke", 1)
    assert found.top[0].tickets_opened == 2
    assert [entry.check for entry in summarize(rows, tickets, SINCE, UNTIL, top=2).top] == ["backup", "disk"]
    assert [line.check for line in found.checks] == ["backup", "disk", "certs", "clean"]


def test_the_most_frequent_summary_wins_and_ties_go_to_the_first_alphabetically() -> None:
    rows = [
        ResultRow("a", "disk", "disk.usage", "failed", day(1), "r1", "/ 97% used"),
        ResultRow("a", "disk", "disk.usage", "failed", day(2), "r2", "/ 95% used"),
        ResultRow("a", "disk", "disk.usage", "failed", day(3), "r3", "/ 97% used"),
        ResultRow("b", "disk", "disk.usage", "failed", day(1), "r1", "/ 91% used"),
        ResultRow("b", "disk", "disk.usage", "failed", day(2), "r2", "/ 91% used"),
    ]
    assert summarize(in_store_order(rows), [], SINCE, UNTIL).top[0].summary == "/ 91% used"
    assert summarize(rows[:3], [], SINCE, UNTIL).top[0].summary == "/ 97% used"


def test_rows_out_of_run_order_are_refused() -> None:
    rows = series("a", "disk", {}, days=3)
    with pytest.raises(ValueError, match="must be ordered by run start"):
        summarize(list(reversed(rows)), [], SINCE, UNTIL)
    by_series = [*series("a", "disk", {}, days=2), *series("b", "disk", {}, days=2)]
    with pytest.raises(ValueError, match="must be ordered by run start"):
        summarize(by_series, [], SINCE, UNTIL)


def test_as_dict_keeps_numbers_as_numbers_and_unknowns_as_none() -> None:
    document = summarize(series("a", "disk", {2: "failed"}, days=4), [], SINCE, UNTIL).as_dict()
    assert set(document) == {"since", "until", "hosts", "checks", "top"}
    assert document["hosts"][0] == {
        "host": "a", "results": 4, "failures": 1, "failure_rate": 0.25, "episodes": 1, "unreachable": 0,
        "mtbf_hours": None, "mttr_hours": None, "tickets_resolved": 0, "tickets_active": 0,
    }  # fmt: skip


NOW = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "end_of_day", "expected"),
    [
        ("30d", False, NOW - dt.timedelta(days=30)),
        ("12h", False, NOW - dt.timedelta(hours=12)),
        ("2w", False, NOW - dt.timedelta(weeks=2)),
        ("90", False, NOW - dt.timedelta(seconds=90)),
        ("2026-03-01", False, dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
        ("2026-03-01", True, dt.datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=dt.UTC)),
        ("2026-03-01T06:30:00Z", True, dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.UTC)),
        ("2026-03-01T06:30:00+02:00", False, dt.datetime(2026, 3, 1, 4, 30, tzinfo=dt.UTC)),
        ("2026-03-01 06:30", False, dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.UTC)),
    ],
)
def test_parse_bound(value: str, end_of_day: bool, expected: dt.datetime) -> None:
    assert parse_bound(value, NOW, end_of_day=end_of_day) == expected


@pytest.mark.parametrize("value", ["3x", "yesterday", "-5d", "", "2026-13-01"])
def test_parse_bound_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="expected an age like 30d"):
        parse_bound(value, NOW)


@pytest.mark.parametrize(
    ("pattern", "like"),
    [
        ("web-03", "web-03"),
        ("web-*", "web-%"),
        ("db-0?", "db-0_"),
        ("web-[12]*", "web-_%"),
        ("web-[!]x]", "web-_"),
        ("odd[", "odd["),
        ("50%_a\\b", "50\\%\\_a\\\\b"),
    ],
)
def test_like_pattern_narrows_at_least_what_fnmatch_matches(pattern: str, like: str) -> None:
    assert history.like_pattern(pattern) == like


# ---------------------------------------------------------------------------------------------------
# The queries, on a real SQLite store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store("sqlite:///" + str(tmp_path / "history.db"))
    yield opened
    opened.close()


def record(store: Store, number: int, outcomes: dict[tuple[str, str], str | tuple[str, ...]]) -> None:
    """Store the nightly run of day ``number``: per (host, step) a status, or the statuses of its attempts."""
    run_id = f"run-{number:02d}"
    store.create_run(
        RunRecord(
            id=run_id, started=day(number), operator="tester", controller="ci", argv=["maint", "run", "nightly"],
            reason=None, playbooks=[{"name": "nightly", "path": "nightly.yml", "digest": "x", "builtin": False}],
            inventory={"sources": ["hosts.yml"], "digest": "y"}, maint_version="0", ci={}, options={},
            hosts=sorted({host for host, _step in outcomes}),
        )
    )  # fmt: skip
    records = []
    for (host, step), statuses in outcomes.items():
        for attempt, status in enumerate((statuses,) if isinstance(statuses, str) else statuses, start=1):
            records.append(
                ResultRecord(
                    run_id=run_id, host=host, playbook="nightly", step=step, step_type="disk.usage",
                    status=status, exit_code=0 if status == "ok" else 2, summary=f"{step} {status} #{attempt}",
                    metrics={}, output="x" * 200, started=day(number), duration=0.1, attempt=attempt,
                )
            )  # fmt: skip
    store.add_results(records)
    last = {value if isinstance(value, str) else value[-1] for value in outcomes.values()}
    final = "failed" if last & {"failed", "error"} else "ok"
    store.finish_run(run_id, final, 4 if final == "failed" else 0, day(number, hours=0.5), {})


def test_the_last_attempt_wins_and_runs_outside_the_period_are_ignored(store: Store) -> None:
    record(store, 1, {("a", "disk"): "failed", ("b", "disk"): "ok"})
    record(store, 2, {("a", "disk"): ("failed", "ok"), ("b", "disk"): ("ok", "failed")})  # remediation
    record(store, 3, {("a", "disk"): "failed", ("b", "disk"): "ok"})
    record(store, 9, {("a", "disk"): "failed", ("b", "disk"): "failed"})  # after --until
    found = history.summarize(store.engine, day(1), day(3, hours=1))
    hosts = {line.host: line for line in found.hosts}
    # a: failed, ok (attempt 2), failed -> 2 episodes, 2 days apart; b: ok, failed (attempt 2), ok.
    assert (hosts["a"].results, hosts["a"].failures, hosts["a"].episodes, hosts["a"].mtbf_hours) == (3, 2, 2, 48.0)
    assert (hosts["b"].results, hosts["b"].failures, hosts["b"].episodes) == (3, 1, 1)
    assert found.top[0].summary == "disk failed #1"  # a's two, against b's one "disk failed #2"
    later = history.summarize(store.engine, day(2), UNTIL)
    assert {line.host: line.failures for line in later.hosts} == {"a": 2, "b": 2}


def test_find_runs_by_result_uses_the_last_attempt_and_patterns(store: Store) -> None:
    record(store, 1, {("web-1", "disk"): "failed", ("web-2", "disk"): "ok", ("WEB-3", "disk"): "failed"})
    record(store, 2, {("web-1", "disk"): ("failed", "ok"), ("web-2", "disk"): "ok"})
    record(store, 3, {("web-1", "disk"): "ok", ("web-2", "disk"): ("ok", "failed")})

    def ids(wanted: history.RunFilter) -> list[str]:
        return [run["id"] for run in history.find_runs(store.engine, wanted)]

    Filter = history.RunFilter
    assert ids(Filter(host="web-1", statuses=["failed"])) == ["run-01"]
    assert ids(Filter(host="web-1", statuses=["ok"])) == ["run-03", "run-02"]
    # Shell patterns are case-sensitive on every database (SQLite's LIKE is not).
    assert ids(Filter(host="web-*", statuses=["failed"])) == ["run-03", "run-01"]
    assert ids(Filter(host="web-[13]", statuses=["failed"])) == ["run-01"]
    assert ids(Filter(host="web-*", statuses=["failed"], limit=1)) == ["run-03"]
    assert ids(Filter(check="d?sk", since=day(2), until=day(2, hours=1))) == ["run-02"]
    assert ids(Filter(statuses=["failed"])) == ["run-03", "run-01"]
    assert ids(Filter(since=day(2))) == ["run-03", "run-02"]
    found = history.find_runs(store.engine, history.RunFilter(host="web-2", statuses=["failed"]))
    assert found[0]["matches"] == [{"host": "web-2", "playbook": "nightly", "step": "disk", "status": "failed"}]
    assert "results" not in found[0]
