"""The schema of maint.yml: every option with its check, default, description and example; it drives
validation, ``maint config show`` and the documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from maint.config.values import (
    _apprise_urls,
    _blackouts,
    _choice,
    _cron,
    _duration,
    _flag,
    _holidays,
    _host_pattern,
    _mapping,
    _moment,
    _number,
    _percent,
    _positive_duration,
    _rrule,
    _rule_host_pattern,
    _text,
    _texts,
    _timeout,
    _timezone,
    _url,
    _whole,
)

TIERS = ("L1", "L2", "L3")
SEVERITIES = ("info", "warning", "critical")
# Unreachable hosts are not a check's failure: tickets.unreachable opens one ticket per host for them.
PROBLEM_STATUSES = ("failed", "error", "warning")


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
        "hosts": Field(_rule_host_pattern, "Hosts (an Ansible host pattern) the rule covers.", default="all",
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

NOTIFIER = Section(
    {
        "urls": Field(_apprise_urls, "Apprise URLs to send to (slack://, msteams://, matrix://, ntfy://, "
                      "mailto://, json://, form://, ...), each may be an env:NAME or file:PATH reference; masked "
                      "in every output (required).", example=["env:MAINT_SLACK_URL", "ntfys://ntfy.example.org/maint"]),
        "on": Field(_choice("failure", "success", "always"), "Which runs: failure (exit 1, 3, 4, 5, 6, 8, 130: "
                    "not 0, not 7), success (exit 0), always (every recorded run, 7 not started included).",
                    default="failure", example="always"),
        "title": Field(_text, "The title: a Jinja2 template over the run (the template's variables).",
                       default="maint: run {{ id }} {{ status }} (exit {{ exit_code }})",
                       example="maint {{ status }} on {{ hosts }} hosts"),
        "template": Field(_text, "The body: a Jinja2 file in the project's templates/, else maint's own. "
                          "Variables: id, status, exit_code, counts, problems, operator, reason, refs, "
                          "playbooks, hosts, started, finished, duration, error, report_url, run.",
                          default="notify-run.j2", example="notify-chat.j2"),
        "link": Field(_text, "Where a run's report can be seen: a URL with {id} for the run id (report_url).",
                      example="https://maint.example.org/runs/{id}"),
        "timeout": Field(_timeout, "Seconds a notification may take (connect, answer) before it counts as "
                         "failed (a warning).", default="10s", example="30s"),
    },
    "A notifier: where a run's outcome goes (Apprise URLs) and for which runs.",
)

SCHEMA = Section(
    {
        "store": Field(_text, "The store URL (SQLAlchemy; a relative SQLite path is relative to maint.yml); --db "
                       "and $MAINT_DB override it. Default: .maint/maint.db beside maint.yml.",
                       example="sqlite:///records/maint.db"),
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
        "notify": Items(NOTIFIER, "Notifications of run outcomes through Apprise (Slack, Teams, Matrix, ntfy, "
                        "mail, webhooks, ...); a notifier that fails only warns.", default=[]),
        "pings": Section(
            {
                "start": Field(_url, "Requested when any run starts.", example="https://hc-ping.example.org/UUID/start"),
                "success": Field(_url, "Requested when any run went through (exit 0, 4, 5).",
                                 example="https://hc-ping.example.org/UUID"),
                "fail": Field(_url, "Requested when any run did not go through (exit 1, 3, 6, 8, 130).",
                              example="https://hc-ping.example.org/UUID/fail"),
            },
            "Dead man's switch URLs (http(s), or env:/file: references) pinged by every run, windowed or not "
            "(a window's own ping URLs are pinged as well); optional.",
        ),
        "inventory_timeout": Field(_timeout, "How long one call of a dynamic inventory script (--list, --host) "
                                   "may take (at most 7d); then it is stopped with its child processes (exit 3).",
                                   default="60s", example="5m"),
    },
    "maint.yml",
)


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
