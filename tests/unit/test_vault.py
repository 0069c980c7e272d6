"""Ansible Vault values in inventories and -e files: made with the real ansible-vault, decrypted with
ansible-core's VaultLib, refused in one line without a (right) password, masked in every record."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from maint.cli.options import parse_extra_vars
from maint.errors import BadInput
from maint.inventory import Host
from maint.inventory.cache import open_inventory
from maint.run import RunRequest, run
from maint.store import Store
from maint.store.history import RunFilter
from maint.testing import FakeExecutor, memory_store, services
from maint.vault import VaultOptions, is_vaulted, reveal, vault_options

ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"
PLAINTEXT = "S3cr3t-vault-value-42"
PASSWORD = "correct horse battery"


def encrypt_string(password_file: Path, value: str, name: str) -> str:
    """``NAME: !vault |`` and its ciphertext lines, from the real ansible-vault."""
    completed = subprocess.run(
        [str(ANSIBLE_VAULT), "encrypt_string", "--vault-password-file", str(password_file), value, "--name", name],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return completed.stdout


@pytest.fixture
def vaulted(tmp_path: Path) -> Path:
    """A project: hosts.ini (web1, web2), group_vars/web.yml with a vaulted db_password, the password file."""
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=127.0.0.2\nweb2 ansible_host=127.0.0.3\n")
    (tmp_path / "group_vars").mkdir()
    vaulted_line = encrypt_string(tmp_path / "pw", PLAINTEXT, "db_password")
    (tmp_path / "group_vars" / "web.yml").write_text("plain: 1\n" + vaulted_line)
    (tmp_path / "book.yml").write_text(
        "steps:\n  - id: hash\n    type: command\n    command: echo {{ db_password }} | sha256sum\n"
    )
    return tmp_path


@pytest.fixture
def store() -> Iterator[Store]:
    opened = memory_store()
    yield opened
    opened.close()


def hosts(directory: Path) -> dict[str, Host]:
    inventory = open_inventory([str(directory / "hosts.ini")], directory / ".maint" / "cache")
    found = {host.name: host for host in inventory.select("all")}
    inventory.save()
    return found


def test_inventory_values_are_decrypted_and_the_cache_keeps_the_ciphertext(vaulted: Path) -> None:
    found = hosts(vaulted)
    assert is_vaulted(found["web1"].vars["db_password"])
    revealed = reveal(found, {}, vault_options([str(vaulted / "pw")]), [str(vaulted / "hosts.ini")])
    assert revealed.hosts["web1"].vars["db_password"] == PLAINTEXT
    assert revealed.hosts["web1"].vars["plain"] == 1
    assert revealed.values == (PLAINTEXT,)
    cached = b"".join(path.read_bytes() for path in (vaulted / ".maint" / "cache").rglob("*") if path.is_file())
    assert b"$ANSIBLE_VAULT" in cached and PLAINTEXT.encode() not in cached


def test_without_a_password_the_error_names_variable_host_file_and_fix(vaulted: Path) -> None:
    with pytest.raises(BadInput) as raised:
        reveal(hosts(vaulted), {}, VaultOptions(), [str(vaulted / "hosts.ini")])
    message = str(raised.value)
    assert "\n" not in message
    assert "db_password" in message and "host web1" in message
    assert f"{vaulted / 'group_vars' / 'web.yml'}:2:" in message
    assert "--vault-password-file FILE" in message


def test_a_wrong_password_is_one_line(vaulted: Path) -> None:
    (vaulted / "wrong").write_text("not it\n")
    with pytest.raises(BadInput) as raised:
        reveal(hosts(vaulted), {}, vault_options([str(vaulted / "wrong")]), [str(vaulted / "hosts.ini")])
    assert "\n" not in str(raised.value)
    assert "db_password" in str(raised.value) and "cannot be decrypted" in str(raised.value)


def test_a_missing_password_file_is_named(vaulted: Path) -> None:
    with pytest.raises(BadInput, match="missing-file"):
        reveal(hosts(vaulted), {}, vault_options([str(vaulted / "missing-file")]), [])


def test_a_prompted_password_and_a_vault_id_open_it(vaulted: Path) -> None:
    assert reveal(hosts(vaulted), {}, VaultOptions(password=PASSWORD), []).values == (PLAINTEXT,)
    options = vault_options(vault_ids=[f"prod@{vaulted / 'pw'}"])
    assert options.ids == (("prod", str(vaulted / "pw")),)
    assert reveal(hosts(vaulted), {}, options, []).values == (PLAINTEXT,)


def test_the_environment_variable_is_the_default_and_the_password_is_never_shown(vaulted: Path) -> None:
    options = vault_options(environ={"ANSIBLE_VAULT_PASSWORD_FILE": str(vaulted / "pw")})
    assert options.cmdline() == ["--vault-password-file", str(vaulted / "pw")]
    assert vault_options(["a"], environ={"ANSIBLE_VAULT_PASSWORD_FILE": "b"}).ids == (("default", "a"),)
    prompted = VaultOptions(password=PASSWORD)
    assert PASSWORD not in repr(prompted) and prompted.cmdline() == ["--ask-vault-pass"]


def test_an_extra_vars_file_with_vault_values_is_decrypted_at_plan_time(vaulted: Path) -> None:
    (vaulted / "vars.yml").write_text(encrypt_string(vaulted / "pw", PLAINTEXT, "api_key"))
    extra = parse_extra_vars((f"@{vaulted / 'vars.yml'}",))
    assert is_vaulted(extra["api_key"])
    revealed = reveal({}, extra, vault_options([str(vaulted / "pw")]))
    assert revealed.extra_vars == {"api_key": PLAINTEXT}
    with pytest.raises(BadInput, match=r"extra variables \(-e\): variable api_key .*--vault-password-file"):
        reveal({}, extra, None)


def test_a_step_gets_the_plaintext_and_the_record_masks_it(vaulted: Path, store: Store) -> None:
    fake = FakeExecutor().on(r"sha256sum", stdout=f"{PLAINTEXT}\n")
    request = RunRequest(playbooks=["book.yml"], inventory=[str(vaulted / "hosts.ini")], project_dir=vaulted,
                         tickets=False, vault=vault_options([str(vaulted / "pw")]),
                         argv=["maint", "run", "book.yml", "--vault-password-file", str(vaulted / "pw")])  # fmt: skip
    document = run(request, services=services(vaulted, store=store), executors={"ssh": fake})
    assert fake.commands["web1"] == [f"echo {PLAINTEXT} | sha256sum"]
    recorded = json.dumps(store.get_run(document.run["id"]).as_dict(), default=str)
    assert PLAINTEXT not in recorded and PLAINTEXT not in json.dumps(document.as_dict(), default=str)
    assert "***" in recorded


def test_a_run_without_the_password_records_nothing(vaulted: Path, store: Store) -> None:
    request = RunRequest(playbooks=["book.yml"], inventory=[str(vaulted / "hosts.ini")], project_dir=vaulted,
                         tickets=False)  # fmt: skip
    with pytest.raises(BadInput, match="db_password"):
        run(request, services=services(vaulted, store=store), executors={"ssh": FakeExecutor()})
    assert store.find_runs(RunFilter()) == []


def test_an_extra_vars_file_encrypted_whole_is_refused_with_the_fix(vaulted: Path) -> None:
    import click

    (vaulted / "whole.yml").write_text(f"motto: {PLAINTEXT}\n")
    subprocess.run([str(ANSIBLE_VAULT), "encrypt", "--vault-password-file", str(vaulted / "pw"),
                    str(vaulted / "whole.yml")], capture_output=True, check=True, timeout=60)  # fmt: skip
    with pytest.raises(click.BadParameter, match=r"encrypted whole.*encrypt_string"):
        parse_extra_vars((f"@{vaulted / 'whole.yml'}",))


def test_an_executable_password_file_is_run_as_ansible_runs_it(vaulted: Path) -> None:
    script = vaulted / "vault-pass.sh"
    script.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    script.chmod(0o700)
    assert reveal(hosts(vaulted), {}, vault_options([str(script)])).values == (PLAINTEXT,)


def test_a_vaulted_connection_variable_is_bad_input_naming_the_file(vaulted: Path) -> None:
    (vaulted / "host_vars").mkdir()
    (vaulted / "host_vars" / "web1.yml").write_text(encrypt_string(vaulted / "pw", "deploy", "ansible_user"))
    with pytest.raises(BadInput) as raised:
        hosts(vaulted)
    assert str(raised.value).startswith(f"{vaulted / 'host_vars' / 'web1.yml'}:1: host web1: ansible_user is encrypted")
