"""Where a host's SSH connection goes and how it logs in: inventory, ssh arguments and ssh_config resolved
together (maint.executors.sshconfig), without connecting anywhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from maint.executors import sshconfig
from maint.executors.sshconfig import ConfigError, ConfigFiles, Identity, resolve
from maint.inventory import Host, load_inventory
from maint.inventory._ssh import command_line


def host(address: str = "web", *, args: str = "", port: int | None = None, user: str | None = None,
         key_file: str | None = None, checking: bool = True, **variables: Any) -> Host:  # fmt: skip
    return Host(
        name="web1", address=address, port=port or 22, user=user, key_file=key_file, known_hosts=None,
        strict_host_key_checking=checking, vars=variables, port_set=port is not None,
        ssh_args=(args,) if args else (),
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(
        """\
# aliases first: ssh keeps the first value it sees
Host web
    HostName 10.1.0.5
    Port 2200
    User deploy
    IdentityFile ~/.ssh/web_key
    IdentityFile %d/keys/%r@%h:%p

Host db-*
    HostName %h.internal
    ProxyJump bastion
    IdentitiesOnly yes

Host bastion
    HostName 10.0.0.1
    Port 2222
    User jump
    IdentityFile /keys/bastion

Host inner
    HostName 10.0.0.2
    User hop2

Host twohops
    HostName 10.1.0.9
    ProxyJump bastion,admin@inner:2022

Host proxied
    HostName 10.1.0.7
    ProxyCommand ssh -W %h:%p -l %r bastion
    ProxyJump bastion

Host nojump
    ProxyJump none

Host * !bastion !inner
    Port 2201
    User fallback
    ProxyJump bastion
    UserKnownHostsFile ~/.ssh/known_hosts.d/%n
    StrictHostKeyChecking accept-new
    ServerAliveInterval 15
