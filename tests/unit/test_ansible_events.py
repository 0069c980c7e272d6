"""The Ansible step's pure parts: runner events to task results, module diffs, phases, Ansible playbook files.

The event dictionaries are shaped like the ones ansible-runner hands its ``event_handler`` (the
``awx_display`` callback's ``runner_on_*`` events): ``event`` and ``event_data`` with ``host``, ``task``,
``task_action``, ``res`` (absent from ``runner_on_skipped``), ``ignore_errors`` (on failures) and
``duration``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maint import playbooks
from maint.errors import BadInput, ExitCode
from maint.executors.ansible import TaskResult, _diff_text, task_result
from maint.inventory import Host
from maint.playbooks import Playbook, is_ansible_playbook
from maint.run import Phase, PlannedStep, phases


def event(kind: str, host: str = "web1", task: str = "restart nginx", action: str = "ansible.builtin.command",
          result: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A ``runner_on_*`` event as ansible-runner reports it (only the fields maint reads, plus a few around)."""
    data: dict[str, Any] = {
        "playbook": "site.yml",
        "play": "all",
        "play_pattern": "all",
        "task": task,
        "task_action": action,
        "resolved_action": action,
        "task_path": "/project/site.yml:4",
        "host": host,
        "remote_addr": "127.0.0.2",
        "start": "2024-05-01T10:00:00.000000+00:00",
        "end": "2024-05-01T10:00:01.250000+00:00",
        "duration": 1.25,
        "event_loop": None,
        **extra,
    }
    if result is not None:
        data["res"] = result
    return {"uuid": "5f7c", "counter": 7, "stdout": "", "event": kind, "pid": 4242, "event_data": data}


STARTED = {("web1", "restart nginx"): 1_700_000_000.0}


def converted(kind: str, result: dict[str, Any] | None = None, **extra: Any) -> TaskResult:
    found = task_result(event(kind, result=result, **extra), STARTED)
    assert found is not None
    return found


def test_ok_command_keeps_its_output_and_timing() -> None:
    found = converted("runner_on_ok", {"changed": False, "rc": 0, "stdout": "active\nsince today", "stderr": "",
                                       "msg": "", "cmd": ["systemctl", "is-active", "nginx"]})  # fmt: skip
    assert (found.host, found.task, found.module) == ("web1", "restart nginx", "ansible.builtin.command")
    assert (found.status, found.changed, found.rc) == ("ok", False, 0)
    assert found.summary == "ok: active"
    assert found.output == "active\nsince today"
    assert found.started == 1_700_000_000.0
    assert found.duration == 1.25


def test_changed_task_says_changed() -> None:
    found = converted("runner_on_ok", {"changed": True, "dest": "/etc/motd", "checksum": "ab12"},
                      action="ansible.builtin.copy")  # fmt: skip
    assert (found.status, found.changed, found.rc) == ("ok", True, None)
    assert found.summary == "changed"
    assert found.output == ""


def test_failed_command_reports_rc_and_stderr_instead_of_the_generic_message() -> None:
    found = converted("runner_on_failed", {
        "changed": True, "rc": 2, "stdout": "", "msg": "non-zero return code",
        "stderr": "ls: cannot access '/srv/data': No such file or directory\nsecond line",
    }, ignore_errors=None)  # fmt: skip
    assert (found.status, found.rc) == ("failed", 2)
    assert found.summary == "failed: rc=2: ls: cannot access '/srv/data': No such file or directory"
    assert "non-zero return code" not in found.summary
    assert found.output == "[stderr]\nls: cannot access '/srv/data': No such file or directory\nsecond line"


def test_failed_module_without_output_keeps_its_message() -> None:
    found = converted("runner_on_failed", {"changed": False, "msg": "Could not find the requested service nginx: host"},
                      action="ansible.builtin.service", ignore_errors=False)  # fmt: skip
    assert found.status == "failed"
    assert found.summary == "failed: Could not find the requested service nginx: host"
    assert found.output == "Could not find the requested service nginx: host"


def test_failure_with_ignore_errors_is_a_warning() -> None:
    found = converted("runner_on_failed", {"changed": False, "rc": 1, "stdout": "", "stderr": "grep: no match",
                                           "msg": "non-zero return code"}, ignore_errors=True)  # fmt: skip
    assert found.status == "warning"
    assert found.summary == "failed (ignored): rc=1: grep: no match"


def test_unreachable_keeps_ansibles_connection_message() -> None:
    message = "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.4 port 2222: Connection refused"
    found = converted("runner_on_unreachable", {"unreachable": True, "changed": False, "msg": message})
    assert (found.status, found.changed, found.rc) == ("unreachable", False, None)
    assert found.summary == message
    assert found.output == message


def test_skipped_without_a_result_says_why_it_may_be() -> None:
    # ansible-runner's runner_on_skipped carries no ``res`` at all.
    found = converted("runner_on_skipped")
    assert (found.status, found.changed) == ("skipped", False)
    assert found.summary == "skipped: by Ansible (a false when:, or no check mode support)"


