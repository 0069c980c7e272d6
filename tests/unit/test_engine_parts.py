"""Pure parts of the engine and the CLI: exit status, redaction, CI facts, -e parsing, summaries."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from maint.cli.options import parse_extra_vars
from maint.errors import ExitCode
from maint.provenance import ci_metadata, in_ci, operator_name
from maint.reports.text import natural_key, problem_rows, run_facts, run_summary
from maint.run import final_status
from maint.secrets import redact_argv, redact_vars


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"ok": 5}, ("ok", ExitCode.OK)),
        ({"ok": 5, "warning": 2}, ("ok", ExitCode.OK)),
        ({"ok": 5, "failed": 1, "unreachable": 3}, ("failed", ExitCode.FAILED)),
        ({"ok": 5, "error": 1}, ("failed", ExitCode.FAILED)),
        ({"ok": 5, "unreachable": 1}, ("unreachable", ExitCode.UNREACHABLE)),
    ],
)
def test_final_status(counts: dict[str, int], expected: tuple[str, ExitCode]) -> None:
    assert final_status(counts) == expected


def test_redaction_masks_secret_looking_names() -> None:
    argv = ["maint", "run", "x", "-e", "db_password=hunter2", "-e", "region=eu", "--reason", "a=b"]
    assert redact_argv(argv) == ["maint", "run", "x", "-e", "db_password=***", "-e", "region=eu", "--reason", "a=b"]
    assert redact_vars({"api_token": "t", "host": "h"}) == {"api_token": "***", "host": "h"}


def test_ci_metadata_keeps_identifiers_not_tokens() -> None:
    environ = {"CI": "true", "GITHUB_RUN_ID": "42", "CI_JOB_TOKEN": "secret", "HOME": "/root"}
    assert ci_metadata(environ) == {"CI": "true", "GITHUB_RUN_ID": "42"}


def test_ci_metadata_of_gitlab_github_and_jenkins_jobs() -> None:
    gitlab = {
        "CI": "true", "GITLAB_CI": "true", "CI_JOB_ID": "7", "CI_PIPELINE_URL": "https://git.example/p/1",
        "CI_JOB_JWT": "eyJhbGciOi", "CI_JOB_JWT_V2": "eyJ", "CI_REGISTRY_PASSWORD": "pw", "CI_DEPLOY_PASSWORD": "pw",
        "CI_REPOSITORY_URL": "https://gitlab-ci-token:glcbt-abc@git.example/ops/fleet.git",
        "GITLAB_USER_LOGIN": "alice", "PATH": "/usr/bin",
    }  # fmt: skip
    assert ci_metadata(gitlab) == {
        "CI": "true", "CI_JOB_ID": "7", "CI_PIPELINE_URL": "https://git.example/p/1",
        "CI_REPOSITORY_URL": "https://***@git.example/ops/fleet.git", "GITLAB_CI": "true",
        "GITLAB_USER_LOGIN": "alice",
    }  # fmt: skip
    github = {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "ghs_x", "GITHUB_EVENT_NAME": "schedule",
              "RUNNER_NAME": "r1", "ACTIONS_RUNTIME_TOKEN": "t"}  # fmt: skip
    assert ci_metadata(github) == {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "schedule", "RUNNER_NAME": "r1"}
    jenkins = {"JENKINS_URL": "https://ci.example/", "BUILD_TAG": "jenkins-fleet-12", "JOB_NAME": "fleet",
               "JENKINS_API_TOKEN": "t", "BUILD_NUMBER": "12"}  # fmt: skip
    assert ci_metadata(jenkins) == {"BUILD_NUMBER": "12", "BUILD_TAG": "jenkins-fleet-12",
                                    "JENKINS_URL": "https://ci.example/", "JOB_NAME": "fleet"}  # fmt: skip
    assert in_ci(jenkins) and in_ci(github) and not in_ci({"CI_JOB_ID": "7", "HOME": "/root"})


def test_operator_prefers_sudo_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "alice")
    assert operator_name() == "alice"


def test_extra_vars_forms(tmp_path: Path) -> None:
    varfile = tmp_path / "vars.yml"
    varfile.write_text("threshold: 70\nlist: [1, 2]\n")
    parsed = parse_extra_vars(("a=1 b='two words'", '{"c": 3}', f"@{varfile}"))
    assert parsed == {"a": "1", "b": "two words", "c": 3, "threshold": 70, "list": [1, 2]}


@pytest.mark.parametrize("bad", ["novalue", "{not a mapping", "@/nonexistent/file.yml", "1abc=2"])
def test_extra_vars_errors(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_extra_vars((bad,))


def result(host: str, step: str, status: str, summary: str = "") -> dict[str, object]:
    return {"host": host, "step": step, "playbook": "p", "status": status, "summary": summary}


def test_problem_rows_fold_an_unreachable_host_and_order_by_host_then_step() -> None:
    rows = problem_rows([
        result("a", "disk", "ok"),
        result("a", "load", "warning", "high"),
        result("b", "disk", "unreachable", "refused"),
        result("b", "load", "unreachable", "refused"),
        result("c", "disk", "failed", "97% used"),
    ])
    assert rows == [
        ["a", "load", "warning", "high"],
        ["b", "(all 2)", "unreachable", "refused"],
        ["c", "disk", "failed", "97% used"],
    ]


def test_problem_rows_sort_hosts_and_steps_in_natural_order() -> None:
    rows = problem_rows([
        result("lab10", "disk", "failed"),
        result("lab2", "step10", "failed"),
        result("lab2", "step2", "error"),
        result("lab1", "disk", "warning"),
        result("web-10a", "disk", "failed"),
        result("web-2b", "disk", "failed"),
    ])
    assert [(row[0], row[1]) for row in rows] == [
        ("lab1", "disk"), ("lab2", "step2"), ("lab2", "step10"), ("lab10", "disk"), ("web-2b", "disk"),
        ("web-10a", "disk"),
    ]  # fmt: skip
    assert natural_key("lab02") == natural_key("lab2") and natural_key("a") < natural_key("a1") < natural_key("b")


def test_run_facts_quote_the_command_as_a_shell_would() -> None:
    argv = ["maint", "run", "health", "-l", "web:!canary", "--reason", "CHG-1234 it's monthly", "-e", "x=$HOME"]
    document = {
        "id": "r1", "status": "ok", "exit_code": 0, "started": "2026-01-01T00:00:00.000Z", "finished": None,
        "operator": "ops", "controller": "c1", "reason": None, "playbooks": [], "argv": argv,
        "inventory": {"sources": ["hosts.ini"], "digest": "0" * 64}, "maint_version": "1",
    }  # fmt: skip
    line = next(line for line in run_facts(document).splitlines() if line.startswith("command"))
    command = line.partition("command")[2].strip()
    assert command == "maint run health -l 'web:!canary' --reason 'CHG-1234 it'\"'\"'s monthly' -e 'x=$HOME'"
    assert shlex.split(command) == argv


def test_run_summary_names_exit_meaning() -> None:
    document = {
        "id": "r1", "status": "failed", "exit_code": 4, "hosts": ["a", "c"],
        "started": "2026-01-01T00:00:00.000Z", "finished": "2026-01-01T00:00:02.500Z",
        "results": [result("a", "disk", "ok"), result("c", "disk", "failed", "97% used")],
    }  # fmt: skip
    text = run_summary(document)
    assert text.splitlines()[0] == "run r1: failed (2 hosts, 2 results, 2.5s)"
    assert "exit 4: at least one step failed" in text
    assert "97% used" in text


def test_every_step_type_builds_with_its_defaults() -> None:
    from maint import registry
    from maint.checks import ParamError

    for name in registry.names(registry.STEP_TYPES):
        step_type = registry.load(registry.STEP_TYPES, name)
        required = {key: "x" for key, param in step_type.params.items() if param.required}
        try:
            instance = step_type(required)
        except ParamError:
            continue  # a required parameter wants a particular form (a duration, a secret reference)
        for key, param in step_type.params.items():
            if isinstance(param.default, str) and key not in required:
                assert instance.values[key] == param.convert(param.default), (name, key)