"""
    )
    return path


def test_command_line_reads_o_and_the_option_flags_in_order() -> None:
    arguments = [
        "-o UserKnownHostsFile=/x -oStrictHostKeyChecking=no -qCp 2200 -c aes128-ctr -F ~/cfg",
        "-J a,b -l me -i key -o 'ProxyCommand ssh -W %h:%p b' -E /log -vvv target",
    ]
    assert list(command_line(arguments)) == [
        ("userknownhostsfile", "/x"), ("stricthostkeychecking", "no"), ("port", "2200"), ("-F", "~/cfg"),
        ("proxyjump", "a,b"), ("user", "me"), ("identityfile", "key"), ("proxycommand", "ssh -W %h:%p b"),
    ]  # fmt: skip


def test_an_alias_gets_hostname_port_user_and_identities(config: Path) -> None:
    endpoint = resolve(host("web", args=f"-F {config}"), ConfigFiles())
    assert (endpoint.name, endpoint.address, endpoint.port, endpoint.user) == ("web", "10.1.0.5", 2200, "deploy")
    home = os.path.expanduser("~")
    assert endpoint.identities == (
        Identity(f"{home}/.ssh/web_key"), Identity(f"{home}/keys/deploy@10.1.0.5:2200"),
    )  # fmt: skip
    assert endpoint.label == "web (10.1.0.5:2200)"
    assert endpoint.known_hosts_name == "[10.1.0.5]:2200"
    # Host * comes last: its values fill in what the alias left unset.
    assert endpoint.known_hosts == (f"{home}/.ssh/known_hosts.d/web",)
    assert not endpoint.strict and endpoint.keepalive == 15
    assert endpoint.config == str(config)


def test_inventory_port_user_and_key_come_before_ssh_config(config: Path) -> None:
    endpoint = resolve(host("web", args=f"-F {config}", port=22, user="ops", key_file="/keys/ops"), ConfigFiles())
    assert (endpoint.address, endpoint.port, endpoint.user) == ("10.1.0.5", 22, "ops")
    # IdentityFile adds up: the inventory's first (a missing one is an error), then ssh_config's.
    assert endpoint.identities[0] == Identity("/keys/ops", required=True)
    assert [identity.path for identity in endpoint.identities[1:]][-1].endswith("/keys/ops@10.1.0.5:22")


def test_options_in_ssh_args_come_before_ssh_config_and_the_first_one_counts(config: Path) -> None:
    args = f"-F {config} -o Port=2300 -o Port=2400 -l admin -o HostName=10.9.9.9 -o StrictHostKeyChecking=yes"
    endpoint = resolve(host("web", args=args), ConfigFiles())
    assert (endpoint.address, endpoint.port, endpoint.user, endpoint.strict) == ("10.9.9.9", 2300, "admin", True)
    # ... but the inventory comes before the arguments, as on Ansible's ssh command line.
    assert resolve(host("web", args=args, port=2500), ConfigFiles()).port == 2500
    assert resolve(host("web", args=args, checking=False), ConfigFiles()).strict is False


def test_a_host_no_entry_names_keeps_its_address_and_gets_the_defaults_of_host_star(config: Path) -> None:
    endpoint = resolve(host("192.0.2.10", args=f"-F {config}"), ConfigFiles())
    assert (endpoint.address, endpoint.port, endpoint.user) == ("192.0.2.10", 2201, "fallback")
    assert endpoint.identities == ()  # ssh's default keys


def test_proxyjump_hops_are_resolved_from_their_own_entries(config: Path) -> None:
    endpoint = resolve(host("db-main", args=f"-F {config}", port=22, user="dba"), ConfigFiles())
    assert (endpoint.address, endpoint.port, endpoint.user) == ("db-main.internal", 22, "dba")
    assert endpoint.identities_only
    bastion = endpoint.via
    assert bastion is not None
    assert (bastion.name, bastion.address, bastion.port, bastion.user) == ("bastion", "10.0.0.1", 2222, "jump")
    # The inventory's port and user are the target's, not the jump host's.
    assert bastion.identities == (Identity("/keys/bastion"),)
    assert bastion.via is None and bastion.proxy_command is None
    assert [hop.name for hop in endpoint.hops()] == ["bastion"]


def test_two_hops_each_reached_through_the_one_before(config: Path) -> None:
    endpoint = resolve(host("twohops", args=f"-F {config}"), ConfigFiles())
    inner = endpoint.via
    assert inner is not None and inner.via is not None
    assert (inner.address, inner.port, inner.user) == ("10.0.0.2", 2022, "admin")  # user@host:port wins
    assert inner.via.name == "bastion" and inner.via.via is None
    assert [hop.name for hop in endpoint.hops()] == ["bastion", "inner"]
    # -J on the command line comes before the file's ProxyJump.
    direct = resolve(host("twohops", args=f"-F {config} -J ssh://me@[10.5.5.5]:2000"), ConfigFiles())
    assert direct.via is not None and (direct.via.address, direct.via.port, direct.via.user) == ("10.5.5.5", 2000, "me")


def test_proxyjump_none_and_the_first_of_proxyjump_and_proxycommand(config: Path) -> None:
    assert resolve(host("nojump", args=f"-F {config}"), ConfigFiles()).via is None
    proxied = resolve(host("proxied", args=f"-F {config}", port=2022, user="root"), ConfigFiles())
    # ProxyCommand came first in its entry; %h %p %r are the connection's own (the inventory's port and user).
    assert proxied.via is None
    assert proxied.proxy_command == "ssh -W 10.1.0.7:2022 -l root bastion"
    jumped = resolve(host("proxied", args=f"-F {config} -o ProxyJump=bastion"), ConfigFiles())
    assert jumped.proxy_command is None and jumped.via is not None
    none = resolve(host("proxied", args=f"-F {config} -o ProxyCommand=none"), ConfigFiles())
    assert none.proxy_command is None and none.via is None


def test_a_proxycommand_never_runs_a_host_or_user_name_as_shell_code(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("Host *\n  ProxyCommand ssh -W %h:%p -l %r bastion\n")
    fine = resolve(host("web-1.example", args=f"-F {path}", user="ops"), ConfigFiles())
    assert fine.proxy_command == "ssh -W web-1.example:22 -l ops bastion"
    assert resolve(host("fe80::1%eth0", args=f"-F {path}", user="ops"), ConfigFiles()).proxy_command is not None
    for address, user in (("web;touch /tmp/pwned", "ops"), ("$(id)", "ops"), ("web", "ops`id`"), ("web", "a b")):
        with pytest.raises(ConfigError, match="characters a shell acts on"):
            resolve(host(address, args=f"-F {path}", user=user), ConfigFiles())


def test_a_proxyjump_loop_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "loop"
    path.write_text("Host a\n  ProxyJump b:2200\nHost b\n  ProxyJump a\n")
    with pytest.raises(ConfigError, match="more than 8 jump hosts"):
        resolve(host("a", args=f"-F {path}"), ConfigFiles())
    path.write_text("Host *\n  ProxyJump bastion\n")
    with pytest.raises(ConfigError, match=r"jumphost loop via bastion: .*'Host \* !bastion'"):
        resolve(host("bastion", args=f"-F {path}"), ConfigFiles())


def test_default_files_are_the_users_then_the_systems_with_include(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    system = tmp_path / "etc_ssh_config"
    system.write_text("Host *\n  User systemwide\n  Port 2022\n")
    monkeypatch.setattr(sshconfig, "SYSTEM_CONFIG", str(system))
    ssh = tmp_path / ".ssh"
    (ssh / "conf.d").mkdir(parents=True)
    (ssh / "config").write_text("Include conf.d/*.conf\nHost web\n  Port 2300\n")
    (ssh / "conf.d" / "web.conf").write_text("Host web\n  HostName 10.2.0.1\n")
    endpoint = resolve(host("web"), ConfigFiles())
    assert (endpoint.address, endpoint.port, endpoint.user) == ("10.2.0.1", 2300, "systemwide")
    assert endpoint.config == f"{ssh / 'config'}, {ssh / 'conf.d' / 'web.conf'}, {system}"
    # -F names the only file read; -F none, none at all.
    assert resolve(host("web", args="-F none"), ConfigFiles()).port == 22


def test_parsed_files_are_kept_until_one_changes(config: Path) -> None:
    files = ConfigFiles()
    first = files.get((str(config),))
    assert files.get((str(config),)) is first
    config.write_text(config.read_text().replace("Port 2200", "Port 2299"))
    os.utime(config, ns=(1, 1))  # a different mtime even on a coarse clock
    again = files.get((str(config),))
    assert again is not first
    assert resolve(host("web", args=f"-F {config}"), files).port == 2299


def test_unreadable_files_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("Host web\n  Port 22\n  =oops\n")
    with pytest.raises(ConfigError, match=r"ssh_config .*bad line 3: cannot read '=oops'.*pass another with -F"):
        resolve(host("web", args=f"-F {bad}"), ConfigFiles())
    bad.write_text("Match exec 'test -e /x'\n  Port 22\n")
    with pytest.raises(ConfigError, match="does not run Match exec"):
        resolve(host("web", args=f"-F {bad}"), ConfigFiles())
    bad.write_text("Host web\n  Port twenty\n")
    with pytest.raises(ConfigError, match="Port 'twenty' is not a TCP port"):
        resolve(host("web", args=f"-F {bad}"), ConfigFiles())


def test_inventory_records_whether_it_sets_the_port_and_the_ssh_args(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "a ansible_port=2222\nb ansible_host=alias\n[all:vars]\n"
        "ansible_ssh_common_args='-F /cfg'\nansible_ssh_extra_args='-o ServerAliveInterval=5'\n"
    )
    a, b = load_inventory([str(inventory)]).select("all")
    assert (a.port, a.port_set, b.port, b.port_set) == (2222, True, 22, False)
    assert b.address == "alias"
    assert b.ssh_args == ("-F /cfg", "-o ServerAliveInterval=5")


def test_password_from_the_last_variable_a_reference_or_another_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sshconfig.password(host()) is None
    assert sshconfig.password(host(ansible_password="a", ansible_ssh_pass="b")) == "b"
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    assert sshconfig.password(host(ansible_password=f"file:{secret_file}")) == "from-file"
    monkeypatch.setenv("MAINT_TEST_SSH_PW", "from-env")
    assert sshconfig.password(host(ansible_password="env:MAINT_TEST_SSH_PW")) == "from-env"
    assert sshconfig.password(host(ansible_password="{{ vault_pw }}", vault_pw="s3cret-vaulted")) == "s3cret-vaulted"
    with pytest.raises(ConfigError, match="MAINT_TEST_MISSING") as missing:
        sshconfig.password(host(ansible_password="env:MAINT_TEST_MISSING"))
    assert "from-env" not in str(missing.value)
    with pytest.raises(ConfigError, match="Jinja2 expression") as template:
        sshconfig.password(host(ansible_password="{{ lookup('env', 'X') }}"))
    assert "lookup" not in str(template.value)
    with pytest.raises(ConfigError, match="Ansible Vault"):
        sshconfig.password(host(ansible_password={"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n..."}))
