"""Rolling batches (``serial``) and the failure threshold (``max_fail_percentage``), as Ansible has them.

``serial`` is a batch size: a number of hosts (``5``), a share of the run's hosts (``20%``), or a list
of them (``[1, 5, "20%"]``: the first batch of 1 host, the second of 5, then 20 % each, the last size
repeating). A batch finishes every step on its hosts before the next one starts; when more than
``max_fail_percentage`` % of a batch's hosts failed, the remaining batches do not start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_serial(value: Any) -> tuple[str, ...]:
    """The batch sizes of a ``serial`` value (a number, ``N%``, a list, or ``[1,5,20%]`` text).

    Raises ValueError naming what is wrong.
    """
    if isinstance(value, bool):
        raise ValueError(f"serial must be a number of hosts, a percentage or a list of them, got {value!r}")
    if isinstance(value, (int, float)):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        items = [part for part in text.split(",") if part.strip()]
    if not items:
        raise ValueError("serial is empty")
    sizes = []
    for item in items:
        match = SIZE.match(str(item))
        if not match or float(match.group(1)) <= 0 or (match.group(2) and float(match.group(1)) > 100):
            raise ValueError(f"bad serial size {item!r}: expected a number of hosts >= 1 or a percentage 1-100%")
        sizes.append(f"{match.group(1)}{match.group(2)}")
    return tuple(sizes)


def batches(hosts: Sequence[str], sizes: Sequence[str]) -> list[list[str]]:
    """``hosts`` in batches of ``sizes`` (the last size repeats; a percentage is of all hosts, at least 1)."""
    if not sizes:
        return [list(hosts)] if hosts else []
    counts = []
    for size in sizes:
        if size.endswith("%"):
            counts.append(max(1, math.floor(len(hosts) * float(size[:-1]) / 100)))
        else:
            counts.append(max(1, int(float(size))))
    found: list[list[str]] = []
    start = 0
    index = 0
    while start < len(hosts):
        count = counts[min(index, len(counts) - 1)]
        found.append(list(hosts[start : start + count]))
        start += count
        index += 1
    return found


def parse_percentage(value: Any) -> float:
    """A ``max_fail_percentage`` (0-100); raises ValueError."""
    try:
        number = float(str(value).rstrip("%"))
    except ValueError:
        raise ValueError(f"max_fail_percentage must be a number from 0 to 100, got {value!r}") from None
    if not 0 <= number <= 100:
        raise ValueError(f"max_fail_percentage must be from 0 to 100, got {value!r}")
    return number


def crossed(failed: int, total: int, percentage: float) -> bool:
    """Whether ``failed`` of ``total`` hosts is more than ``percentage`` % (Ansible: strictly more)."""
    return total > 0 and 100.0 * failed / total > percentage
