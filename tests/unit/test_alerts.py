"""Alert state per (host, check): soft and hard failures, flap detection with hysteresis, remediations."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from maint import alerts
from maint.alerts import AlertState, FlapSettings, Observation, dedup_key, observe, state_change_percent

KEY = "web1/disk"


def fresh() -> AlertState:
    return AlertState(key=KEY, host="web1", check="disk")


def moment(index: int) -> str:
    return f"2026-11-20T{index // 60:02d}:{index % 60:02d}:00.000Z"


def feed(
    outcomes: Sequence[bool],
    state: AlertState | None = None,
    open_after: int = 1,
    flap: FlapSettings | None = None,
    keep: int = 20,
    remediated: Sequence[bool] | None = None,
) -> list[AlertState]:
    """Observe ``outcomes`` (True: failing) one after the other; returns the state after each."""
    state = state or fresh()
    states = []
    start = len(state.history)
    for offset, failing in enumerate(outcomes):
        index = start + offset
        tried = bool(remediated[offset]) if remediated else False
        state = observe(
            state, Observation(f"run-{index}", failing, tried), moment(index), open_after=open_after, flap=flap,
            keep=keep,
        )
        states.append(state)
    return states


def history(outcomes: Sequence[bool]) -> list[dict[str, object]]:
    return [{"run": f"run-{index}", "fail": failing, "remediated": False} for index, failing in enumerate(outcomes)]


def test_dedup_key_joins_host_and_check() -> None:
    assert dedup_key("web1", "disk") == "web1/disk"


def test_failures_are_soft_until_open_after_then_hard() -> None:
    states = feed([True, True, True, True], open_after=3)
    assert [state.hard for state in states] == [False, False, True, True]
    assert [state.consecutive_failures for state in states] == [1, 2, 3, 4]
    assert all(state.failing for state in states)
    assert all(state.consecutive_passes == 0 for state in states)


def test_first_failure_is_hard_with_the_default_open_after() -> None:
    (state,) = feed([True])
    assert state.hard
    assert state.failing


def test_a_pass_resets_the_failure_count_and_the_hard_flag() -> None:
    states = feed([True, True, False, True], open_after=2)
    assert [state.hard for state in states] == [False, True, False, False]
    assert [state.consecutive_failures for state in states] == [1, 2, 0, 1]
    assert [state.consecutive_passes for state in states] == [0, 0, 1, 0]


def test_passes_count_up_and_failures_reset_them() -> None:
    states = feed([False, False, False, True, False])
    assert [state.consecutive_passes for state in states] == [1, 2, 3, 0, 1]
    assert not any(state.hard for state in states if not state.failing)


def test_since_is_set_on_the_first_observation_and_changes_only_with_the_state() -> None:
    states = feed([False, False, True, True, False])
    assert states[0].since == moment(0)
    assert states[1].since == moment(0)
    assert states[2].since == moment(2)
    assert states[3].since == moment(2)
    assert states[4].since == moment(4)


def test_first_observation_failing_sets_since() -> None:
    (state,) = feed([True])
    assert state.since == moment(0)


def test_last_run_and_history_record_each_observation() -> None:
    states = feed([True, False], remediated=[True, False])
    assert states[-1].last_run == "run-1"
    assert list(states[-1].history) == [
        {"run": "run-0", "fail": True, "remediated": True},
        {"run": "run-1", "fail": False, "remediated": False},
    ]


def test_observe_returns_a_new_state_and_leaves_the_previous_one_alone() -> None:
    before = fresh()
    after = observe(before, Observation("run-0", True), moment(0))
    assert before.history == ()
    assert before.consecutive_failures == 0
    assert after is not before
    assert after.key == KEY and after.host == "web1" and after.check == "disk"


def test_history_is_bounded_by_keep() -> None:
    states = feed([True] * 30, keep=12, flap=FlapSettings(window=5))
    assert len(states[-1].history) == 12
    assert states[-1].history[0]["run"] == "run-18"
    assert states[-1].history[-1]["run"] == "run-29"


def test_history_keeps_at_least_the_flap_window() -> None:
    states = feed([False] * 30, keep=4, flap=FlapSettings(window=15))
    assert len(states[-1].history) == 15
    assert states[-1].history[-1]["run"] == "run-29"


@pytest.mark.parametrize(
    ("outcomes", "window", "expected"),
    [
        ([], 10, 0.0),
        ([True], 10, 0.0),
        ([True, True], 10, 0.0),
        ([True, False], 10, 100.0),
        ([True, False, True, False, True], 10, 100.0),
        ([True, True, False, False], 10, 100.0 / 3),
        ([False, False, False, False, True], 10, 25.0),
        # Only the last `window` entries count: the early changes fall out.
        ([True, False, True, False, False, False, False], 4, 0.0),
        ([True, False, True, False, False, False, False], 5, 25.0),
    ],
)
def test_state_change_percent(outcomes: list[bool], window: int, expected: float) -> None:
    assert state_change_percent(history(outcomes), window) == pytest.approx(expected)


def test_flapping_waits_for_half_a_window_of_history() -> None:
    flap = FlapSettings(window=10, high=50, low=25)
    states = feed([True, False, True, False, True], flap=flap)
    # 100 % of changes from the second observation on, but 5 entries are needed (half of 10).
    assert [state.flapping for state in states] == [False, False, False, False, True]


def test_flapping_needs_at_least_three_observations_with_a_small_window() -> None:
    flap = FlapSettings(window=3, high=50, low=25)
    states = feed([True, False, True], flap=flap)
    assert [state.flapping for state in states] == [False, False, True]


def test_flapping_starts_exactly_at_the_high_threshold() -> None:
    flap = FlapSettings(window=5, high=50, low=10)
    # F F F P F: 0 %, 33 %, then 2 changes of 4 = 50 % with the fifth observation.
    states = feed([True, True, True, False, True], flap=flap)
    assert state_change_percent(states[-1].history, 5) == pytest.approx(50.0)
    assert [state.flapping for state in states] == [False, False, False, False, True]


def test_just_below_the_high_threshold_does_not_flap() -> None:
    flap = FlapSettings(window=5, high=51, low=10)
    states = feed([True, True, True, False, True], flap=flap)
    assert not any(state.flapping for state in states)


def test_flapping_has_hysteresis_between_low_and_high() -> None:
    flap = FlapSettings(window=5, high=60, low=30)
    states = feed([True, False, True, False, True], flap=flap)
    assert states[-1].flapping  # 4 changes of 4: 100 %
    # Stable failures push the changes out of the window: 75 %, 50 %, 25 %, 0 %.
    stable = feed([True, True, True, True], state=states[-1], flap=flap)
    percents = [state_change_percent(state.history, 5) for state in stable]
    assert percents == pytest.approx([75.0, 50.0, 25.0, 0.0])
    # 50 % is between low (30) and high (60): still flapping; 25 % is below low: stopped.
    assert [state.flapping for state in stable] == [True, True, False, False]


def test_not_flapping_stays_not_flapping_between_low_and_high() -> None:
    flap = FlapSettings(window=5, high=60, low=30)
    # Last 5: F F F P F -> 2 changes of 4 = 50 %: between low and high, never started.
    states = feed([True, True, True, False, True], flap=flap)
    assert state_change_percent(states[-1].history, 5) == pytest.approx(50.0)
    assert not any(state.flapping for state in states)


def test_flapping_stops_only_below_low_not_at_low() -> None:
    flap = FlapSettings(window=5, high=60, low=25)
    states = feed([True, False, True, False, True, True, True, True], flap=flap)
    # After the 7th observation: last 5 = F P F F F -> 2 of 4 = 50 %; after the 8th: P F F F F -> 25 %.
    assert state_change_percent(states[-1].history, 5) == pytest.approx(25.0)
    assert states[-1].flapping  # 25 % is not below 25 %
    (after,) = feed([True], state=states[-1], flap=flap)
    assert state_change_percent(after.history, 5) == pytest.approx(0.0)
    assert not after.flapping


def test_flapping_restarts_after_it_stopped() -> None:
    flap = FlapSettings(window=4, high=60, low=30)
    states = feed([True, False, True, False, False, False, False, True, False, True], flap=flap)
    flags = [state.flapping for state in states]
    assert flags[3] is True
    assert flags[6] is False
    assert flags[-1] is True


def test_remediations_counts_within_the_last_runs() -> None:
    outcomes = [True, False, True, False, False, True]
    tried = [True, False, True, False, False, True]
    state = feed(outcomes, remediated=tried)[-1]
    assert state.remediations(6) == 3
    assert state.remediations(10) == 3
    assert state.remediations(3) == 1
    assert state.remediations(4) == 2
    assert fresh().remediations(5) == 0


def test_remediations_forget_what_fell_out_of_the_history() -> None:
    state = feed([False] * 8, remediated=[True] * 8, keep=5, flap=FlapSettings(window=3))[-1]
    assert len(state.history) == 5
    assert state.remediations(10) == 5


def test_initial_state_is_a_stretch_of_passes_and_quiet() -> None:
    start = alerts.initial("web1/disk", "web1", "disk", passes=3)
    assert [entry["fail"] for entry in start.history] == [False, False, False]
    assert alerts.is_quiet(start)
    assert alerts.state_change_percent(start.history, 4) == 0.0


SHORT = FlapSettings(window=3)


def test_is_quiet_only_without_failure_remediation_or_flapping_in_the_history() -> None:
    start = alerts.initial("web1/disk", "web1", "disk", passes=2)
    failed = alerts.observe(start, alerts.Observation("r1", failing=True), "2026-11-20T02:00:00Z", keep=3, flap=SHORT)
    assert not alerts.is_quiet(failed)
    passed = alerts.observe(failed, alerts.Observation("r2", failing=False), "2026-11-21T02:00Z", keep=3, flap=SHORT)
    assert not alerts.is_quiet(passed)  # the failure is still in the window
    for number in (3, 4, 5):
        passed = alerts.observe(passed, alerts.Observation(f"r{number}", failing=False), "2026-11-22T02:00:00.000Z",
                                keep=3, flap=SHORT)  # fmt: skip
    assert alerts.is_quiet(passed)
    fixed = alerts.observe(passed, alerts.Observation("r6", failing=False, remediated=True), "2026-11-23T02:00:00Z",
                           keep=3, flap=SHORT)  # fmt: skip
    assert not alerts.is_quiet(fixed)
