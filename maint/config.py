"""maint.yml: finds, loads and validates the project's configuration.

One schema drives validation, ``maint config show`` and the README: every option has a type, a
default, a description and an example. Validation reports every error with its path and line
(``maint.yml:12: At 'tickets.open_after': ...``), not only the first.

The file is optional: without it every option has its default (tickets kept in the store only).
``$MAINT_CONFIG`` names another file; otherwise ``maint.yml`` in the project directory is used.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint.errors import BadInput
from maint.secrets import is_reference
from maint.yamlfile import LineDict, LineList, load_yaml_file

if TYPE_CHECKING:
    from maint.windows import Window

FILE_NAME = "maint.yml"
TIERS = ("L1", "L2", "L3")
SEVERITIES = ("info", "warning", "critical")
# Unreachable hosts are not a check's failure: tickets.unreachable opens one ticket per host for them.
PROBLEM_STATUSES = ("failed", "error", "warning")


class ConfigError(BadInput):
    """maint.yml is invalid; ``errors`` holds every problem found (the message shows the first)."""

    def __init__(self, errors: Sequence[str], source: str) -> None:
        more = f" (and {len(errors) - 1} more: run 'maint config validate')" if len(errors) > 1 else ""
        super().__init__(errors[0] + more)
        self.errors = list(errors)
        self.source = source


@dataclass(frozen=True)
class Field:
    """One option: how to check it, its default, and the words the docs and ``config show`` use."""

    check: Callable[[Any], Any]
    help: str
    default: Any = None
    example: Any = None


@dataclass(frozen=True)
class Section:
    """A mapping of named options."""

    fields: Mapping[str, Field | Section | Items]
    help: str


@dataclass(frozen=True)
class Items:
    """A list of mappings (rules), each validated by ``item``."""

    item: Section
    help: str
    default: Any = None


# Value checks: each returns the converted value or raises ValueError with what was expected.


def _whole(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
        return value

    return check


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError(f"expected a percentage from 0 to 100, got {value!r}")
    return float(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return float(value)


def _duration(value: Any) -> float:
    from maint.checks import duration

    seconds = duration(value)
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    return seconds


def _timeout(value: Any) -> float:
    from maint.checks import timeout_seconds

    return timeout_seconds(value)


def _host_pattern(value: Any) -> str:
    from maint.inventory.patterns import check_pattern

    text = _text(value)
    try:
        check_pattern(text)
    except ValueError as error:
        raise ValueError(f"invalid host pattern {text!r}: {error}") from None
    return text


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected text, got {value!r}")
    return value


def _moment(value: Any) -> str:
    # YAML reads an unquoted 2026-11-28T02:00:00Z as a datetime (and 2026-11-28 as a date).
    import datetime as dt

    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return value.strip()
    raise ValueError(f"expected a time in ISO 8601 (e.g. 2026-11-28T02:00:00Z), got {value!r}")


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    return check


def _texts(choices: Sequence[str] = ()) -> Callable[[Any], list[str]]:
    def check(value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
            raise ValueError(f"expected a name or a list of names, got {value!r}")
        for item in items:
            if choices and item not in choices:
                raise ValueError(f"expected names from {', '.join(choices)}, got {item!r}")
        return list(items)

    return check


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {value!r}")
    return dict(value)


# Window checks: maint.windows (croniter, dateutil, holidays) is imported only when maint.yml has windows.


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than 0, got {value!r}")
    return seconds


def _cron(value: Any) -> str:
    from maint.windows import parse_cron

    return parse_cron(value)


def _rrule(value: Any) -> str:
    from maint.windows import parse_rrule

    return parse_rrule(value)


def _timezone(value: Any) -> str:
    from maint.windows import parse_timezone

    return parse_timezone(value)


def _blackouts(value: Any) -> Any:
    from maint.windows import parse_blackouts

    return parse_blackouts(value)


def _holidays(value: Any) -> Any:
    from maint.windows import parse_holidays

    return parse_holidays(value)


def _url(value: Any) -> str:
    from maint.windows import parse_url

    return parse_url(value)


OVERRIDE = Section(
    {
        "tier": Field(_choice(*TIERS), "The tier of tickets for this check."),
        "severity": Field(_choice(*SEVERITIES), "The severity of tickets for this check."),
    },
    "Tier and severity of a check, by step id or step type (shell-style patterns).",
)

ESCALATION_RULE = Section(
    {
        "tier": Field(_choice(*TIERS[:-1]), "Apply only to tickets at this tier (default: any below L3)."),
        "occurrences": Field(_whole(1), "Escalate after this many occurrences at the current tier.", example=3),
        "hours": Field(_number, "Escalate when the ticket has been at its tier this many hours.", example=24),
        "severity_rise": Field(_flag, "Escalate when a new occurrence has a higher severity.", example=True),
    },
    "An escalation rule: a ticket that meets it moves one tier up (L1 -> L2 -> L3).",
)

ROUTE = Section(
    {
        "tier": Field(_texts(TIERS), "Tickets of these tiers.", example=["L2", "L3"]),
        "severity": Field(_texts(SEVERITIES), "Tickets of these severities.", example="critical"),
        "group": Field(_texts(), "Tickets of hosts in these inventory groups.", example="db"),
        "check": Field(_texts(), "Tickets of these checks (step ids, shell-style patterns).", example="backup*"),
        "backends": Field(_texts(), "Send matching tickets to these backends (names under tickets.backends).",
                          example=["helpdesk"]),
        "queue": Field(_text, "The queue, project or address the backend files the ticket under."),
    },
    "A routing rule: tickets that match every given key go to its backends (all matching rules apply).",
)

QUIET_RULE = Section(
    {
        "hosts": Field(_host_pattern, "Hosts (an Ansible host pattern) the rule covers.", default="all",
                       example="web"),
        "checks": Field(_texts(), "Checks (step ids or types, shell-style patterns) whose failures are expected.",
                        example=["service.*", "web-health"]),
        "playbooks": Field(_texts(), "Only in runs of these playbooks (the work that causes the failures).",
                           example="updates-apply"),
        "start": Field(_moment, "Only from this time (ISO 8601).", example="2026-11-28T02:00:00Z"),
        "end": Field(_moment, "Only until this time (ISO 8601).", example="2026-11-28T04:00:00Z"),
        "reason": Field(_text, "Why (recorded with each result it quiets).", example="CHG-1234 kernel updates"),
    },
    "A declared maintenance: failures it covers are recorded but open no ticket.",
)

WINDOW = Section(
    {
        "cron": Field(_cron, "When the window opens: a cron expression (minute hour day-of-month month "
                      "day-of-week, or @daily ...) in the window's time zone. Give cron or rrule.",
                      example="0 2 * * 6"),
        "rrule": Field(_rrule, "When the window opens: an RFC 5545 RRULE, optionally after a DTSTART line "
                       "(default start 2000-01-01 00:00 in the window's time zone). Give cron or rrule.",
                       example="FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0"),
        "duration": Field(_positive_duration, "How long the window stays open after each opening (required).",
                          example="2h"),
        "timezone": Field(_timezone, "The IANA time zone of the schedule and of blackout and holiday dates.",
                          default="UTC", example="Europe/Berlin"),
        "blackouts": Field(_blackouts, "Dates (YYYY-MM-DD) and ranges (YYYY-MM-DD..YYYY-MM-DD) on which the "
                           "window does not open.", default=[], example=["2026-12-24", "2026-12-28..2027-01-01"]),
        "holidays": Field(_holidays, "Public holidays on which the window does not open: {country, subdivision, "
                          "language} or a list of them.", default=[], example={"country": "DE", "subdivision": "BY"}),
        "hosts": Field(_host_pattern, "The hosts the window covers (an Ansible host pattern).", default="all",
                       example="web:&prod"),
        "playbooks": Field(_texts(), "The playbooks this window is for (schedules run them at its openings).",
                           default=[], example=["updates-apply"]),
        "grace": Field(_duration, "How long steps still running at the close may go on (no new step starts).",
                       default="5m", example="15m"),
        "ping": Section(
            {
                "start": Field(_url, "Requested when a run in the window starts.",
                               example="https://hc-ping.example.org/UUID/start"),
                "success": Field(_url, "Requested when a run in the window succeeds.",
                                 example="https://hc-ping.example.org/UUID"),
                "fail": Field(_url, "Requested when a run in the window fails.",
                              example="https://hc-ping.example.org/UUID/fail"),
            },
            "Monitoring URLs (http(s), or env:/file: references to them); optional.",
        ),
    },
    "A maintenance window: when it opens, how long it stays open, the days it stays shut.",
)

SCHEMA = Section(
    {
        "store": Field(_text, "The store URL (SQLAlchemy); --db and $MAINT_DB override it.",
                       example="sqlite:///.maint/maint.db"),
        "store_busy_timeout": Field(_positive_duration, "How long a write waits for the store when another "
                                    "process holds it (SQLite busy timeout; PostgreSQL lock and connect "
                                    "timeout). After it, a run keeps its finished results in a spool beside "
                                    "the store and exits 8.", default="10s", example="30s"),
        "tickets": Section(
            {
                "enabled": Field(_flag, "Open, update and resolve tickets after each run.", default=True),
                "open_on": Field(_texts(PROBLEM_STATUSES), "Result statuses that count as a failure of a check.",
                                 default=["failed", "error"], example=["failed", "error", "warning"]),
                "unreachable": Field(_flag, "Open one ticket per unreachable host (check 'unreachable').",
                                     default=True),
                "open_after": Field(_whole(1), "Consecutive failures before a ticket opens (soft until then).",
                                    default=1, example=2),
                "resolve_after": Field(_whole(1), "Consecutive passes before the ticket is resolved.", default=1),
                "reopen_within": Field(_duration, "A failure within this time of the resolution reopens the "
                                       "ticket; later, a new ticket opens.", default="24h", example="3d"),
                "flap": Section(
                    {
                        "window": Field(_whole(3), "Results of a check looked at to detect flapping.", default=10),
                        "high": Field(_percent, "Flapping starts when this % of those results change state.",
                                      default=50),
                        "low": Field(_percent, "Flapping stops when the changes fall below this %.", default=25),
                    },
                    "Flap detection with hysteresis: a flapping check keeps one ticket, marked flapping.",
                ),
                "escalation": Items(ESCALATION_RULE, "Escalation rules (all are checked; any one escalates).",
                                    default=[{"occurrences": 3}, {"severity_rise": True}]),
                "remediation": Section(
                    {
                        "max_attempts": Field(_whole(0), "Remediations of one (host, check) within 'runs' runs "
                                              "before maint stops trying and only tickets.", default=3),
                        "runs": Field(_whole(1), "The number of recent runs the limits look at.", default=10),
                        "recurring": Field(_whole(1), "Remediated this many times within 'runs' runs: a ticket "
                                           "one tier up says the problem keeps coming back.", default=3),
                    },
                    "Limits for steps' `remediate` tasks.",
                ),
                "overrides": Field(_mapping, "Tier and severity per check: step id or type pattern -> "
                                   "{tier, severity}.", default={}, example={"av.clamav": {"tier": "L2"}}),
                "quiet": Items(QUIET_RULE, "Declared maintenance: expected failures that open no ticket.",
                               default=[]),
                "backends": Field(_mapping, "External ticketing systems by name: {type: rt|roundup|email|webhook|"
                                  "zendesk|jira|github|pagerduty, ...its options}.", default={}),
                "routing": Items(ROUTE, "Which backends get which tickets (no rule: the store only).", default=[]),
                "timeout": Field(_timeout, "Seconds per request to a backend (at most 7d).", default="5s"),
                "deliver_within": Field(_duration, "Time a run spends delivering tickets; the rest waits in the "
                                        "outbox for 'maint tickets sync' or the next run.", default="30s"),
            },
            "Reactive tickets for failing checks.",
        ),
        "audit": Section(
            {
                "require_reason": Field(_flag, "Refuse a manual run, rerun or resume without --reason (runs in CI "
                                        "and scheduled runs record their job or window instead).", default=False,
                                        example=True),
                "signing_key": Field(_text, "An SSH key that signs the ledger's head at the end of each run and "
                                     "each prune (ssh-keygen -Y sign): a private key file, or a public key whose "
                                     "private half is in ssh-agent. Relative to maint.yml's directory.",
                                     example="/etc/maint/ledger_ed25519"),
            },
            "The audit trail: why runs happen and who vouches for the ledger.",
        ),
        "windows": Field(_mapping, "Maintenance windows by name, each {cron or rrule, duration, timezone, "
                         "blackouts, holidays, hosts, playbooks, grace, ping}.", default={},
                         example={"nightly": {"cron": "0 2 * * 6", "duration": "2h", "timezone": "Europe/Berlin"}}),
        "inventory_timeout": Field(_timeout, "How long one call of a dynamic inventory script (--list, --host) "
                                   "may take (at most 7d); then it is stopped with its child processes (exit 3).",
                                   default="60s", example="5m"),
    },
    "maint.yml",
)


@dataclass(frozen=True)
class BackendConfig:
    """One external ticketing system from maint.yml (options not yet resolved: secrets are references)."""

    name: str
    type: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Config:
    """The validated configuration; ``data`` holds every option with defaults applied."""

    data: Mapping[str, Any]
    path: Path | None = None
    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    windows: Mapping[str, Window] = field(default_factory=dict)

    @property
    def tickets(self) -> Mapping[str, Any]:
        """The ``tickets`` section."""
        return dict(self.data["tickets"])

    @property
    def require_reason(self) -> bool:
        """Whether manual runs need ``--reason`` (``audit.require_reason``)."""
        return bool(self.data["audit"]["require_reason"])

    @property
    def signing_key(self) -> Path | None:
        """The SSH key that signs the ledger (``audit.signing_key``, relative to maint.yml), or None."""
        value = self.data["audit"].get("signing_key")
        if not value:
            return None
        path = Path(str(value)).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path

    @property
    def inventory_timeout(self) -> float:
        """Seconds one call of a dynamic inventory script may take (``inventory_timeout``)."""
        return float(self.data["inventory_timeout"])

    @property
    def store(self) -> str | None:
        """The store URL, when maint.yml sets one."""
        value = self.data.get("store")
        return str(value) if value else None

    @property
    def store_busy_timeout(self) -> float:
        """Seconds a store write waits for a lock (``store_busy_timeout``)."""
        return float(self.data["store_busy_timeout"])

    def override(self, check: str, step_type: str) -> Mapping[str, str]:
        """The tier/severity override for a check (its id first, then its type), or {}."""
        overrides: Mapping[str, Any] = self.tickets["overrides"]
        for name in (check, step_type):
            for pattern, values in overrides.items():
                if fnmatch.fnmatchcase(name, pattern):
                    return dict(values)
        return {}


def config_path(project_dir: Path) -> Path | None:
    """The configuration file in use: ``$MAINT_CONFIG``, else ``maint.yml`` in ``project_dir`` if present."""
    named = os.environ.get("MAINT_CONFIG")
    if named:
        return Path(named)
    candidate = project_dir / FILE_NAME
    return candidate if candidate.is_file() else None


def load(project_dir: Path | None = None, path: Path | None = None) -> Config:
    """Load and validate the configuration; raises ConfigError with every problem found."""
    path = path or config_path(project_dir or Path.cwd())
    if path is None:
        return Config(data=_defaults(SCHEMA))
    data, _ = load_yaml_file(path)
    if data is None:
        data = LineDict()
        data.key_lines = {}
    errors: list[str] = []
    source = str(path)
    checked = _validate(SCHEMA, data, "", source, errors)
    # Backends, routing and overrides are checked even when other options are wrong, so one pass
    # reports every problem; routes may name a backend that is defined but itself invalid.
    defined = checked["tickets"]["backends"]
    backends = _backends(defined, data, source, errors)
    _check_routes(checked["tickets"], defined, data, source, errors)
    windows = _windows(checked, data, source, errors)
    if errors:
        raise ConfigError(errors, source)
    return Config(data=checked, path=path, backends=backends, windows=windows)


def _where(source: str, line: int | None, path: str) -> str:
    return f"{source}:{line}: At '{path}'" if line else f"{source}: At '{path}'"


def _validate(section: Section, data: Any, prefix: str, source: str, errors: list[str]) -> dict[str, Any]:
    line = getattr(data, "line", None)
    if not isinstance(data, dict):
        errors.append(f"{_where(source, line, prefix or 'top level')}: expected a mapping, got {data!r}")
        return _defaults(section)
    result: dict[str, Any] = {}
    for key in data:
        if key not in section.fields:
            close = difflib.get_close_matches(str(key), list(section.fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(section.fields)}"
            key_line = data.line_of(key) if isinstance(data, LineDict) else line
            errors.append(f"{_where(source, key_line, prefix + str(key))}: unknown option ({hint})")
    for name, spec in section.fields.items():
        path = prefix + name
        key_line = data.line_of(name) if isinstance(data, LineDict) else line
        if name not in data or data[name] is None:
            result[name] = _default(spec)
            continue
        value = data[name]
        if isinstance(spec, Section):
            if not isinstance(value, dict):
                errors.append(f"{_where(source, key_line, path)}: expected a mapping, got {value!r}")
                result[name] = _defaults(spec)
                continue
            result[name] = _validate(spec, value, path + ".", source, errors)
        elif isinstance(spec, Items):
            if not isinstance(value, list):
                errors.append(f"{_where(source, key_line, path)}: expected a list of mappings")
                result[name] = []
                continue
            items = []
            for index, item in enumerate(value):
                item_line = value.item_lines[index] if isinstance(value, LineList) else key_line
                if not isinstance(item, dict):
                    errors.append(f"{_where(source, item_line, f'{path}[{index}]')}: expected a mapping")
                    continue
                checked = _validate(spec.item, item, f"{path}[{index}].", source, errors)
                # A key left empty (``tier:``) is as if absent, not a None the rule's users trip over.
                items.append({key: checked[key] for key in item if key in checked and checked[key] is not None})
            result[name] = items
        else:
            try:
                result[name] = spec.check(value)
            except ValueError as error:
                errors.append(f"{_where(source, key_line, path)}: {error}")
                result[name] = _default(spec)
    return result


def _default(spec: Field | Section | Items) -> Any:
    if isinstance(spec, Section):
        return _defaults(spec)
    if isinstance(spec, Items):
        return list(spec.default or [])
    if spec.default is None:
        return None
    try:
        return spec.check(spec.default)
    except ValueError:
        return spec.default


def _defaults(section: Section) -> dict[str, Any]:
    return {name: _default(spec) for name, spec in section.fields.items()}


def _backends(raw: Mapping[str, Any], data: Any, source: str, errors: list[str]) -> dict[str, BackendConfig]:
    """Validate each backend's type and options against the backend class's own option schema."""
    from maint import registry

    section = _raw(data, "tickets", "backends")
    backends: dict[str, BackendConfig] = {}
    for name, options in raw.items():
        path = f"tickets.backends.{name}"
        line = section.line_of(name) if isinstance(section, LineDict) else None
        if name == "local":
            errors.append(f"{_where(source, line, path)}: 'local' is the store itself; choose another name")
            continue
        if not isinstance(options, dict) or not isinstance(options.get("type"), str):
            known = ", ".join(registry.names(registry.TICKET_BACKENDS))
            errors.append(f"{_where(source, line, path)}: needs 'type' (one of {known})")
            continue
        kind = options["type"]
        backend_class = registry.load(registry.TICKET_BACKENDS, kind)
        if backend_class is None:
            known = ", ".join(registry.names(registry.TICKET_BACKENDS))
            errors.append(f"{_where(source, line, path + '.type')}: unknown backend type '{kind}' (known: {known})")
            continue
        schema: Mapping[str, Any] = backend_class.options
        for key, value in options.items():
            key_line = options.line_of(key) if isinstance(options, LineDict) else line
            if key == "type":
                continue
            option = schema.get(key)
            if option is None:
                close = difflib.get_close_matches(key, list(schema), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"{kind} options: {', '.join(schema)}"
                errors.append(f"{_where(source, key_line, f'{path}.{key}')}: unknown option ({hint})")
            elif option.secret and not is_reference(value):
                errors.append(
                    f"{_where(source, key_line, f'{path}.{key}')}: give a reference (env:NAME or file:PATH), "
                    "never the secret itself"
                )
            elif not option.secret and value is not None and not isinstance(value, option.type):
                errors.append(f"{_where(source, key_line, f'{path}.{key}')}: expected {_type_name(option.type)}, "
                              f"got {value!r}")  # fmt: skip
        # Options that are valid one by one but not together (the backend class says which).
        check_options = getattr(backend_class, "check_options", None)
        for key, problem in check_options(options) if check_options is not None else []:
            key_line = options.line_of(key) if isinstance(options, LineDict) else line
            errors.append(f"{_where(source, key_line, f'{path}.{key}')}: {problem}")
        for key, option in schema.items():
            if option.required and key not in options:
                errors.append(f"{_where(source, line, path)}: '{key}' is required ({option.help})")
        backends[name] = BackendConfig(name, kind, {key: value for key, value in options.items() if key != "type"})
    return backends


def _windows(checked: dict[str, Any], data: Any, source: str, errors: list[str]) -> dict[str, Window]:
    """Validate each window against WINDOW and build it; ``checked["windows"]`` gets the checked options."""
    if not checked["windows"]:
        return {}
    import datetime as dt

    from maint.windows import Ping, Window, exdates, window_name

    section = _raw(data, "windows")
    options_of: dict[str, Any] = {}
    windows: dict[str, Window] = {}
    for name, options in checked["windows"].items():
        path = f"windows.{name}"
        line = section.line_of(name) if isinstance(section, LineDict) else None
        try:
            window_name(name)
        except ValueError as error:
            errors.append(f"{_where(source, line, path)}: {error}")
            continue
        if not isinstance(options, dict):
            errors.append(f"{_where(source, line, path)}: expected a mapping of window options (cron or rrule, "
                          f"duration, ...), got {options!r}")  # fmt: skip
            continue
        found = len(errors)
        values = _validate(WINDOW, options, path + ".", source, errors)
        options_of[name] = values
        given = {key for key, value in options.items() if value is not None}
        if {"cron", "rrule"} <= given:
            errors.append(f"{_where(source, line, path)}: give either 'cron' or 'rrule', not both")
        elif not {"cron", "rrule"} & given:
            errors.append(f"{_where(source, line, path)}: needs 'cron' or 'rrule' (when the window opens)")
        if "duration" not in given:
            errors.append(f"{_where(source, line, path)}: needs 'duration' (how long it stays open, e.g. 2h)")
        if len(errors) > found:
            continue
        ping = values["ping"]
        try:
            windows[name] = Window(
                name=name, duration=dt.timedelta(seconds=values["duration"]), cron=values["cron"],
                rrule=values["rrule"], timezone=values["timezone"],
                blackouts=(*values["blackouts"], *exdates(values["rrule"], values["timezone"])),
                holidays=values["holidays"], hosts=values["hosts"], playbooks=tuple(values["playbooks"]),
                grace=dt.timedelta(seconds=values["grace"]),
                ping=Ping(start=ping["start"], success=ping["success"], fail=ping["fail"]),
            )  # fmt: skip
        except ValueError as error:
            errors.append(f"{_where(source, line, path)}: {error}")
    checked["windows"] = options_of
    return windows


def _raw(data: Any, *keys: str) -> Any:
    """The raw (line-aware) value at ``keys`` in the loaded YAML, or None."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
             "list": "a list", "dict": "a mapping"}  # fmt: skip
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def _check_routes(
    tickets: Mapping[str, Any], backends: Mapping[str, Any], data: Any, source: str, errors: list[str]
) -> None:
    raw_routes = _raw(data, "tickets", "routing")
    for index, route in enumerate(tickets["routing"]):
        raw_route = raw_routes[index] if isinstance(raw_routes, list) and index < len(raw_routes) else None
        route_line = raw_route.line if isinstance(raw_route, LineDict) else None
        backends_line = raw_route.line_of("backends") if isinstance(raw_route, LineDict) else None
        for name in route.get("backends", []):
            if name != "local" and name not in backends:
                known = ", ".join(["local", *backends])
                errors.append(f"{_where(source, backends_line, f'tickets.routing[{index}].backends')}: "
                              f"unknown backend '{name}' (defined: {known})")  # fmt: skip
        if "backends" not in route:
            errors.append(f"{_where(source, route_line, f'tickets.routing[{index}]')}: needs 'backends'")
    raw_overrides = _raw(data, "tickets", "overrides")
    for pattern, values in tickets["overrides"].items():
        line = raw_overrides.line_of(pattern) if isinstance(raw_overrides, LineDict) else None
        if not isinstance(values, dict):
            errors.append(f"{_where(source, line, f'tickets.overrides.{pattern}')}: "
                          "expected {tier: L1|L2|L3, severity: ...}")  # fmt: skip
            continue
        checked: list[str] = []
        _validate(OVERRIDE, values, f"tickets.overrides.{pattern}.", source, checked)
        errors.extend(checked)


def describe(section: Section = SCHEMA, prefix: str = "") -> list[tuple[str, str, Any]]:
    """Every option as (path, description, default) for ``config show`` and the docs."""
    rows: list[tuple[str, str, Any]] = []
    for name, spec in section.fields.items():
        path = prefix + name
        if isinstance(spec, Section):
            rows.extend(describe(spec, path + "."))
        elif isinstance(spec, Items):
            rows.append((path, spec.help, spec.default or []))
        else:
            rows.append((path, spec.help, spec.default))
    return rows


def replace(config: Config, **tickets: Any) -> Config:
    """A copy of ``config`` with ``tickets`` options changed (for tests and the CLI)."""
    data = dict(config.data)
    data["tickets"] = {**config.tickets, **tickets}
    return dataclasses.replace(config, data=data)
