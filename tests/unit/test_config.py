"""maint.yml: defaults, a full valid file, every error with file:line and option path, overrides, describe()."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import pytest

from maint import config
from maint.config import SCHEMA, Config, ConfigError, Section, describe, load
from maint.errors import BadInput

HAVE_WEBHOOK = importlib.util.find_spec("maint.tickets.backends.webhook") is not None
needs_webhook = pytest.mark.skipif(not HAVE_WEBHOOK, reason="maint/tickets/backends/webhook.py is not there yet")

FULL = """\
store: sqlite:///var/maint.db
tickets:
  enabled: true
  open_on: [failed, error, warning]
  unreachable: false
  open_after: 2
  resolve_after: 3
  reopen_within: 3d
  flap:
    window: 12
    high: 60
    low: 20
  escalation:
    - occurrences: 4
    - tier: L2
      hours: 48
    - severity_rise: true
  remediation:
    max_attempts: 2
    runs: 8
    recurring: 2
  overrides:
    av.clamav:
      tier: L2
    "backup*":
      severity: critical
  quiet:
    - hosts: web
      checks: [service.*, web-health]
      playbooks: updates-apply
      start: 2026-11-28T02:00:00Z
      end: 2026-11-28T04:00:00Z
      reason: CHG-1234 kernel updates
  backends:
    hooks:
      type: webhook
      url: https://hooks.example.invalid/maint
      format: slack
      token: env:MAINT_WEBHOOK_TOKEN
  routing:
    - tier: [L2, L3]
      backends: [hooks]
      queue: sysadmins
    - check: backup*
      backends: [local, hooks]
  timeout: 10s
  deliver_within: 1m
