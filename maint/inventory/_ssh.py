"""Reading OpenSSH options out of ``ansible_ssh_common_args``/``_extra_args``.

Pure functions, no I/O: the values come from host vars; the results go into :class:`maint.inventory.Host`
(known_hosts, host key checking) and to the SSH executor (:mod:`maint.executors.sshconfig`, which reads
the rest: ``-F``, ``-J``, ``-p``, ``-l``, ``-i`` and every ``-o``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator

# Values ssh(1) accepts for StrictHostKeyChecking that turn verification off.
_NO_CHECKING = frozenset({"no", "off"})
# ssh(1)'s flags that take a value (its getopt string), and the ssh_config keyword the value sets.
_VALUE_FLAGS = frozenset("bcDeEFiIJlLmoOpPQRSwW")
_FLAG_KEYWORDS = {"p": "port", "l": "user", "i": "identityfile", "J": "proxyjump", "F": "-F"}


def ssh_options(arguments: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Yield ``(lower-cased option name, value)`` for every ``-o`` option in the argument strings.

    Given the raw strings of ``ansible_ssh_common_args`` and ``ansible_ssh_extra_args`` (in that order,
    the order Ansible puts them on the ssh command line), understands ``-o Key=Value``, ``-oKey=Value``
    and ``-o 'Key Value'``. Strings that shlex cannot split (an unbalanced quote) are split on
    whitespace instead, so a typo in an unrelated option does not hide the ones maint needs.
    """
    for flag, name, value in _scan(arguments):
        if flag == "o":
            yield name, value


def command_line(arguments: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Yield ``(ssh_config keyword, value)`` for the options in the argument strings, in command-line order.

    What :func:`ssh_options` yields, plus the flags that stand for an option: ``-p PORT`` (``port``),
    ``-l USER`` (``user``), ``-i FILE`` (``identityfile``) and ``-J HOPS`` (``proxyjump``); ``-F FILE`` is
    yielded as ``("-F", FILE)``. Flags may be grouped (``-qp 2222``); the values of ssh's other flags
    (``-c``, ``-E``, ...) and words that are not options are skipped.
    """
    for _, name, value in _scan(arguments):
        yield name, value


def _scan(arguments: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """``(flag, keyword, value)`` for each flag of ``_FLAG_KEYWORDS`` in the argument strings."""
    for text in arguments:
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        index = 0
        while index < len(words):
            word = words[index]
            index += 1
            if not word.startswith("-") or word == "-":
                continue
            for position in range(1, len(word)):
                flag = word[position]
                if flag not in _VALUE_FLAGS:
                    continue  # a flag without a value (-q, -C, -4, ...)
                value = word[position + 1 :]
                if not value:
                    if index >= len(words):
                        return
                    value = words[index]
                    index += 1
                keyword = _FLAG_KEYWORDS.get(flag)
                if flag == "o":
                    name, value = _split_option(value)
                    if name:
                        yield flag, name.lower(), value
                elif keyword is not None:
                    yield flag, keyword, value
                break


def _split_option(option: str) -> tuple[str, str]:
    """``Key=Value`` or ``Key Value`` (what ssh_config accepts after -o) -> ``(Key, Value)``."""
    option = option.strip()
    for separator in ("=", " ", "\t"):
        if separator in option:
            name, value = option.split(separator, 1)
            return name.strip(), value.strip().strip("\"'")
    return option, ""


def first_option(arguments: Iterable[str], name: str) -> str | None:
    """The value of the first ``-o NAME=...`` in the arguments (ssh uses the first one it sees), or None."""
    wanted = name.lower()
    for option, value in ssh_options(arguments):
        if option == wanted:
            return value
    return None


def known_hosts_file(arguments: Iterable[str]) -> str | None:
    """The first file of the first ``UserKnownHostsFile`` option, unexpanded, or None when not set."""
    value = first_option(arguments, "UserKnownHostsFile")
    if not value:
        return None
    # ssh accepts several whitespace-separated files; maint verifies against the first.
    return value.split()[0]


def strict_checking_disabled(arguments: Iterable[str]) -> bool:
    """True when the first ``StrictHostKeyChecking`` option turns checking off (``no`` or ``off``)."""
    value = first_option(arguments, "StrictHostKeyChecking")
    return value is not None and value.lower() in _NO_CHECKING
