"""Host pattern syntax (maint.inventory.patterns) and timeout values (maint.checks.timeout_seconds)."""

from __future__ import annotations

import math

import pytest

from maint.checks import MAX_TIMEOUT, timeout_seconds
from maint.inventory.patterns import check_pattern

MALFORMED = {
    "web:&": "'&' needs a name after it",
    "web:!": "'!' needs a name after it",
    "&": "'&' needs a name after it",
    "!": "'!' needs a name after it",
    "all:&:db": "'&' needs a name after it",
    "&&": "one '&' or '!' per term",
    ":": "an empty term",
    "web::db": "an empty term",
    "web :": "an empty term",
    ",": "an empty term between ',' separators",
    "web,,db": "an empty term between ',' separators",
    ",web": "an empty term between ',' separators",
    "web[": "unbalanced '[' and ']'",
    "web[1:": "unbalanced '[' and ']'",
    "web[0:1": "unbalanced '[' and ']'",
    "web]": "unbalanced '[' and ']'",
    "[": "unbalanced '[' and ']'",
    "*[": "unbalanced '[' and ']'",
    "~[": "unbalanced '[' and ']'",
    "web[,db": "unbalanced '[' and ']'",
    "~": "'~' needs a regular expression",
    "~(": "invalid regular expression",
    "~*": "invalid regular expression",
    "web[]": "empty brackets",
    "web[:]": "invalid subscript",
    "web[1:2:3]": "invalid subscript",
    "web[0:-1]": "invalid subscript",
    "": "empty host pattern",
    "   ": "empty host pattern",
}

VALID = [
    "all", "*", "web", "web*", "db-0?", "web:&odd:!canary", "web,db", "web1,", "lab[0:2]", "web[-1]",
    "web[1:]", "web[1-3]", "web[12]x", "web[a]", "~web\\d+", "~web[0-9]:db", "web[1:3],db", "@hosts.txt",
    "10.0.0.1", "fe80::1", "host.example.com", "web db", "!web", "&web",
]  # fmt: skip


@pytest.mark.parametrize("pattern", list(MALFORMED))
def test_malformed_patterns_are_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(ValueError, match=MALFORMED[pattern].replace("[", r"\[").replace("(", r"\(")):
        check_pattern(pattern)


@pytest.mark.parametrize("pattern", VALID)
def test_the_documented_patterns_pass(pattern: str) -> None:
    check_pattern(pattern)


@pytest.mark.parametrize(
    "value", [-5, 0, "0", "-3", "0s", math.inf, math.nan, "inf", MAX_TIMEOUT + 1, "8d", "abc", True]
)
def test_timeouts_must_be_longer_than_zero_and_finite(value: object) -> None:
    with pytest.raises(ValueError, match="there is no 'no limit'"):
        timeout_seconds(value)


@pytest.mark.parametrize(("value", "seconds"), [(90, 90.0), ("15m", 900.0), ("2.5", 2.5), ("7d", MAX_TIMEOUT)])
def test_timeouts_in_seconds_or_durations(value: object, seconds: float) -> None:
    assert timeout_seconds(value) == seconds
