"""Secret references: ``env:NAME`` and ``file:PATH``, resolved on the controller, never recorded.

A step parameter that takes a secret (a backup repository password, an API token) holds a reference,
not the value. The value is read when the step is prepared for a host, handed to the host on the
command's standard input (never on a command line, where ``ps`` would show it), and masked as
``***`` in every summary and output tail maint records.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "***"
# Variable names whose values are masked in records (``-e db_password=...``, ``API_TOKEN``, ...).
SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
PREFIXES = ("env:", "file:")


class Secret:
    """A resolved secret: ``value`` for the host, ``reference`` for everything shown."""

    __slots__ = ("reference", "value")

    def __init__(self, reference: str, value: str) -> None:
        self.reference = reference
        self.value = value

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.reference, self.value) == (other.reference, other.value)

    def __hash__(self) -> int:
        return hash(self.reference)


def is_reference(value: Any) -> bool:
    """Whether ``value`` is a secret reference (``env:NAME`` or ``file:PATH``)."""
    return isinstance(value, str) and value.startswith(PREFIXES)


def resolve(reference: Any, environ: Mapping[str, str] | None = None) -> Secret:
    """Read the secret ``reference`` names; raises ValueError saying what is missing (never the value)."""
    if isinstance(reference, Secret):
        return reference
    if not is_reference(reference):
        raise ValueError("expected a secret reference, env:NAME or file:PATH (never the secret itself)")
    kind, _, name = str(reference).partition(":")
    if not name:
        raise ValueError(f"empty secret reference {reference!r}")
    if kind == "env":
        environment = os.environ if environ is None else environ
        if name not in environment:
            raise ValueError(f"environment variable {name} (from {reference}) is not set")
        return Secret(reference, environment[name])
    path = Path(name).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read secret file {path}: {error.strerror}") from None
    return Secret(reference, text.rstrip("\n"))


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret value replaced by ``***``."""
    for value in sorted((value for value in secrets if value), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
