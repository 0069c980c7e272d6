"""The settings of ansible.cfg and ANSIBLE_* variables that maint honours, read by ansible-core's config manager;
and ``maint config validate`` on a ticket backend whose client library is missing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from maint import ansible_config
from maint.inventory import Host, resolve_sources, with_defaults
from maint.vault import vault_options

CFG = """\
[defaults]
inventory = ../inventory/hosts.ini
remote_user = ops
private_key_file = keys/fleet
host_key_checking = False
forks = 7
timeout = 25
vault_password_file = vault-pass

[privilege_escalation]
become = True
become_user = admin
become_method = su
become_ask_pass = True
"""


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ANSIBLE_* variable, a home without ~/.ansible.cfg, the current directory an empty one."""
    for name in list(os.environ):
        if name.startswith("ANSIBLE_") or name in ("MAINT_INVENTORY", "MAINT_CONFIG"):
            monkeypatch.delenv(name)
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir(mode=0o755)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def test_nothing_set_gives_nothing(clean: Path) -> None:
    found = ansible_config.read()
    if Path("/etc/ansible/ansible.cfg").is_file():
        pytest.skip("this machine has /etc/ansible/ansible.cfg")
    assert found.settings == {} and found.file is None and found.inventory == []


def test_a_file_named_by_ansible_config_with_paths_relative_to_it(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = clean / "project" / "ansible" / "ansible.cfg"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(CFG)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(cfg))
    found = ansible_config.read()
    assert found.file == str(cfg)
    assert found.inventory == [str(clean / "project" / "inventory" / "hosts.ini")]
    values = {name: setting.value for name, setting in found.settings.items()}
    assert values == {
        "inventory": [str(clean / "project" / "inventory" / "hosts.ini")], "remote_user": "ops",
        "private_key_file": str(cfg.parent / "keys" / "fleet"), "host_key_checking": False, "forks": 7,
        "timeout": 25, "become": True, "become_user": "admin", "become_method": "su", "become_ask_pass": True,
        "vault_password_file": str(cfg.parent / "vault-pass"),
    }  # fmt: skip
    assert {setting.origin for setting in found.settings.values()} == {str(cfg)}


def test_ansible_cfg_in_the_current_directory_and_variables_over_it(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / "cwd" / "ansible.cfg").write_text("[defaults]\nforks = 7\nremote_user = ops\n")
    found = ansible_config.read()
    assert found.file == str(clean / "cwd" / "ansible.cfg")
    assert (found.get("forks"), found.settings["forks"].origin) == (7, str(clean / "cwd" / "ansible.cfg"))
    monkeypatch.setenv("ANSIBLE_FORKS", "12")
    found = ansible_config.read()
    assert (found.get("forks"), found.settings["forks"].origin) == (12, "env: ANSIBLE_FORKS")
    assert found.get("remote_user") == "ops"


def test_an_unknown_become_method_names_the_file(clean: Path) -> None:
    from maint.errors import BadInput

    (clean / "cwd" / "ansible.cfg").write_text("[privilege_escalation]\nbecome_method = runas\n")
    with pytest.raises(BadInput, match=r"ansible\.cfg: become_method 'runas' is not one maint knows"):
        ansible_config.read()


def test_the_inventory_comes_from_ansible_cfg_after_i_and_maint_inventory(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / "cwd" / "ansible.cfg").write_text("[defaults]\ninventory = hosts.ini\n")
    assert resolve_sources([]) == [str(clean / "cwd" / "hosts.ini")]
    monkeypatch.setenv("MAINT_INVENTORY", "env.ini")
    assert resolve_sources([]) == ["env.ini"]
    assert resolve_sources(["given.ini"]) == ["given.ini"]


def test_the_vault_password_file_comes_from_ansible_cfg_last(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / "cwd" / "ansible.cfg").write_text("[defaults]\nvault_password_file = pw\n")
    assert vault_options().ids == (("default", str(clean / "cwd" / "pw")),)
    assert vault_options(["given"]).ids == (("default", "given"),)


def host(**variables: Any) -> Host:
    return Host(name="web1", address="web1", port=22, user=variables.get("ansible_user"),
                key_file=variables.get("ansible_ssh_private_key_file"), known_hosts=None,
                strict_host_key_checking=variables.get("ansible_host_key_checking", True), vars=variables,
                ssh_args=tuple(variables.get("ssh_args", ())))  # fmt: skip


