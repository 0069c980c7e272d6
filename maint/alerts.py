"""Alert state per (host, check): consecutive failures and passes, soft/hard, flapping.

Pure functions over small records, so every transition is unit-testable; the store keeps one
:class:`AlertState` per dedup key and the ticket policy reads the transition.

- A failure is soft until ``open_after`` consecutive failures make it hard (only a hard failure
  opens a ticket); a pass resets the count.
- Flapping (as in Nagios): over the last ``window`` observations, the share of state changes. It
  starts when the share reaches ``high`` percent and stops only when it falls below ``low``
  (hysteresis), so a check near the threshold does not flap in and out of "flapping" itself.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SEPARATOR = "/"
UNREACHABLE_CHECK = "unreachable"


def dedup_key(host: str, check: str) -> str:
    """The dedup key of a (host, check) pair: ``HOST/CHECK`` (stable across runs and versions)."""
    return f"{host}{SEPARATOR}{check}"


@dataclass(frozen=True)
class Observation:
    """What one run saw of a (host, check): failing or not, and the remediation it tried."""

    run_id: str
    failing: bool
    remediated: bool = False


@dataclass(frozen=True)
class AlertState:
    """The state of one (host, check) after the observations so far."""

    key: str
    host: str
    check: str
    failing: bool = False
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    hard: bool = False
    flapping: bool = False
    since: str = ""  # when the current failing/passing state began
    last_run: str = ""
    # Oldest first: {"run": id, "fail": bool, "remediated": bool}; bounded by `keep`.
    history: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def remediations(self, runs: int) -> int:
        """How many of the last ``runs`` observations tried a remediation."""
        return sum(1 for entry in list(self.history)[-runs:] if entry.get("remediated"))


def initial(key: str, host: str, check: str, passes: int = 0) -> AlertState:
    """The state of a (host, check) with nothing stored: it has been passing.

    ``passes`` fills the history with that many passes (the flap window less one), so a check
    that fails for the first time after a quiet stretch is judged as after a run of passes.
    """
    entry = {"run": "", "fail": False, "remediated": False}
    return AlertState(key=key, host=host, check=check, history=tuple(dict(entry) for _ in range(passes)))


def is_quiet(state: AlertState) -> bool:
    """Whether ``state`` says nothing :func:`initial` does not: passing, no failure or remediation in its
    history, not flapping. The store keeps no row for such a key, so a healthy fleet costs no writes."""
    return (
        not state.failing
        and not state.flapping
        and not any(entry.get("fail") or entry.get("remediated") for entry in state.history)
    )


@dataclass(frozen=True)
class FlapSettings:
    """Flap detection: look at the last ``window`` observations; start at ``high`` %, stop below ``low`` %."""

    window: int = 10
    high: float = 50.0
    low: float = 25.0


def state_change_percent(history: Sequence[Mapping[str, Any]], window: int) -> float:
    """The share (0-100) of state changes between consecutive entries among the last ``window``."""
    recent = [bool(entry["fail"]) for entry in list(history)[-window:]]
    if len(recent) < 2:
        return 0.0
    changes = sum(1 for before, after in itertools.pairwise(recent) if before != after)
    return 100.0 * changes / (len(recent) - 1)


def observe(
    previous: AlertState,
    observation: Observation,
    now: str,
    open_after: int = 1,
    flap: FlapSettings | None = None,
    keep: int = 20,
) -> AlertState:
    """The state after ``observation``; ``now`` is the observation's time (ISO 8601).

    ``keep`` bounds the stored history (at least the flap window and the remediation window).
    """
    flap = flap or FlapSettings()
    entry = {"run": observation.run_id, "fail": observation.failing, "remediated": observation.remediated}
    history = [*previous.history, entry][-max(keep, flap.window):]
    changed = observation.failing != previous.failing or not previous.since
    if observation.failing:
        failures, passes = previous.consecutive_failures + 1, 0
    else:
        failures, passes = 0, previous.consecutive_passes + 1
    percent = state_change_percent(history, flap.window)
    # Too few observations say nothing about flapping: wait for half a window.
    enough = len(history) >= max(3, flap.window // 2)
    flapping = previous.flapping
    if not flapping and enough and percent >= flap.high:
        flapping = True
    elif flapping and percent < flap.low:
        flapping = False
    return dataclasses.replace(
        previous,
        failing=observation.failing,
        consecutive_failures=failures,
        consecutive_passes=passes,
        hard=observation.failing and failures >= open_after,
        flapping=flapping,
        since=now if changed else previous.since,
        last_run=observation.run_id,
        history=tuple(history),
    )
