"""Playbook loading, validation with file and line, and per-host rendering of parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from maint import playbooks
from maint.checks import Status
from maint.errors import BadInput, ExitCode
from maint.templating import RenderError


def write(tmp_path: Path, text: str, name: str = "book.yml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_builtin_health_loads_by_name(tmp_path: Path) -> None:
    book = playbooks.load("health", tmp_path)
    assert book.builtin
    assert book.name == "health"
    assert [step.id for step in book.steps][:2] == ["root-disk", "load"]
    assert len(book.digest) == 64


def test_project_playbook_overrides_builtin(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    write(tmp_path / "playbooks", "steps:\n  - id: one\n    type: command\n    command: 'true'\n", "health.yml")
    book = playbooks.load("health", tmp_path)
    assert not book.builtin
    assert [step.id for step in book.steps] == ["one"]


def test_unknown_name_lists_known(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no playbook named 'nope'.*known: .*health") as caught:
        playbooks.load("nope", tmp_path)
    assert caught.value.exit_code is ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("steps:\n  - id: a\n    type: command\n    command: [unclosed\n", 5, "invalid YAML"),
        ("steps:\n  - id: a\n    type: nosuch\n", 3, "unknown type 'nosuch'"),
        ("steps:\n  - id: a\n    type: disk.usage\n    warn: lots\n", 4, "parameter 'warn'"),
        ("steps:\n  - id: a\n    type: disk.usage\n    wran: 3\n", 4, "unknown parameter 'wran'"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n  - id: a\n    type: command\n    command: y\n",
         5, "duplicate step id 'a'"),
        ("name: x\nstep: []\n", 2, "unknown key 'step'"),
        ("steps: []\n", 1, "'steps' must be a non-empty list"),
        ("steps:\n  - id: a\n    type: command\n    command: '{{ x '\n", 4, "template syntax error"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n    tier: L4\n", 5, "tier must be one of"),
        ("steps:\n  - id: a\n    type: file.age\n    path: /x\n", 2, "needs parameter 'max_age'"),
        ("steps:\n  - id: a\n    id: b\n", 3, "duplicate key 'id'"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n    timeout: soon\n", 5, "'timeout'"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n    tags: weekly\n", 5, "'tags' must be a list"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n    tags: [a, 'b,c']\n", 5, "no commas"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n    tags: [1]\n", 5, "'tags' must be a list"),
        ("steps:\n  - id: a\n    type: command\n    command: x\n    step_tags: [a]\n", 5, "write 'tags'"),
    ],
)
def test_bad_playbooks_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as caught:
        playbooks.load(path, tmp_path)
    error = caught.value
    assert message in str(error)
    assert str(error).startswith(f"{path}:{line}: ")
    assert error.exit_code is ExitCode.BAD_INPUT


def test_templates_render_per_host_and_quote_shell_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "steps:\n"
        "  - id: greet\n    type: command\n    command: echo {{ who }} {{ flags | raw }}\n"
        "  - id: disk\n    type: disk.usage\n    path: '{{ data_dir }}/db'\n    warn: '{{ warn_at }}'\n",
    )
    book = playbooks.load(path, tmp_path)
    greet = book.steps[0].instantiate({"who": "a; rm -rf /", "flags": "-n"})
    # The value travels in a variable assigned in single quotes; the command only references it.
    assert greet.command() == "__maint_v0='a; rm -rf /'\necho \"${__maint_v0}\" -n"
    disk = book.steps[1].instantiate({"data_dir": "/srv/my data", "warn_at": 70})
    assert disk.command() == "df -P -k -- '/srv/my data/db'"
    assert disk.values["warn"] == 70


def test_undefined_variable_is_a_render_error(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - id: a\n    type: command\n    command: echo {{ missing }}\n")
    step = playbooks.load(path, tmp_path).steps[0]
    with pytest.raises(RenderError, match="'missing' is undefined"):
        step.instantiate({})


def test_sandbox_blocks_attribute_escape(tmp_path: Path) -> None:
    path = write(
        tmp_path, "steps:\n  - id: a\n    type: command\n    command: \"{{ ''.__class__.__mro__ }}\"\n"
    )
    step = playbooks.load(path, tmp_path).steps[0]
    with pytest.raises(RenderError):
        step.instantiate({})


def test_step_metadata_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - id: a\n    type: command\n    command: x\n    tier: L3\n")
    step = playbooks.load(path, tmp_path).steps[0]
    assert (step.tier, step.severity, step.line) == ("L3", "warning", 2)
    assert step.instantiate({}).evaluate  # the type is built
    assert Status.OK == "ok"


def test_health_load_thresholds_come_from_host_vars(tmp_path: Path) -> None:
    load = next(step for step in playbooks.load("health", tmp_path).steps if step.id == "load")
    default = load.instantiate({}).command()
    assert "-v warn=2" in default
    assert "-v critical=4" in default
    raised = load.instantiate({"health_load_warn": 8, "health_load_critical": "16; reboot"}).command()
    assert "-v warn=8" in raised
    assert "__maint_v1='16; reboot'\n" in raised
    assert '-v critical="${__maint_v1}"' in raised


def test_when_conditions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "steps:\n"
        "  - id: tls\n    type: cert.expiry\n    path: '{{ cert_path }}'\n    when: cert_path is defined\n"
        "  - id: sync\n    type: time.sync\n    when: time_sync_managed | default(true)\n"
        "  - id: bare\n    type: command\n    command: x\n    when: missing_var\n",
    )
    tls, sync, bare = playbooks.load(path, tmp_path).steps
    assert not tls.applies({})
    assert tls.applies({"cert_path": "/a.pem"})
    assert sync.applies({})
    assert not sync.applies({"time_sync_managed": False})
    assert not sync.applies({"time_sync_managed": "false"})
    with pytest.raises(RenderError, match="missing_var"):
        bare.applies({})


def test_bad_when_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - id: a\n    type: command\n    command: x\n    when: 'a ==== b'\n")
    with pytest.raises(BadInput, match=r"book.yml:5: step 'a': bad 'when' expression"):
        playbooks.load(path, tmp_path)


def test_include_concatenates_steps_and_keeps_their_timeouts(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    write(tmp_path / "playbooks", "timeout: 5m\nsteps:\n  - id: a\n    type: command\n    command: x\n", "first.yml")
    write(tmp_path / "playbooks", "steps:\n  - id: b\n    type: command\n    command: y\n", "second.yml")
    path = write(tmp_path, "include: [first, second]\nsteps:\n  - id: c\n    type: command\n    command: z\n")
    book = playbooks.load(path, tmp_path)
    assert [step.id for step in book.steps] == ["a", "b", "c"]
    assert book.steps[0].timeout == 300
    assert book.steps[1].timeout is None
    # The digest covers the included files: editing one changes it.
    write(tmp_path / "playbooks", "steps:\n  - id: b\n    type: command\n    command: y2\n", "second.yml")
    assert playbooks.load(path, tmp_path).digest != book.digest


def test_include_errors(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    write(tmp_path / "playbooks", "include: [loop-b]\n", "loop-a.yml")
    write(tmp_path / "playbooks", "include: [loop-a]\n", "loop-b.yml")
    with pytest.raises(BadInput, match="include each other"):
        playbooks.load("loop-a", tmp_path)
    path = write(tmp_path, "include: [nosuch]\n")
    with pytest.raises(BadInput, match=r"book.yml:1: no playbook named 'nosuch'"):
        playbooks.load(path, tmp_path)
    twice = write(tmp_path, "include: [health, health]\n", "twice.yml")
    with pytest.raises(BadInput, match="used twice"):
        playbooks.load(twice, tmp_path)


def test_nightly_includes_the_read_only_catalogue(tmp_path: Path) -> None:
    nightly = playbooks.load("nightly", tmp_path)
    health = playbooks.load("health", tmp_path)
    ids = [step.id for step in nightly.steps]
    assert ids[: len(health.steps)] == [step.id for step in health.steps]
    assert "virus-scan" in ids
    assert not any(step.step_class.changes_host for step in nightly.steps)



def test_step_tags_and_the_ansible_steps_own_tags_parameter(tmp_path: Path) -> None:
    book = playbooks.load(write(tmp_path, (
        "steps:\n  - id: a\n    type: command\n    command: x\n    tags: [security, weekly]\n"
        "  - id: site\n    type: ansible\n    playbook: site.yml\n    tags: [nginx]\n    step_tags: [deploy]\n"
        "  - id: plain\n    type: command\n    command: y\n"
    )), tmp_path)  # fmt: skip
    command, ansible, plain = book.steps
    assert command.tags == ("security", "weekly") and "tags" not in command.params
    # The ansible step's `tags` stays the Ansible playbook's task filter; its step tags are `step_tags`.
    assert ansible.params["tags"] == ["nginx"] and ansible.tags == ("deploy",)
    assert plain.tags == ()


@pytest.mark.parametrize(
    ("tags", "only", "skip", "runs"),
    [
        ((), (), (), True),
        (("x",), (), (), True),
        (("never",), (), (), False),
        (("never", "debug"), ("debug",), (), True),
        (("never",), ("never",), (), True),
        (("x",), ("y",), (), False),
        (("x", "y"), ("y",), (), True),
        ((), ("x",), (), False),
        (("always",), ("x",), (), True),
        (("always",), ("x",), ("always",), False),
        (("always",), (), ("all",), True),
        (("always",), (), ("all", "always"), False),
        (("x",), (), ("all",), False),
        (("x",), ("x",), ("x",), False),
        (("x",), ("tagged",), (), True),
        ((), ("tagged",), (), False),
        ((), ("untagged",), (), True),
        (("x",), ("untagged",), (), False),
        (("x",), (), ("tagged",), False),
        ((), (), ("untagged",), False),
        (("never",), ("all",), (), False),
        (("never", "x"), ("tagged",), (), False),
    ],
)
def test_tags_choose_steps_as_ansible_chooses_tasks(
    tags: tuple[str, ...], only: tuple[str, ...], skip: tuple[str, ...], runs: bool
) -> None:
    assert playbooks.selected(tags, only, skip) is runs


def test_the_adhoc_playbook_of_maint_exec(tmp_path: Path) -> None:
    book = playbooks.adhoc("web:!web2", "uptime")
    assert (book.name, book.hosts, len(book.steps)) == ("exec", "web:!web2", 1)
    assert book.adhoc == {"hosts": "web:!web2", "command": "uptime", "template": True}
    assert book.steps[0].id.startswith("command-") and book.steps[0].type == "command"
    assert playbooks.adhoc("web:!web2", "uptime").digest == book.digest  # built again the same (resume, rerun)
    assert playbooks.adhoc("web", "uptime").steps[0].id != playbooks.adhoc("web", "uname").steps[0].id
    with pytest.raises(BadInput, match=r"^the command: template syntax error.*\(--no-template sends"):
        playbooks.adhoc("all", "docker ps --format '{{.Names}}'")
    raw = playbooks.adhoc("all", "docker ps --format '{{.Names}}'", template=False)
    assert raw.steps[0].instantiate({}).command() == "docker ps --format '{{.Names}}'"
    with pytest.raises(BadInput, match="invalid host pattern"):
        playbooks.adhoc("web[", "uptime")
    secret = playbooks.adhoc("all", "PGPASSWORD=hunter22 psql -c 'select 1'")
    assert secret.adhoc == {"hosts": "all", "command": "PGPASSWORD=*** psql -c 'select 1'", "template": True,
                            "redacted": True}  # fmt: skip
