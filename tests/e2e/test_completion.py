"""Shell completion through Click's protocol, as bash asks for it (``COMP_WORDS``, ``COMP_CWORD``,
``_MAINT_COMPLETE=bash_complete``), in a real subprocess: playbook names, run ids, window names, inventory hosts and
groups; and ``maint completion SHELL``. The hosts are this machine (``ansible_connection=local``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

HOSTS = """[web]
web-01 ansible_connection=local
web-02 ansible_connection=local
[db]
db-01 ansible_connection=local
"""
MAINT_YML = """tickets: {enabled: false}
windows:
  nightly: {cron: '0 2 * * *', duration: 2h}
  weekend: {cron: '0 6 * * 6', duration: 4h}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project: maint.yml with two windows, a playbook of its own, an inventory, no store yet."""
    directory = tmp_path / "fleet"
    (directory / ".git").mkdir(parents=True)
    (directory / "maint.yml").write_text(MAINT_YML)
    (directory / "playbooks").mkdir()
    (directory / "playbooks" / "site-checks.yml").write_text("steps: []\n")
    (directory / "hosts.ini").write_text(HOSTS)
    return directory


@pytest.fixture
def complete(run_maint: Any, project: Path, tmp_path: Path) -> Any:
    """``complete("run", "--window", "")``: the values bash is offered for the last word of ``maint WORDS...``."""

    def values(*words: str, env: dict[str, str] | None = None) -> list[str]:
        line = ["maint", *words]
        environment = {
            "COMP_WORDS": " ".join(line), "COMP_CWORD": str(len(line) - 1), "_MAINT_COMPLETE": "bash_complete",
            "MAINT_INVENTORY": "", "MAINT_DB": "", "MAINT_CONFIG": "", "XDG_STATE_HOME": str(tmp_path / "state"),
            **(env or {}),
        }  # fmt: skip
        done = run_maint(cwd=project, env=environment, timeout=30)
        assert (done.returncode, done.stderr) == (0, ""), done
        return [line.partition(",")[2] for line in done.stdout.splitlines() if line]

    return values


def test_playbook_names_built_in_and_the_projects(complete: Any) -> None:
    offered = complete("run", "")
    assert {"health", "nightly", "site-checks", "ansible/logrotate"} <= set(offered)
    assert complete("run", "health", "si") == ["site-checks"]  # every PLAYBOOK argument
    assert complete("playbooks", "show", "site") == ["site-checks"]


def test_window_names_from_maint_yml(complete: Any) -> None:
    assert complete("run", "--window", "") == ["nightly", "weekend"]
    assert complete("schedule", "run", "w") == ["weekend"]
    assert complete("windows", "status", "") == ["nightly", "weekend"]


def test_run_ids_without_a_store_are_none_and_create_nothing(complete: Any, project: Path, tmp_path: Path) -> None:
    before = sorted(path.name for path in project.iterdir())
    for words in (("runs", "show", ""), ("resume", ""), ("rerun", ""), ("report", ""), ("runs", "show", "--db",
                  f"sqlite:///{tmp_path}/elsewhere.db", "")):  # fmt: skip
        assert complete(*words) == []
    assert sorted(path.name for path in project.iterdir()) == before  # no .maint/, no store
    assert not (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "state").exists()


def test_run_ids_hosts_and_groups_after_a_run(complete: Any, run_maint: Any, project: Path) -> None:
    assert complete("exec", "") == ["all"]  # no inventory cache yet: no inventory is parsed to complete
    environment = {"MAINT_DB": "", "MAINT_CONFIG": "", "XDG_STATE_HOME": str(project.parent / "state")}
    done = run_maint("exec", "-i", "hosts.ini", "all", "--", "true", cwd=project, env=environment)
    assert done.returncode == 0, done.stderr
    run_id = done.stderr.split("run ")[1].split(":")[0]
    for words in (("runs", "show", ""), ("resume", ""), ("rerun", run_id[:4]), ("report", "")):
        assert complete(*words) == [run_id]
    assert complete("rerun", "x") == []
    # The cache of the inventory given with -i, else of the one last used; host and group names, each part of a
    # pattern completed on its own.
    assert complete("exec", "") == ["all", "db", "db-01", "web", "web-01", "web-02"]
    assert complete("run", "-i", "hosts.ini", "-l", "web-") == ["web-01", "web-02"]
    assert complete("run", "-l", "web,!d") == ["web,!db", "web,!db-01"]
    assert complete("inventory", "list", "-l", "db") == ["db", "db-01"]
    # An inventory the cache does not hold (its content changed): nothing, and ansible-core is not asked.
    (project / "hosts.ini").write_text(HOSTS + "db-02 ansible_connection=local\n")
    assert complete("exec", "-i", "hosts.ini", "") == ["all"]
    assert complete("run", "-i", "hosts.ini", "-l", "") == ["all"]


def test_zsh_and_fish_get_the_descriptions(run_maint: Any, project: Path, tmp_path: Path) -> None:
    environment = {"COMP_WORDS": "maint run --window ", "COMP_CWORD": "3", "_MAINT_COMPLETE": "zsh_complete",
                   "MAINT_CONFIG": "", "XDG_STATE_HOME": str(tmp_path / "state")}  # fmt: skip
    done = run_maint(cwd=project, env=environment)
    assert done.stdout.splitlines() == ["plain", "nightly", "_", "plain", "weekend", "_"], done


@pytest.mark.parametrize(("shell", "start"), [("bash", "_maint_completion()"), ("zsh", "#compdef maint"),
                                              ("fish", "function _maint_completion")])  # fmt: skip
def test_completion_prints_the_shells_script(run_maint: Any, shell: str, start: str) -> None:
    done = run_maint("completion", shell)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(start)
    assert "_MAINT_COMPLETE" in done.stdout
    environment = {"_MAINT_COMPLETE": f"{shell}_source"}
    assert run_maint(env=environment).stdout == done.stdout  # the same as Click's own way


def test_completion_of_an_unknown_shell_is_a_usage_error(run_maint: Any) -> None:
    done = run_maint("completion", "tcsh")
    assert done.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in done.stderr


@pytest.mark.skipif(subprocess.run(["bash", "-c", "true"], check=False).returncode != 0, reason="no bash")
def test_the_bash_script_loads(run_maint: Any, tmp_path: Path) -> None:
    script = tmp_path / "maint.bash"
    script.write_text(run_maint("completion", "bash").stdout)
    done = subprocess.run(["bash", "-c", f"source {script} && complete -p maint"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "_maint_completion" in done.stdout
