"""Secret references: ``env:NAME`` and ``file:PATH``, resolved on the controller, never recorded.

A step parameter that takes a secret (a backup repository password, an API token) holds a reference,
not the value. The value is read when the step is prepared for a host, handed to the host on the
command's standard input (never on a command line, where ``ps`` would show it), and masked as
``***`` in every summary and output tail maint records.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

MASK = "***"
# Variable names whose values are masked in records (``-e db_password=...``, ``API_TOKEN``, ...).
SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
PREFIXES = ("env:", "file:")
# The password of a URL's ``user:password@`` (``postgresql://u:pw@h/db``, ``https://u:pw@hooks/...``).
# The password runs to the last ``@`` before the host, so one holding an ``@`` is masked whole.
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"<>]*:)[^\s'\"<>]*@")
# ``NAME=VALUE`` in a command line or an ``-e`` value (Ansible's space-separated ``k=v`` form);
# a quoted value runs to its closing quote.
ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>'[^']*'|\"[^\"]*\"|\S*)")
# The options whose value is extra variables: ``-e VALUE``, ``--extra-vars VALUE``, ``-eVALUE``,
# ``--extra-vars=VALUE`` (and ``-Ce...``: click lets a flag and ``-e`` share one argument).
EXTRA_VARS_OPTIONS = ("-e", "--extra-vars")
EXTRA_VARS_ATTACHED = re.compile(r"^(?P<option>--extra-vars=|-[A-Za-z]*e)(?P<value>.+)$", re.DOTALL)


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


# Shorter values of secret-looking variables are left unmasked in outputs: masking "1" or "yes" would
# garble every output and hide nothing.
MIN_MASKED = 4


def secret_variable_values(variables: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of the secret-looking variables among ``variables`` (host vars, ``-e``; everything under
    a secret-looking key of a mapping), to mask in what a step's output records."""
    found: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif isinstance(value, str | int | float) and not isinstance(value, bool) and len(str(value)) >= MIN_MASKED:
            found.append(str(value))

    for name, value in variables.items():
        if SECRET_NAME.search(str(name)):
            collect(value)
    return tuple(found)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret value replaced by ``***``."""
    for value in sorted((value for value in secrets if value), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def mask_url_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ``***``
    (``postgresql://u:pw@h/db`` -> ``postgresql://u:***@h/db``); the one helper for every URL shown
    in a message, a record or a log. Raises nothing."""
    if "@" not in text:  # most text: no regular expression to run
        return text
    return URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)


def redact_structure(value: Any) -> Any:
    """``value`` (variables: mappings, lists, text at any depth) with every item under a
    secret-looking key masked and URL passwords in text masked; returns a copy. Raises nothing."""
    if isinstance(value, Mapping):
        return {key: MASK if SECRET_NAME.search(str(key)) else redact_structure(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_structure(item) for item in value]
    if isinstance(value, str):
        return mask_url_credentials(value)
    return value


def redact_vars(variables: Mapping[str, Any]) -> dict[str, Any]:
    """``variables`` with the values of secret-looking names masked, at any depth (see redact_structure)."""
    return {str(name): MASK if SECRET_NAME.search(str(name)) else redact_structure(value)
            for name, value in variables.items()}  # fmt: skip


def holds_mask(value: Any) -> bool:
    """Whether ``value`` (a recorded variable) is, or holds at any depth, a masked secret."""
    if isinstance(value, Mapping):
        return any(holds_mask(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(holds_mask(item) for item in value)
    return isinstance(value, str) and value == MASK


def _redact_assignments(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if SECRET_NAME.search(match["name"]):
            return f"{match['name']}={MASK}"
        return match[0]

    return ASSIGNMENT.sub(replace, text)


def redact_command(text: str) -> str:
    """A shell command line as it may be recorded or shown: secret-looking ``NAME=VALUE`` assignments
    (``PGPASSWORD=...``) and URL passwords masked. Raises nothing."""
    return mask_url_credentials(_redact_assignments(text))


def redact_extra_vars(value: str) -> str:
    """One ``-e`` value as it may be shown: ``@file`` as is, a JSON/YAML mapping with its secret-looking
    keys masked at any depth (written back as JSON), ``k=v ...`` with the secret-looking values masked.
    A mapping that does not parse is shown as ``***`` when it names anything secret-looking."""
    text = value.strip()
    if text.startswith("@"):
        return value
    if text.startswith(("{", "[")):
        import json

        import yaml

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict | list):
            return json.dumps(redact_structure(loaded), ensure_ascii=False, separators=(", ", ": "), default=str)
        return MASK if SECRET_NAME.search(text) else mask_url_credentials(value)
    return mask_url_credentials(_redact_assignments(value))


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` as it may be recorded or shown: every form of extra variables (``-e k=v``, ``-e JSON``,
    ``--extra-vars=k=v``, ``-ek=v``, ``--extra-vars 'a=1 b=2'``) with secret-looking values masked at
    any depth, ``--secret-looking-option=VALUE`` and ``NAME=VALUE`` arguments masked likewise, and the
    password of any URL masked. ``@file`` stays (a file name). Raises nothing."""
    redacted: list[str] = []
    extra_vars_next = False
    for argument in argv:
        if extra_vars_next:
            redacted.append(redact_extra_vars(argument))
            extra_vars_next = False
            continue
        if argument in EXTRA_VARS_OPTIONS or (argument.startswith("-") and not argument.startswith("--")
                                              and argument.endswith("e") and argument[1:].isalpha()):  # fmt: skip
            extra_vars_next = True
            redacted.append(argument)
            continue
        attached = EXTRA_VARS_ATTACHED.match(argument)
        if attached:
            redacted.append(attached["option"] + redact_extra_vars(attached["value"]))
            continue
        option, sep, rest = argument.partition("=")
        if argument.startswith("--") and sep:
            shown = MASK if SECRET_NAME.search(option) else mask_url_credentials(_redact_assignments(rest))
            redacted.append(f"{option}={shown}")
            continue
        redacted.append(redact_command(argument))
    return redacted