"""


def write(directory: Path, text: str, name: str = "maint.yml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path=path)
    return caught.value.errors


def only_error(path: Path) -> str:
    errors = errors_of(path)
    assert len(errors) == 1, errors
    return errors[0]


@pytest.fixture(autouse=True)
def no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAINT_CONFIG", raising=False)


# Defaults


def test_no_file_gives_every_default(tmp_path: Path) -> None:
    loaded = load(project_dir=tmp_path)
    assert loaded.path is None
    assert loaded.store is None
    assert loaded.backends == {}
    tickets = loaded.tickets
    assert tickets["enabled"] is True
    assert tickets["open_on"] == ["failed", "error"]
    assert tickets["unreachable"] is True
    assert (tickets["open_after"], tickets["resolve_after"]) == (1, 1)
    assert tickets["reopen_within"] == 24 * 3600.0
    assert tickets["flap"] == {"window": 10, "high": 50.0, "low": 25.0}
    assert tickets["escalation"] == [{"occurrences": 3}, {"severity_rise": True}]
    assert tickets["remediation"] == {"max_attempts": 3, "runs": 10, "recurring": 3}
    assert tickets["overrides"] == {} and tickets["quiet"] == [] and tickets["routing"] == []
    assert tickets["backends"] == {}
    assert (tickets["timeout"], tickets["deliver_within"]) == (5.0, 30.0)


def test_maint_yml_in_the_project_directory_is_found(tmp_path: Path) -> None:
    write(tmp_path, "tickets:\n  open_after: 4\n")
    loaded = load(project_dir=tmp_path)
    assert loaded.path == tmp_path / "maint.yml"
    assert loaded.tickets["open_after"] == 4


def test_maint_config_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "tickets:\n  open_after: 4\n")
    other = write(tmp_path, "tickets:\n  open_after: 6\n", name="other.yml")
    monkeypatch.setenv("MAINT_CONFIG", str(other))
    assert load(project_dir=tmp_path).tickets["open_after"] == 6


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    loaded = load(path=path)
    assert loaded.path == path
    assert loaded.data == load(project_dir=tmp_path / "nowhere").data


def test_a_null_section_gives_its_defaults(tmp_path: Path) -> None:
    loaded = load(path=write(tmp_path, "tickets:\n"))
    assert loaded.tickets["open_after"] == 1


def test_replace_changes_tickets_options_in_a_copy(tmp_path: Path) -> None:
    original = load(project_dir=tmp_path)
    changed = config.replace(original, open_after=5)
    assert changed.tickets["open_after"] == 5
    assert original.tickets["open_after"] == 1
    assert changed.tickets["resolve_after"] == 1


# A full valid file


@needs_webhook
def test_full_example_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    loaded = load(path=path)
    assert loaded.path == path
    assert loaded.store == "sqlite:///var/maint.db"
    tickets = loaded.tickets
    assert tickets["open_on"] == ["failed", "error", "warning"]
    assert tickets["unreachable"] is False
    assert (tickets["open_after"], tickets["resolve_after"]) == (2, 3)
    assert tickets["reopen_within"] == 3 * 86400.0
    assert tickets["flap"] == {"window": 12, "high": 60.0, "low": 20.0}
    assert tickets["escalation"] == [{"occurrences": 4}, {"tier": "L2", "hours": 48.0}, {"severity_rise": True}]
    assert tickets["remediation"] == {"max_attempts": 2, "runs": 8, "recurring": 2}
    assert tickets["quiet"] == [
        {
            "hosts": "web",
            "checks": ["service.*", "web-health"],
            "playbooks": ["updates-apply"],
            "start": "2026-11-28T02:00:00+00:00",
            "end": "2026-11-28T04:00:00+00:00",
            "reason": "CHG-1234 kernel updates",
        }
    ]
    assert tickets["routing"] == [
        {"tier": ["L2", "L3"], "backends": ["hooks"], "queue": "sysadmins"},
        {"check": ["backup*"], "backends": ["local", "hooks"]},
    ]
    assert (tickets["timeout"], tickets["deliver_within"]) == (10.0, 60.0)
    assert list(loaded.backends) == ["hooks"]
    hooks = loaded.backends["hooks"]
    assert (hooks.name, hooks.type) == ("hooks", "webhook")
    assert dict(hooks.options) == {
        "url": "https://hooks.example.invalid/maint",
        "format": "slack",
        "token": "env:MAINT_WEBHOOK_TOKEN",
    }


@needs_webhook
def test_full_example_builds_a_policy(tmp_path: Path) -> None:
    from maint.tickets.policy import EscalationRule, Policy

    policy = Policy.from_config(load(path=write(tmp_path, FULL)).tickets)
    assert policy.open_after == 2
    assert policy.escalation[1] == EscalationRule(tier="L2", hours=48.0)
    assert policy.flap.window == 12
    assert policy.history_size == 12


# Errors: file, line and option path


def test_an_invalid_value_names_file_line_and_option(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          resolve_after: 2
          open_after: 0
        """)
    assert only_error(path) == f"{path}:3: At 'tickets.open_after': expected a whole number >= 1, got 0"


@pytest.mark.parametrize(
    ("text", "line", "option", "expected"),
    [
        ("tickets:\n  enabled: yes please\n", 2, "tickets.enabled", "expected true or false"),
        ("tickets:\n  open_on: [failed, broken]\n", 2, "tickets.open_on", "expected names from"),
        ("tickets:\n  reopen_within: soon\n", 2, "tickets.reopen_within", "expected a duration"),
        ("tickets:\n  flap:\n    high: 150\n", 3, "tickets.flap.high", "expected a percentage from 0 to 100"),
        ("tickets:\n  flap:\n    window: 2\n", 3, "tickets.flap.window", "expected a whole number >= 3"),
        ("tickets:\n  remediation:\n    runs: true\n", 3, "tickets.remediation.runs", "expected a whole number"),
        ("tickets:\n  overrides: [a, b]\n", 2, "tickets.overrides", "expected a mapping"),
        ("tickets:\n  escalation: {occurrences: 2}\n", 2, "tickets.escalation", "expected a list of mappings"),
        ("tickets:\n  timeout: -5\n", 2, "tickets.timeout", "expected a duration >= 0"),
        ("tickets:\n  flap: 10\n", 2, "tickets.flap", "expected a mapping, got 10"),
        ("store: ''\n", 1, "store", "expected text"),
        ("store_busy_timeout: 0\n", 1, "store_busy_timeout", "expected a duration longer than 0"),
        ("store_busy_timeout: forever\n", 1, "store_busy_timeout", "expected a duration"),
    ],
)
def test_value_errors(tmp_path: Path, text: str, line: int, option: str, expected: str) -> None:
    path = write(tmp_path, text)
    error = only_error(path)
    assert error.startswith(f"{path}:{line}: At '{option}': ")
    assert expected in error