def test_skipped_with_a_reason_gives_it() -> None:
    found = converted("runner_on_skipped", {"changed": False, "skipped": True,
                                            "skip_reason": "Conditional result was False",
                                            "false_condition": "inventory_hostname == 'lab2'"})  # fmt: skip
    assert found.summary == "skipped: Conditional result was False"


def test_a_task_without_a_name_is_named_by_its_action() -> None:
    found = task_result(event("runner_on_ok", task="", action="ansible.builtin.ping", result={"ping": "pong"}), {})
    assert found is not None
    assert found.task == "ansible.builtin.ping"
    assert found.summary == "ok"


@pytest.mark.parametrize(
    "kind",
    ["playbook_on_start", "playbook_on_play_start", "playbook_on_task_start", "runner_on_start", "verbose",
     "playbook_on_stats", "runner_item_on_ok", "warning"],
)  # fmt: skip
def test_other_events_are_not_results(kind: str) -> None:
    assert task_result(event(kind, result={"changed": True}), STARTED) is None


def test_diff_of_text_before_and_after_is_unified() -> None:
    diff = {"before": "one\ntwo\n", "after": "one\nthree\n", "before_header": "/etc/motd (content)",
            "after_header": "/etc/motd (content)"}  # fmt: skip
    text = _diff_text(diff)
    assert text.splitlines() == ["--- /etc/motd (content)", "+++ /etc/motd (content)", "@@ -1,2 +1,2 @@", " one",
                                 "-two", "+three"]  # fmt: skip


def test_diff_without_headers_and_of_structured_state() -> None:
    assert _diff_text({"before": "", "after": "new\n"}).splitlines() == ["--- before", "+++ after", "@@ -0,0 +1 @@",
                                                                         "+new"]  # fmt: skip
    state = _diff_text({"before": {"path": "/srv", "state": "absent"}, "after": {"path": "/srv", "state": "directory"}})
    assert state == '- {"path": "/srv", "state": "absent"}\n+ {"path": "/srv", "state": "directory"}'


def test_prepared_diff_is_taken_as_it_is() -> None:
    prepared = "--- before\n+++ after\n@@ -1 +1 @@\n-PermitRootLogin yes\n+PermitRootLogin no\n"
    assert _diff_text({"prepared": prepared}) == prepared.rstrip("\n")


def test_list_of_diffs_joins_the_ones_that_differ() -> None:
    diffs = [
        {"before": "same\n", "after": "same\n", "before_header": "/etc/a", "after_header": "/etc/a"},
        {"prepared": "+ package nginx"},
        {"before": "x\n", "after": "y\n", "before_header": "/etc/b", "after_header": "/etc/b"},
        "not a diff",
    ]
    text = _diff_text(diffs)
    assert text.splitlines() == ["+ package nginx", "--- /etc/b", "+++ /etc/b", "@@ -1 +1 @@", "-x", "+y"]
    assert "/etc/a" not in text


def test_equal_before_and_after_is_no_diff() -> None:
    assert _diff_text({"before": "same\n", "after": "same\n"}) == ""
    assert _diff_text([{"before": {"state": "file"}, "after": {"state": "file"}}]) == ""
    assert _diff_text([]) == ""


def test_a_diff_in_the_result_goes_to_the_output() -> None:
    found = converted("runner_on_ok", {"changed": True, "diff": [
        {"before": "", "after": "hello\n", "before_header": "/tmp/f", "after_header": "/tmp/f"}]})  # fmt: skip
    assert found.summary == "changed"
    assert found.output == "[diff]\n--- /tmp/f\n+++ /tmp/f\n@@ -0,0 +1 @@\n+hello"


def host(name: str) -> Host:
    return Host(name, "127.0.0.2", 22, None, None, None, True, {})


def native(tmp_path: Path, name: str, *ids: str) -> Playbook:
    steps = "".join(f"  - id: {step}\n    type: command\n    command: 'true'\n" for step in ids)
    (tmp_path / f"{name}.yml").write_text(f"name: {name}\nsteps:\n{steps}", encoding="utf-8")
    return playbooks.load(f"{name}.yml", tmp_path)


def label(planned: PlannedStep) -> str:
    return f"{planned.playbook.name}/{planned.step.id}"


def shape(found: list[Phase]) -> list[Any]:
    """Each phase as ('fleet', playbook/step, hosts) or {host: [playbook/step, ...]}."""
    shown: list[Any] = []
    for phase in found:
        if phase.fleet is not None:
            shown.append(("fleet", label(phase.fleet), phase.hosts))
        else:
            shown.append({name: [label(planned) for planned in steps] for name, steps in phase.work.items()})
    return shown