def test_inventory_variables_win_over_ansible_cfgs_connection_defaults() -> None:
    bare = with_defaults(host(), "ops", "~/.ssh/fleet", False)
    assert (bare.user, bare.key_file, bare.strict_host_key_checking) == (
        "ops", os.path.expanduser("~/.ssh/fleet"), False)  # fmt: skip
    own = with_defaults(host(ansible_user="root", ansible_ssh_private_key_file="/k", ansible_host_key_checking=True),
                        "ops", "~/.ssh/fleet", False)  # fmt: skip
    assert (own.user, own.key_file, own.strict_host_key_checking) == ("root", "/k", True)
    strict = with_defaults(host(ssh_args=["-o StrictHostKeyChecking=yes"]), None, None, False)
    assert strict.strict_host_key_checking
    assert with_defaults(host(), None, None, None) == host()


def test_config_show_lists_the_ansible_settings_and_their_origin(
    clean: Path, maint_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / "cwd" / "ansible.cfg").write_text("[defaults]\nremote_user = ops\n")
    done = maint_cli("config", "show", cwd=clean / "cwd", env={"ANSIBLE_FORKS": "12"})
    assert done.returncode == 0, done.stderr
    assert f"# ansible.cfg: {clean / 'cwd' / 'ansible.cfg'}" in done.stdout.splitlines()
    assert f'#   remote_user = "ops" (from {clean / "cwd" / "ansible.cfg"}): the login user' in done.stdout
    assert "#   forks = 12 (from env: ANSIBLE_FORKS): hosts worked on at once without -f" in done.stdout
    shown = json.loads(maint_cli("config", "show", "--format", "json", cwd=clean / "cwd").stdout)
    assert shown["in_use"]["ansible"]["settings"]["remote_user"] == {
        "value": "ops", "origin": str(clean / "cwd" / "ansible.cfg")}  # fmt: skip


JIRA_AND_GITHUB = """\
tickets:
  backends:
    tracker:
      type: jira
      url: https://jira.example.org
      project: OPS
      user: maint@example.org
      token: env:JIRA_TOKEN
    code:
      type: github
      repository: ops/fleet
      token: env:GITHUB_TOKEN
"""


def test_validate_fails_when_a_backends_library_is_missing(
    clean: Path, maint_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = clean / "cwd" / "maint.yml"
    config.write_text(JIRA_AND_GITHUB)
    done = maint_cli("config", "validate", cwd=clean / "cwd")
    assert done.returncode == 0, done.stderr
    monkeypatch.setitem(sys.modules, "jira", None)  # the import fails as without the library
    monkeypatch.setitem(sys.modules, "github", None)
    done = maint_cli("config", "validate", cwd=clean / "cwd")
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"maint: error: {config}: tickets.backends.tracker: the jira backend needs the 'jira' library: "
        "pip install 'maint[saas]'",
        f"maint: error: {config}: tickets.backends.code: the github backend needs the 'PyGithub' library: "
        "pip install 'maint[saas]'",
    ]


def test_a_run_whose_tickets_wait_for_a_missing_library_says_so(
    clean: Path, maint_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = clean / "cwd"
    # Loopback only: the library is missing, so nothing is dialled anyway.
    (project / "maint.yml").write_text(JIRA_AND_GITHUB.split("    code:")[0].replace("https://jira.example.org",
                                                                                     "http://127.0.0.1:9"))
    (project / "book.yml").write_text("steps:\n  - id: broken\n    type: command\n    command: exit 3\n")
    (project / "hosts.ini").write_text("web1 ansible_connection=local\n")
    monkeypatch.setitem(sys.modules, "jira", None)
    monkeypatch.setenv("JIRA_TOKEN", "t0ken-value")
    done = maint_cli("run", "book.yml", "-i", "hosts.ini", "--format", "json", cwd=project)
    assert done.returncode == 4, json.loads(done.stdout)["tickets"]
    warning = ("tickets.backends.tracker: the jira backend needs the 'jira' library: pip install 'maint[saas]' "
               "(tickets for it wait in the outbox)")  # fmt: skip
    assert warning in json.loads(done.stdout)["tickets"]["warnings"]
    assert f"maint: warning: {warning}" in done.stderr