def test_quiet_times_may_be_quoted_or_plain_yaml_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          quiet:
            - start: "2026-11-28T02:00:00Z"
              end: 2026-11-29
        """)
    (rule,) = load(path=path).tickets["quiet"]
    assert rule == {"start": "2026-11-28T02:00:00Z", "end": "2026-11-29"}


def test_a_quiet_time_that_is_not_iso_8601_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets:\n  quiet:\n    - reason: patching\n      start: tonight\n")
    error = only_error(path)
    assert error.startswith(f"{path}:4: At 'tickets.quiet[0].start': expected a time in ISO 8601")


def test_an_escalation_rule_error_names_the_item(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          escalation:
            - occurrences: 3
            - tier: L3
              hours: 4
        """)
    assert only_error(path) == f"{path}:4: At 'tickets.escalation[1].tier': expected one of L1, L2, got 'L3'"


def test_a_list_item_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          quiet:
            - reason: patching
            - just a string
        """)
    assert only_error(path) == f"{path}:4: At 'tickets.quiet[1]': expected a mapping"


def test_several_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          open_after: 0
          flap:
            high: 200
          escalation:
            - occurrences: -1
          colour: red
        """)
    errors = errors_of(path)
    assert len(errors) == 4
    assert any(error.startswith(f"{path}:2: At 'tickets.open_after'") for error in errors)
    assert any(error.startswith(f"{path}:4: At 'tickets.flap.high'") for error in errors)
    assert any(error.startswith(f"{path}:6: At 'tickets.escalation[0].occurrences'") for error in errors)
    assert any(error.startswith(f"{path}:7: At 'tickets.colour'") for error in errors)
    with pytest.raises(ConfigError) as caught:
        load(path=path)
    assert "(and 3 more: run 'maint config validate')" in str(caught.value)
    assert caught.value.source == str(path)
    assert isinstance(caught.value, BadInput)


@pytest.mark.parametrize(
    ("text", "line", "option", "hint"),
    [
        ("tickets:\n  open_afer: 2\n", 2, "tickets.open_afer", "did you mean 'open_after'?"),
        ("ticket:\n  open_after: 2\n", 1, "ticket", "did you mean 'tickets'?"),
        ("tickets:\n  flap:\n    hihg: 60\n", 3, "tickets.flap.hihg", "did you mean 'high'?"),
        ("tickets:\n  routing:\n    - backends: [local]\n      queu: ops\n", 4, "tickets.routing[0].queu",
         "did you mean 'queue'?"),
    ],
)
def test_unknown_keys_get_a_did_you_mean_hint(tmp_path: Path, text: str, line: int, option: str, hint: str) -> None:
    path = write(tmp_path, text)
    error = only_error(path)
    assert error == f"{path}:{line}: At '{option}': unknown option ({hint})"


