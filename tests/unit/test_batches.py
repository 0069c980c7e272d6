"""Rolling batch sizes and the failure threshold, as Ansible's serial and max_fail_percentage."""

from __future__ import annotations

import pytest

from maint.batches import batches, crossed, parse_percentage, parse_serial

HOSTS = [f"h{number}" for number in range(1, 11)]


@pytest.mark.parametrize(
    ("value", "sizes"),
    [(3, ("3",)), ("3", ("3",)), ("25%", ("25%",)), ([1, 5, "20%"], ("1", "5", "20%")),
     ("[1,5,20%]", ("1", "5", "20%")), ("1, 2", ("1", "2"))],
)  # fmt: skip
def test_parse_serial(value: object, sizes: tuple[str, ...]) -> None:
    assert parse_serial(value) == sizes


@pytest.mark.parametrize("value", [0, "0", "-1", "150%", "x", "", [], True, "1,,x"])
def test_parse_serial_refuses_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError, match="serial"):
        parse_serial(value)


def test_batches_of_a_number_a_percentage_and_a_list_whose_last_size_repeats() -> None:
    assert batches(HOSTS, ("4",)) == [HOSTS[0:4], HOSTS[4:8], HOSTS[8:10]]
    assert batches(HOSTS, ("30%",)) == [HOSTS[0:3], HOSTS[3:6], HOSTS[6:9], HOSTS[9:10]]
    assert batches(HOSTS, ("1", "5", "20%")) == [HOSTS[0:1], HOSTS[1:6], HOSTS[6:8], HOSTS[8:10]]
    assert batches(HOSTS, ()) == [HOSTS]
    assert batches(HOSTS[:3], ("1%",)) == [["h1"], ["h2"], ["h3"]]  # a percentage is at least one host
    assert batches([], ("2",)) == []


def test_threshold_is_strictly_more_than_the_percentage() -> None:
    assert not crossed(1, 4, 25.0)
    assert crossed(2, 4, 25.0)
    assert crossed(1, 1, 0.0)
    assert not crossed(0, 5, 0.0)
    assert not crossed(0, 0, 0.0)


def test_parse_percentage() -> None:
    assert parse_percentage("30%") == 30.0
    assert parse_percentage(0) == 0.0
    for bad in ("x", 101, -1):
        with pytest.raises(ValueError, match="max_fail_percentage"):
            parse_percentage(bad)
