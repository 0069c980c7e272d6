"""The syntax of Ansible host patterns, checked before ansible-core reads them.

ansible-core's own reading is lenient in ways that hurt: ``web:&`` and ``!`` raise IndexError,
``web[`` quietly means ``web`` and ``~[`` means every host (its splitter drops what it does not
understand). :func:`check_pattern` refuses those with a message that says what is wrong; the
patterns ansible documents (names, globs, ``~regex``, subscripts, ``:``/``,`` unions, ``&`` and ``!``,
``@file`` limits, IPv6 addresses) pass unchanged. Pure: no ansible import.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Sequence

HINT = (
    "patterns are host or group names, globs (web*), ~regex, ranges (web[0:9]), "
    "combined with ',' or ':', '&' (and) and '!' (not)"
)

# One ':'-separated term as ansible's splitter reads it: anything but whitespace, ':' and brackets,
# or a complete bracketed expression. Whitespace separates terms too.
_TERM = r"(?:[^\s:\[\]]|\[[^\]]*\])+"
_SEPARATOR = r"(?:\s*:\s*|\s+)"
_COLON_LIST = re.compile(rf"\s*{_TERM}(?:{_SEPARATOR}{_TERM})*\s*")
_BALANCED = re.compile(r"(?:[^\[\]]|\[[^\[\]]*\])*")
# A subscript ansible applies: [N], [-N], [N:M], [N:], [N-M] (see ansible's PATTERN_WITH_SUBSCRIPT).
_SUBSCRIPT = re.compile(r"-?[0-9]+|[0-9]+[:-][0-9]*")
_SUBSCRIPT_LIKE = re.compile(r"[0-9:\-\s]*")


def check_pattern(pattern: str) -> list[str]:
    """Raise ValueError saying what is wrong with the host pattern ``pattern``, if anything; returns its terms."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("empty host pattern")
    terms = _terms(pattern)
    for term in terms:
        _check_term(term)
    return terms


def _terms(pattern: str) -> list[str]:
    text = pattern.strip()
    if "," in text:
        items = [item.strip() for item in text.split(",")]
        if items[-1] == "" and len(items) > 1:  # 'web1,' as in an inventory host list
            items.pop()
        if "" in items:
            raise ValueError("an empty term between ',' separators")
        return items
    if _COLON_LIST.fullmatch(text):
        return re.split(rf"{_SEPARATOR}(?![^\[]*\])", text)
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        return [text]  # an IPv6 address: its colons do not separate terms
    if text.count("[") != text.count("]") or not _BALANCED.fullmatch(text):
        raise ValueError("unbalanced '[' and ']'")
    raise ValueError("an empty term: ':' at the start or the end, or two in a row")


def _check_term(term: str) -> None:
    name = term[1:] if term[:1] in ("&", "!") else term
    if not name:
        raise ValueError(f"'{term}' needs a name after it (e.g. {term}web)")
    if name[:1] in ("&", "!"):
        raise ValueError(f"'{term}': one '&' or '!' per term")
    if name.startswith("~"):
        if len(name) == 1:
            raise ValueError("'~' needs a regular expression after it (e.g. ~web\\d+)")
        try:
            re.compile(name[1:])
        except re.error as error:
            raise ValueError(f"'{term}': invalid regular expression: {error}") from None
        return
    if not _BALANCED.fullmatch(name):
        raise ValueError(f"'{term}': unbalanced '[' and ']'")
    subscript = re.search(r"\[([^\[\]]*)\]$", name)
    if subscript is not None and name[: subscript.start()]:
        inside = subscript.group(1)
        if inside == "":
            raise ValueError(f"'{term}': empty brackets (a subscript is [N] or [N:M])")
        if _SUBSCRIPT_LIKE.fullmatch(inside) and not _SUBSCRIPT.fullmatch(inside):
            raise ValueError(f"'{term}': invalid subscript [{inside}] (use [N], [-N], [N:M] or [N:])")


def check_matchable(pattern: str) -> list[str]:
    """Raise ValueError unless ``pattern`` is valid and can be matched without the inventory (:func:`matches`):
    a subscript (``web[0]``) needs the inventory's order. Returns its terms."""
    terms = check_pattern(pattern)
    for term in terms:
        name = term.lstrip("&!")
        subscript = re.search(r"\[([^\[\]]*)\]$", name)
        if subscript and name[: subscript.start()] and _SUBSCRIPT.fullmatch(subscript.group(1)) and name[0] != "~":
            raise ValueError(f"'{term}': a subscript needs the inventory's order; name the hosts instead")
    return terms


def matches(pattern: str, host: str, groups: Sequence[str]) -> bool:
    """Whether ``host``, a member of ``groups`` (its ancestors included), is among the hosts ``pattern``
    selects, as ansible-core selects them: ``all``/``*``, host or group names, globs, ``~regex`` (matched
    from the start), ``ungrouped``, unions (``:``/``,``), ``&`` intersections and ``!`` exclusions (a
    pattern of only those starts from ``all``). For the places that match a host without its inventory
    (tickets' routing rules); the run selects through ansible-core (``Inventory.select``).

    Raises ValueError for an invalid pattern, and for a subscript (``web[0]``), which needs the
    inventory's order.
    """
    terms = check_matchable(pattern)
    names = [host, *groups, "all"] + ([] if groups else ["ungrouped"])

    def hit(term: str) -> bool:
        if term.startswith("~"):
            expression = re.compile(term[1:])
            return any(expression.match(name) for name in names)
        return any(fnmatch.fnmatchcase(name, term) for name in names)

    included = [term for term in terms if term[0] not in "!&"] or ["all"]
    return (
        any(hit(term) for term in included)
        and all(hit(term[1:]) for term in terms if term.startswith("&"))
        and not any(hit(term[1:]) for term in terms if term.startswith("!"))
    )