def test_an_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "zzz: 1\n")
    known = "store, store_busy_timeout, tickets, audit, windows, notify, pings, inventory_timeout"
    assert only_error(path) == f"{path}:1: At 'zzz': unknown option (known: {known})"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets:\n  open_after: [1\n")
    with pytest.raises(BadInput) as caught:
        load(path=path)
    assert caught.value.source == str(path)
    assert caught.value.line is not None


# Backends and routing


@needs_webhook
def test_a_literal_secret_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            hooks:
              type: webhook
              url: https://hooks.example.invalid/maint
              token: s3cr3t-t0ken
        """)
    error = only_error(path)
    assert error.startswith(f"{path}:6: At 'tickets.backends.hooks.token': ")
    assert "give a reference (env:NAME or file:PATH)" in error
    assert "s3cr3t-t0ken" not in error


@needs_webhook
def test_a_secret_reference_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            hooks:
              type: webhook
              url: https://hooks.example.invalid/maint
              signing_secret: file:/etc/maint/key
        """)
    assert load(path=path).backends["hooks"].options["signing_secret"] == "file:/etc/maint/key"


@needs_webhook
def test_an_unknown_backend_option_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            hooks:
              type: webhook
              url: https://hooks.example.invalid/maint
              fromat: json
        """)
    assert only_error(path) == f"{path}:6: At 'tickets.backends.hooks.fromat': unknown option (did you mean 'format'?)"


@needs_webhook
def test_a_backend_option_of_the_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            hooks:
              type: webhook
              url: https://hooks.example.invalid/maint
              verify_tls: maybe
        """)
    assert only_error(path) == f"{path}:6: At 'tickets.backends.hooks.verify_tls': expected true or false, got 'maybe'"


@needs_webhook
def test_a_required_backend_option_is_missing(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            hooks:
              type: webhook
        """)
    error = only_error(path)
    assert error.startswith(f"{path}:3: At 'tickets.backends.hooks': 'url' is required")


def test_an_unknown_backend_type(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            desk:
              type: carrier-pigeon
        """)
    error = only_error(path)
    assert error.startswith(f"{path}:3: At 'tickets.backends.desk.type': unknown backend type 'carrier-pigeon'")
    assert "known:" in error


def test_a_backend_without_a_type(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            desk:
              url: https://desk.example.invalid
        """)
    assert only_error(path).startswith(f"{path}:3: At 'tickets.backends.desk': needs 'type' (one of ")


def test_local_is_refused_as_a_backend_name(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          backends:
            local:
              type: email
        """)
    assert only_error(path) == (
        f"{path}:3: At 'tickets.backends.local': 'local' is the store itself; choose another name"
    )


def test_routing_to_an_undefined_backend(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          routing:
            - tier: L3
              backends: [local, pager]
        """)
    error = only_error(path)
    assert error == f"{path}:4: At 'tickets.routing[0].backends': unknown backend 'pager' (defined: local)"


def test_a_routing_rule_needs_backends(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          routing:
            - tier: L3
              queue: oncall
        """)
    assert only_error(path) == f"{path}:3: At 'tickets.routing[0]': needs 'backends'"


