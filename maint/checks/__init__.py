"""Step types: pure functions from parameters to a shell command, and from its output to an Outcome.

A step type does no I/O. The engine renders the step's parameters for a host, asks the type for the
command, runs it through an executor and hands the :class:`~maint.executors.CommandResult` back to the
type's ``evaluate``. That keeps every check unit-testable from recorded output.

Step types are registered under the ``maint.step_types`` entry point group; built-in ones exactly
like third-party ones.
"""

from __future__ import annotations

import enum
import math
import re
import shlex
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from maint.executors import CommandResult

if TYPE_CHECKING:
    from maint.become import Become
    from maint.executors import Connection


class Status(enum.StrEnum):
    """The status of one (host, step) result."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"
    ERROR = "error"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    """What a check concluded: a status, a one-line summary and the numbers it measured."""

    status: Status
    summary: str
    metrics: Mapping[str, float] = field(default_factory=dict)


class ParamError(ValueError):
    """A step parameter is missing or has the wrong type; the message names the parameter."""


@dataclass(frozen=True)
class Param:
    """One parameter of a step type: its converter, default and help text."""

    convert: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    help: str = ""


class StepType:
    """Base class of step types.

    Subclasses set ``name``, ``description`` and ``params`` and implement :meth:`command` and
    :meth:`evaluate`. ``values`` holds the converted parameters.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    # Parameters that are shell command templates: substituted values get shell-quoted.
    shell_params: ClassVar[frozenset[str]] = frozenset()
    # A task changes the host (applies updates, takes a backup, deletes old logs); a check only reads.
    changes_host: ClassVar[bool] = False
    # A fleet step runs once for all hosts through its own executor (ansible-runner), not per host.
    fleet: ClassVar[bool] = False
    # The tier and severity of this type's tickets when the playbook does not say (maint.yml may override).
    default_tier: ClassVar[str] = "L1"
    default_severity: ClassVar[str] = "warning"
    # A controller step runs on the controller with the host's connection (:meth:`perform`, e.g. a Python
    # task with a Fabric Connection) instead of sending :meth:`command` to the host's shell.
    on_controller: ClassVar[bool] = False

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = convert_params(type(self), values)

    @classmethod
    def load_params(cls, values: Mapping[str, Any], pending: Collection[str], places: Sequence[Path]) -> dict[str, Any]:
        """Check a step's parameters when its playbook loads: ``values`` are the given ones, ``pending`` the
        names of templated ones, ``places`` the directories a relative file name is looked up in (the
        playbook's, the project's). Returns the values the step keeps; raises ParamError."""
        convert_params(cls, values, pending)
        return dict(values)

    @classmethod
    def sources(cls, params: Mapping[str, Any]) -> list[Path]:
        """Files besides the playbook whose content decides what the step does (a Python task's code): the
        playbook's digest covers them. None for a step whose parameters say it all."""
        return []

    def command(self) -> str:
        """The shell command that collects what :meth:`evaluate` needs."""
        raise NotImplementedError

    def in_check_mode(self) -> StepType | None:
        """What ``maint run --check`` runs instead of this step: itself for a check (it only reads);
        for a task, a dry-run variant if the type has one, else None (the step is skipped)."""
        return None if self.changes_host else self

    def check_mode_skip_reason(self) -> str:
        """The summary of this step when check mode skips it (:meth:`in_check_mode` gave None)."""
        return f"check mode: {self.name} changes the host and has no dry run"

    def perform(
        self, connection: Connection, become: Become | None, timeout: float, cancel: threading.Event | None
    ) -> tuple[Outcome, CommandResult]:
        """Run a controller step (``on_controller``) on the host's open ``connection`` within ``timeout``
        seconds, as ``become`` says where it escalates, stopping when ``cancel`` is set: its outcome and the
        record of what it ran (``timed_out``/``cancelled`` set when it was stopped). Raises nothing for what
        the step does on the host: that is its outcome."""
        raise NotImplementedError

    def stdin(self) -> str | None:
        """Text for the command's standard input (how secrets reach the host), or None."""
        return None

    def secret_values(self) -> tuple[str, ...]:
        """Values to mask in everything recorded: the resolved secrets among the parameters."""
        from maint.secrets import Secret

        return tuple(value.value for value in self.values.values() if isinstance(value, Secret))

    def evaluate(self, result: CommandResult) -> Outcome:
        """Turn the command's result into an Outcome."""
        raise NotImplementedError


def convert_params(
    step_type: type[StepType], values: Mapping[str, Any], pending: Collection[str] = ()
) -> dict[str, Any]:
    """Check ``values`` against the type's parameters and convert them.

    ``pending`` names parameters that are given but not rendered yet (templates): they count as
    present and are not converted. Raises ParamError naming the first unknown, missing or
    ill-typed parameter.
    """
    unknown = sorted((set(values) | set(pending)) - set(step_type.params))
    if unknown:
        known = ", ".join(sorted(step_type.params)) or "none"
        raise ParamError(f"unknown parameter '{unknown[0]}' for {step_type.name} (known: {known})")
    converted: dict[str, Any] = {}
    for name, param in step_type.params.items():
        if name in pending:
            continue
        if name not in values or values[name] is None:
            if param.required:
                raise ParamError(f"{step_type.name} needs parameter '{name}'")
            # A default written as text ("7d", "500M") goes through the converter like a given value.
            converted[name] = param.convert(param.default) if isinstance(param.default, str) else param.default
            continue
        try:
            converted[name] = param.convert(values[name])
        except (TypeError, ValueError) as error:
            raise ParamError(f"parameter '{name}' of {step_type.name}: {error}") from None
    return converted