def test_native_steps_only_make_one_phase(tmp_path: Path) -> None:
    first = native(tmp_path, "first", "one", "two")
    second = native(tmp_path, "second", "three")
    found = phases([first, second], {"first": [host("a"), host("b")], "second": [host("b")]})
    assert shape(found) == [{"a": ["first/one", "first/two"], "b": ["first/one", "first/two", "second/three"]}]
    assert found[0].fleet is None


def test_an_ansible_step_is_a_barrier_between_native_steps(tmp_path: Path) -> None:
    (tmp_path / "book.yml").write_text(
        "name: book\nsteps:\n"
        "  - {id: before, type: command, command: 'true'}\n"
        "  - {id: also-before, type: command, command: 'true'}\n"
        "  - {id: tune, type: ansible, playbook: ansible/tune.yml, tags: [ssh]}\n"
        "  - {id: after, type: command, command: 'true'}\n",
        encoding="utf-8",
    )
    book = playbooks.load("book.yml", tmp_path)
    assert book.steps[2].step_class.fleet
    found = phases([book], {"book": [host("a"), host("b")]})
    assert shape(found) == [
        {"a": ["book/before", "book/also-before"], "b": ["book/before", "book/also-before"]},
        ("fleet", "book/tune", ("a", "b")),
        {"a": ["book/after"], "b": ["book/after"]},
    ]
    assert found[1].work == {}


def test_phases_of_several_playbooks_keep_their_order_and_hosts(tmp_path: Path) -> None:
    first = native(tmp_path, "first", "one")
    (tmp_path / "site.yml").write_text("- hosts: all\n  tasks: []\n", encoding="utf-8")
    (tmp_path / "other.yml").write_text("- hosts: web\n  tasks: []\n", encoding="utf-8")
    site = playbooks.load("site.yml", tmp_path)
    other = playbooks.load("other.yml", tmp_path)
    last = native(tmp_path, "last", "two", "three")
    selected = {"first": [host("a"), host("b")], "site": [host("b")], "other": [host("a"), host("c")],
                "last": [host("c")]}  # fmt: skip
    found = phases([first, site, other, last], selected)
    assert shape(found) == [
        {"a": ["first/one"], "b": ["first/one"]},
        ("fleet", "site/site", ("b",)),
        ("fleet", "other/other", ("a", "c")),  # two fleet steps in a row: no empty phase between them
        {"c": ["last/two", "last/three"]},
    ]
    # A fleet step with no host selected runs nothing: no fleet phase, the native steps keep their order.
    alone = phases([first, site, last], {"first": [host("a")], "site": [], "last": [host("a")]})
    assert all(phase.fleet is None for phase in alone)
    assert [planned.step.id for phase in alone for planned in phase.work["a"]] == ["one", "two", "three"]


def test_is_ansible_playbook_recognises_lists_of_plays() -> None:
    assert is_ansible_playbook([{"hosts": "all", "tasks": []}])
    assert is_ansible_playbook([{"import_playbook": "base.yml"}, {"hosts": "web", "roles": ["nginx"]}])
    assert is_ansible_playbook([{"ansible.builtin.import_playbook": "base.yml"}])
    assert not is_ansible_playbook([])
    assert not is_ansible_playbook({"hosts": "all", "steps": []})
    assert not is_ansible_playbook([{"name": "a play without hosts", "tasks": []}])
    assert not is_ansible_playbook([{"hosts": "all"}, "a text"])


def test_a_list_of_plays_loads_as_a_playbook_of_one_ansible_step(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text("- name: web\n  hosts: web\n  tasks:\n    - command: uptime\n", encoding="utf-8")
    book = playbooks.load("site.yml", tmp_path)
    assert (book.name, book.path, book.hosts, book.builtin) == ("site", path, "all", False)
    assert len(book.digest) == 64
    (step,) = book.steps
    assert (step.id, step.type, dict(step.params)) == ("site", "ansible", {"playbook": str(path)})
    assert step.step_class.fleet
    by_path = playbooks.load(str(path), Path("/nonexistent"))
    assert (by_path.name, by_path.steps[0].id) == ("site", "site")


def test_an_ansible_playbook_under_the_projects_ansible_folder_is_found_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks" / "ansible"
    folder.mkdir(parents=True)
    (folder / "patch.yml").write_text("- hosts: all\n  tasks: []\n", encoding="utf-8")
    assert playbooks.resolve("ansible/patch", tmp_path) == folder / "patch.yml"
    assert "ansible/patch" in playbooks.available(tmp_path)
    book = playbooks.load("ansible/patch", tmp_path)
    assert [step.type for step in book.steps] == ["ansible"]


def test_a_list_that_is_not_plays_is_bad_input_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "list.yml"
    path.write_text("# steps without the mapping around them\n- id: one\n  type: command\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"a list of plays, each with 'hosts'") as caught:
        playbooks.load("list.yml", tmp_path)
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert caught.value.source == str(path)
    assert caught.value.line == 2