def test_a_routing_rule_with_empty_backends_needs_backends(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets:\n  routing:\n    - queue: oncall\n      backends:\n")
    assert only_error(path) == f"{path}:3: At 'tickets.routing[0]': needs 'backends'"


def test_an_empty_rule_key_is_left_out_of_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets:\n  routing:\n    - backends: [local]\n      tier:\n  quiet:\n    - hosts:\n")
    loaded = load(path=path)
    assert loaded.tickets["routing"] == [{"backends": ["local"]}]
    assert loaded.tickets["quiet"] == [{"hosts": "all"}]


def test_routing_only_to_local_needs_no_backend(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets:\n  routing:\n    - backends: local\n")
    assert load(path=path).tickets["routing"] == [{"backends": ["local"]}]


def test_schema_and_override_errors_are_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          open_after: 0
          overrides:
            disk:
              tier: L9
        """)
    errors = errors_of(path)
    assert len(errors) == 2


# Overrides


def test_override_errors_name_the_pattern_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          overrides:
            av.*:
              tier: L4
              severity: critical
            disk:
              colour: red
        """)
    errors = errors_of(path)
    assert errors == [
        f"{path}:4: At 'tickets.overrides.av.*.tier': expected one of L1, L2, L3, got 'L4'",
        f"{path}:7: At 'tickets.overrides.disk.colour': unknown option (known: tier, severity)",
    ]


def test_an_override_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          overrides:
            disk: L2
        """)
    assert only_error(path) == (
        f"{path}:3: At 'tickets.overrides.disk': expected {{tier: L1|L2|L3, severity: ...}}"
    )


def overrides_config(overrides: dict[str, Any]) -> Config:
    return config.replace(load(path=None, project_dir=Path("/nonexistent-maint-project")), overrides=overrides)


def test_override_matches_the_step_id_before_the_type() -> None:
    loaded = overrides_config({"disk.*": {"tier": "L3"}, "root-disk": {"tier": "L2", "severity": "critical"}})
    assert loaded.override("root-disk", "disk.usage") == {"tier": "L2", "severity": "critical"}
    assert loaded.override("data-disk", "disk.usage") == {"tier": "L3"}


def test_override_uses_shell_patterns_and_gives_nothing_without_a_match() -> None:
    loaded = overrides_config({"backup-*": {"severity": "critical"}, "av.clam?v": {"tier": "L2"}})
    assert loaded.override("backup-nightly", "backup.age") == {"severity": "critical"}
    assert loaded.override("antivirus", "av.clamav") == {"tier": "L2"}
    assert loaded.override("load", "load.average") == {}
    assert loaded.override("Backup-nightly", "backup.age") == {}  # case matters


def test_override_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        tickets:
          overrides:
            "backup*":
              severity: critical
        """)
    assert load(path=path).override("backup-db", "backup.age") == {"severity": "critical"}


# describe()


def option_paths(section: Section, prefix: str = "") -> list[str]:
    paths = []
    for name, spec in section.fields.items():
        if isinstance(spec, Section):
            paths.extend(option_paths(spec, prefix + name + "."))
        else:
            paths.append(prefix + name)
    return paths


def flattened(data: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for name, value in data.items():
        if isinstance(value, dict) and name not in ("overrides", "backends", "windows"):
            paths.extend(flattened(value, prefix + name + "."))
        else:
            paths.append(prefix + name)
    return paths


def test_describe_covers_every_option(tmp_path: Path) -> None:
    rows = describe()
    paths = [path for path, _help, _default in rows]
    assert len(paths) == len(set(paths))
    assert paths == option_paths(SCHEMA)
    assert sorted(paths) == sorted(flattened(dict(load(project_dir=tmp_path).data)))
    assert {"store", "tickets.open_after", "tickets.flap.low", "tickets.remediation.recurring",
            "tickets.routing", "tickets.quiet", "tickets.backends"} <= set(paths)  # fmt: skip
    assert all(help_text.strip() for _path, help_text, _default in rows)


def test_describe_gives_the_declared_defaults() -> None:
    defaults = {path: default for path, _help, default in describe()}
    assert defaults["tickets.open_after"] == 1
    assert defaults["tickets.reopen_within"] == "24h"
    assert defaults["tickets.escalation"] == [{"occurrences": 3}, {"severity_rise": True}]
    assert defaults["tickets.routing"] == []
    assert defaults["store"] is None
    assert defaults["store_busy_timeout"] == "10s"


def test_a_quiet_rule_refuses_a_subscript_it_could_not_match(tmp_path: Path) -> None:
    # Quiet rules match a finding's host without the inventory: 'web[0]' (the first web host) cannot be.
    path = write(tmp_path, "tickets:\n  quiet:\n    - hosts: 'web[0]'\n      checks: [disk]\n")
    error = only_error(path)
    assert error.startswith(f"{path}:3: At 'tickets.quiet[0].hosts': invalid host pattern 'web[0]'")
    assert "a subscript needs the inventory's order" in error
