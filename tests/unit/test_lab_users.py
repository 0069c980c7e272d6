"""What `maint lab up --user` writes, as pure text: lab.json's account, sshd_config, the inventory, sudoers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from maint.lab import Lab, LabAccount, LabHost, users
from maint.lab.files import _inventory, _sshd_config

DIRECTORY = Path("/srv/lab")
ACCOUNT = LabAccount(
    name="deploy",
    uid=1234,
    gid=1235,
    home=DIRECTORY / "users" / "deploy",
    home_created=True,
    sudo="password",
    requiretty=False,
    sudoers_file=Path("/etc/sudoers.d/maint-lab-deploy"),
    password_file=DIRECTORY / "become-password",
)
LAB = Lab(
    directory=DIRECTORY,
    port=2222,
    first_address="127.0.0.2",
    user="deploy",
    state="up",
    sshd="/usr/sbin/sshd",
    started="2026-12-05T20:00:00+00:00",
    hosts=(LabHost("lab1", "127.0.0.2", 2222, None, "down", DIRECTORY / "hosts" / "lab1"),),
    account=ACCOUNT,
)


def test_the_account_round_trips_through_lab_json() -> None:
    assert LabAccount.from_json(ACCOUNT.to_json()) == ACCOUNT
    assert LAB.to_json()["account"]["sudoers_file"] == "/etc/sudoers.d/maint-lab-deploy"
    assert dataclasses.replace(LAB, account=None).to_json()["account"] is None


def test_sshd_accepts_only_the_account_with_its_own_authorized_keys() -> None:
    config = _sshd_config(LAB)
    assert "AuthorizedKeysFile .ssh/authorized_keys\nAllowUsers deploy\nStrictModes yes\n" in config
    assert LAB.session_home == ACCOUNT.home
    plain = _sshd_config(dataclasses.replace(LAB, account=None, user="root"))
    assert 'AuthorizedKeysFile "/srv/lab/authorized_keys"' in plain and "StrictModes no" in plain
    assert "AllowUsers" not in plain


def test_the_inventory_logs_in_as_the_account_and_names_the_password_file_only() -> None:
    inventory = _inventory(LAB)
    assert "\nansible_user=deploy\n" in inventory
    assert "\nansible_become_password=\"{{ lookup('file', '/srv/lab/become-password') }}\"\n" in inventory
    nopasswd = dataclasses.replace(ACCOUNT, sudo="nopasswd", password_file=None)
    assert "ansible_become_password" not in _inventory(dataclasses.replace(LAB, account=nopasswd))


def test_sudoers_text() -> None:
    assert users.sudoers_text(ACCOUNT).splitlines()[1:] == ["deploy ALL=(ALL:ALL) ALL"]
    strict = dataclasses.replace(ACCOUNT, sudo="nopasswd", requiretty=True)
    expected = ["Defaults:deploy requiretty", "deploy ALL=(ALL:ALL) NOPASSWD: ALL"]
    assert users.sudoers_text(strict).splitlines()[1:] == expected
