"""`maint run --window` over real SSH on the lab, with an injected clock (no waiting for real windows)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import maint.run as engine
from maint.errors import ExitCode
from maint.lab import Lab
from maint.store import Store
from maint.store.history import RunFilter, find_runs

pytestmark = pytest.mark.lab

# Saturdays 02:00-04:00 UTC, one minute of grace.
CONFIG = 'windows:\n  nightly:\n    cron: "0 2 * * 6"\n    duration: 2h\n    grace: 1m\n'
SATURDAY = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def project(tmp_path: Path, steps: int) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "maint.yml").write_text(CONFIG, encoding="utf-8")
    lines = ["name: naps", "steps:"]
    for number in range(1, steps + 1):
        lines += [f"  - id: nap{number}", "    type: command", "    command: sleep 1"]
    (directory / "naps.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def clock_from(start: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that starts at ``start`` and runs at real speed."""
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def request(directory: Path, lab: Lab, **changes: object) -> engine.RunRequest:
    values: dict[str, object] = {
        "playbooks": ["naps.yml"], "inventory": [str(lab.inventory)], "limit": "lab1,lab2",
        "db_url": f"sqlite:///{directory / 'maint.db'}", "project_dir": directory, "tickets": False,
        "window": "nightly",
    }  # fmt: skip
    values.update(changes)
    return engine.RunRequest(**values)  # type: ignore[arg-type]


def test_outside_the_window_the_run_is_recorded_as_not_started(lab: Lab, tmp_path: Path) -> None:
    directory = project(tmp_path, 1)
    with pytest.raises(engine.NotStarted) as refused:
        engine.run(request(directory, lab), clock=clock_from(SATURDAY.replace(hour=5)))
    assert refused.value.exit_code == ExitCode.NOT_STARTED
    assert "window 'nightly' is closed: opens Sat 2026-12-05 02:00 UTC" in str(refused.value)
    (recorded,) = find_runs(Store(f"sqlite:///{directory / 'maint.db'}").engine, RunFilter())
    assert (recorded["status"], recorded["exit_code"]) == ("not-started", 7)
    forced = engine.run(request(directory, lab, ignore_window=True), clock=clock_from(SATURDAY.replace(hour=5)))
    assert forced.run["status"] == "ok"
    assert forced.run["options"]["ignore_window"] is True


def test_the_window_closing_mid_run_starts_no_new_step_and_skips_the_rest(lab: Lab, tmp_path: Path) -> None:
    directory = project(tmp_path, 5)
    close = SATURDAY.replace(hour=4)
    document = engine.run(request(directory, lab), clock=clock_from(close - dt.timedelta(seconds=2.5)))
    by_host: dict[str, list[dict[str, object]]] = {}
    for result in document.results:
        by_host.setdefault(str(result["host"]), []).append(result)
    for host, results in by_host.items():
        statuses = [result["status"] for result in results]
        assert len(statuses) == 5, host
        ran = statuses.count("ok")
        assert 1 <= ran <= 4, (host, statuses)
        assert statuses == ["ok"] * ran + ["skipped"] * (5 - ran)  # nothing runs after a skip
        for result in results[ran:]:
            assert result["summary"] == "window 'nightly' closed at 2026-11-28 04:00 UTC"
        for result in results[:ran]:
            assert str(result["started"]) < "2026-11-28T04:00:00"  # no step started after the close
    assert document.run["exit_code"] == 0
    assert document.run["options"]["window"] == "nightly"


def test_a_window_covers_only_its_hosts(lab: Lab, tmp_path: Path) -> None:
    directory = project(tmp_path, 1)
    config = directory / "maint.yml"
    config.write_text(config.read_text() + "    hosts: lab2\n", encoding="utf-8")
    document = engine.run(request(directory, lab), clock=clock_from(SATURDAY.replace(hour=3)))
    assert {result["host"] for result in document.results} == {"lab2"}
    ignored = engine.run(request(directory, lab, ignore_window=True), clock=clock_from(SATURDAY.replace(hour=3)))
    assert {result["host"] for result in ignored.results} == {"lab1", "lab2"}