# Converters -----------------------------------------------------------------------------------


def text(value: Any) -> str:
    """A string parameter (numbers are accepted and turned into text)."""
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return str(value)


def number(value: Any) -> float:
    """A number parameter: int, float or a numeric string."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def percent(value: Any) -> float:
    """A percentage from 0 to 100; a trailing % is allowed."""
    if isinstance(value, str):
        value = value.strip().removesuffix("%")
    result = number(value)
    if not 0 <= result <= 100:
        raise ValueError(f"expected a percentage from 0 to 100, got {result:g}")
    return result


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# The longest timeout maint takes (a step, a connection, a request, an inventory script): there is no
# "no limit", so that nothing maint waits for can hang it for good.
MAX_TIMEOUT = 7 * 86400.0
TIMEOUT_HINT = "there is no 'no limit': give a long timeout instead"


def duration(value: Any) -> float:
    """Seconds (>= 0), from a number or a text such as ``90``, ``15m``, ``36h``, ``2d`` or ``1w``.

    Raises ValueError for anything else (a negative number, infinity, NaN, a unit maint does not know).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration >= 0, got {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like 90, 15m, 36h or 2d, got {value!r}")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def timeout_seconds(value: Any) -> float:
    """A timeout in seconds: a :func:`duration` longer than 0 and at most :data:`MAX_TIMEOUT` (7d).

    Raises ValueError saying so, and that there is no "no limit".
    """
    wanted = "a timeout is longer than 0 and at most 7d (e.g. 90, 15m, 2h)"
    try:
        seconds = duration(value)
    except ValueError as error:
        raise ValueError(f"{error}: {wanted}; {TIMEOUT_HINT}") from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"expected a timeout, got {value!r}: {wanted}; {TIMEOUT_HINT}")
    return seconds


def regex(value: Any) -> re.Pattern[str]:
    """A regular expression (Python syntax, searched anywhere in the output, multiline)."""
    try:
        return re.compile(str(value), re.MULTILINE)
    except re.error as error:
        raise ValueError(f"invalid regular expression {value!r}: {error}") from None


def exit_codes(value: Any) -> frozenset[int]:
    """One exit code or a list of them."""
    items = value if isinstance(value, list) else [value]
    try:
        return frozenset(int(item) for item in items)
    except (TypeError, ValueError):
        raise ValueError(f"expected an exit code or a list of them, got {value!r}") from None


def secret(value: Any) -> Any:
    """A secret reference (``env:NAME`` or ``file:PATH``), resolved on the controller; see maint.secrets."""
    from maint.secrets import resolve

    return resolve(value)


def flag(value: Any) -> bool:
    """A yes/no parameter: a YAML boolean, or a rendered template's true/false/yes/no/on/off/1/0
    (an empty rendering, from ``default('')``, is no)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def choice(*options: str) -> Callable[[Any], str]:
    """A converter that accepts one of ``options``."""

    def convert(value: Any) -> str:
        if str(value) not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    return convert


# Helpers shared by check types ----------------------------------------------------------------

# A command that gathers several facts prints each after a header line "@@maint-section@@ NAME".
SECTION = "@@maint-section@@"


def sections(output: str) -> dict[str, str]:
    """Split output printed as ``@@maint-section@@ NAME`` headers followed by their text."""
    found: dict[str, str] = {}
    name = ""
    for line in output.splitlines():
        if line.startswith(SECTION):
            name = line[len(SECTION) :].strip()
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found




def quote(value: Any) -> str:
    """Shell-quote a value for a command line."""
    return shlex.quote(str(value))


def first_line(value: str, limit: int = 160) -> str:
    """The first non-empty line of ``value``, shortened to ``limit`` characters."""
    for line in value.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def command_failure(result: CommandResult, what: str) -> Outcome:
    """An ``error`` Outcome for a collection command that did not run as it should.

    ``what`` names the tool or file, so the summary says what is wrong (`df: no such file ...`).
    """
    detail = first_line(result.stderr) or first_line(result.stdout) or f"exit {result.exit_code}"
    if result.exit_code == 127:
        return Outcome(Status.ERROR, f"{what} not found on the host: {detail}")
    if result.exit_code == 126:
        return Outcome(Status.ERROR, f"{what} not permitted on the host: {detail}")
    return Outcome(Status.ERROR, f"{what} failed (exit {result.exit_code}): {detail}")


def threshold_status(value: float, warn: float | None, critical: float | None) -> Status:
    """``failed`` at or above ``critical``, ``warning`` at or above ``warn``, else ``ok``."""
    if critical is not None and value >= critical:
        return Status.FAILED
    if warn is not None and value >= warn:
        return Status.WARNING
    return Status.OK


def human_bytes(amount: float) -> str:
    """``amount`` bytes as ``512 B``, ``1.5 KiB``, ``216.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def human_age(seconds: float) -> str:
    """A duration as ``45s``, ``12m``, ``5h`` or ``3d`` (the largest unit that keeps it readable)."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
