"""`maint run --window` over real SSH on the lab, with an injected clock (no waiting for real windows).

The window's other cases (closed: recorded not started, and --ignore-window; a window's own hosts) run
in-process in tests/unit/test_run_in_process.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import maint.run as engine
from maint.lab import Lab

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
