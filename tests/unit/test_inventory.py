"""maint.inventory: host patterns, variable precedence, connection fields, digest, bad input.

The inventories are parsed by ansible-core itself (that is the point of the module), so these tests
load real fixture files from tests/data/inventories; none of them touches the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from maint.cli.inventory import inventory as inventory_command
from maint.errors import BadInput, ExitCode
from maint.inventory import Host, Inventory, _ssh, inventory_digest, load_inventory, resolve_sources
from maint.inventory.patterns import matches

DATA = Path(__file__).resolve().parents[1] / "data" / "inventories"
INI = DATA / "hosts.ini"
YAML = DATA / "hosts.yml"
PRECEDENCE = DATA / "precedence"
YAML_DIR = DATA / "yaml-dir"
WEB = [f"web{number:02d}.example.com" for number in range(1, 21)]


@pytest.fixture(scope="module")
def ini() -> Inventory:
    return load_inventory([INI])


@pytest.fixture(scope="module")
def precedence() -> Inventory:
    return load_inventory([PRECEDENCE])


@pytest.fixture
def dynamic_script(tmp_path: Path) -> Path:
    """The dynamic inventory fixture, executable whatever mode the checkout gave it."""
    script = tmp_path / "dynamic.py"
    shutil.copy(DATA / "dynamic.py", script)
    script.chmod(0o755)
    return script


def names(hosts: list[Host]) -> list[str]:
    return [host.name for host in hosts]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --- patterns ------------------------------------------------------------------------------------


def test_all_is_every_host_in_ansible_order(ini: Inventory) -> None:
    # what `ansible all --list-hosts` prints: Ansible walks the group tree, it does not sort
    assert names(ini.select()) == [
        "lonely.example.com",
        "db1",
        "db2",
        "db3",
        "nas",
        *WEB,
        "web-canary.example.com",
    ]
    assert names(ini.select("*")) == names(ini.select("all"))


def test_range_in_inventory_expands(ini: Inventory) -> None:
    assert names(ini.select("web")) == [*WEB, "web-canary.example.com"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("db2", ["db2"]),
        ("db", ["db1", "db2", "db3"]),
        ("db1,nas", ["db1", "nas"]),
        ("db1:nas", ["db1", "nas"]),
        ("web1*", WEB[9:19]),
        ("*.example.com:!web*", ["lonely.example.com"]),
        ("~web0[1-3]\\.", WEB[:3]),
        ("~^(db|nas)", ["db1", "db2", "db3", "nas"]),
        ("web[0]", WEB[:1]),
        ("web[0:2]", WEB[:3]),
        ("web[-1]", ["web-canary.example.com"]),
        ("web[19:]", [WEB[19], "web-canary.example.com"]),
        ("prod:&backup", ["db1", "db2", "db3"]),
        ("backup:!db", ["nas"]),
        ("prod:!web:!db1", ["db2", "db3"]),
        ("db,backup", ["db1", "db2", "db3", "nas"]),
        ("ungrouped", ["lonely.example.com"]),
    ],
)
def test_pattern(ini: Inventory, pattern: str, expected: list[str]) -> None:
    assert names(ini.select(pattern)) == expected


def test_limit_narrows_the_pattern(ini: Inventory) -> None:
    assert names(ini.select("prod", limit="db*")) == ["db1", "db2", "db3"]
    assert names(ini.select("prod", limit="!web")) == ["db1", "db2", "db3"]
    assert names(ini.select("all", limit="nas,lonely.example.com")) == ["lonely.example.com", "nas"]
    # the limit is not sticky
    assert len(ini.select("all")) == 26


def test_limit_from_file(ini: Inventory, tmp_path: Path) -> None:
    hosts_file = write(tmp_path / "retry.txt", "nas\ndb1\n\n")
    assert names(ini.select("all", limit=f"@{hosts_file}")) == ["db1", "nas"]


def test_nothing_matching_is_an_empty_list(ini: Inventory) -> None:
    assert ini.select("no-such-host") == []
    assert ini.select("db", limit="web*") == []
    assert ini.select("db[7]") == []  # subscript past the end
    assert ini.select("localhost") == []  # Ansible's implicit localhost is not an inventory host


@pytest.mark.parametrize("pattern", ["", "  "])
def test_empty_pattern_is_bad_input(ini: Inventory, pattern: str) -> None:
    with pytest.raises(BadInput, match="empty host pattern"):
        ini.select(pattern)


def test_invalid_regex_is_bad_input(ini: Inventory) -> None:
    with pytest.raises(BadInput, match=r"invalid host pattern '~web\('"):
        ini.select("~web(")


def test_missing_limit_file_is_bad_input(ini: Inventory, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(BadInput) as caught:
        ini.select("all", limit=f"@{missing}")
    assert str(missing) in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


# --- connection fields ---------------------------------------------------------------------------


def host(inventory: Inventory, name: str) -> Host:
    (found,) = inventory.select(name)
    return found


def test_defaults_without_connection_vars(ini: Inventory) -> None:
    lonely = host(ini, "lonely.example.com")
    assert (lonely.address, lonely.port, lonely.user, lonely.key_file) == ("lonely.example.com", 22, None, None)
    assert lonely.known_hosts is None
    assert lonely.strict_host_key_checking is True
    assert lonely.groups == ()


def test_ansible_host_port_user(ini: Inventory) -> None:
    canary = host(ini, "web-canary.example.com")
    assert (canary.address, canary.port, canary.user) == ("192.0.2.10", 2201, None)
    web = host(ini, "web07.example.com")
    assert (web.address, web.port, web.user) == ("web07.example.com", 22, "deploy")
    assert web.groups == ("prod", "web")


def test_group_user_and_key_file_with_tilde(ini: Inventory) -> None:
    db1 = host(ini, "db1")
    assert db1.user == "postgres"
    assert db1.key_file == os.path.expanduser("~/.ssh/db_ed25519")
    assert db1.groups == ("backup", "db", "prod")


def test_known_hosts_from_common_args(ini: Inventory) -> None:
    db2 = host(ini, "db2")
    assert db2.known_hosts == os.path.expanduser("~/.ssh/known_hosts.lab")
    assert db2.strict_host_key_checking is True


def test_known_hosts_and_no_checking_from_extra_args_and_ipv6_host_port(ini: Inventory) -> None:
    db3 = host(ini, "db3")
    assert (db3.address, db3.port) == ("2001:db8::3", 2222)
    assert db3.known_hosts == "/etc/maint/known_hosts"
    assert db3.strict_host_key_checking is False


def test_host_key_checking_var(ini: Inventory) -> None:
    assert host(ini, "nas").strict_host_key_checking is False


def test_ssh_synonyms_last_one_wins_like_ansible(tmp_path: Path) -> None:
    source = write(
        tmp_path / "hosts.ini",
        """
        h1 ansible_host=a ansible_ssh_host=b ansible_port=1 ansible_ssh_port=2 ansible_user=u ansible_ssh_user=v
        h2 ansible_private_key_file=/k1 ansible_ssh_private_key_file=/k2 ansible_ssh_host_key_checking=no
        """,
    )
    inventory = load_inventory([source])
    h1, h2 = inventory.select()
    assert (h1.address, h1.port, h1.user) == ("b", 2, "v")
    assert (h2.key_file, h2.strict_host_key_checking) == ("/k2", False)


def test_templated_connection_vars_are_rendered(tmp_path: Path) -> None:
    source = write(
        tmp_path / "hosts.ini",
        """
        h1 ip=10.1.1.1 ansible_host="{{ ip }}" ansible_port="{{ 2000 + 22 }}"
        """,
    )
    h1 = host(load_inventory([source]), "h1")
    assert (h1.address, h1.port) == ("10.1.1.1", 2022)
    assert h1.vars["ansible_host"] == "{{ ip }}"  # vars are shown as ansible-inventory shows them


def test_vars_are_plain_json_values(ini: Inventory) -> None:
    db3 = host(ini, "db3")
    assert db3.vars == ini.host_vars("db3")
    assert db3.vars["motd"] == "Grüß Gott"
    assert db3.vars["max_load"] == 2.5
    assert db3.vars["backup_hour"] == 3
    assert db3.vars["ntp_servers"] == ["0.pool.ntp.org", "1.pool.ntp.org"]
    assert type(db3.vars["motd"]) is str
    assert type(db3.vars["backup_hour"]) is int
    assert type(db3.vars["ntp_servers"]) is list


def test_hosts_are_hashable_and_cached(ini: Inventory) -> None:
    first = ini.select("db")
    assert len({*first, *ini.select("db")}) == 3
    assert first[0] is ini.select("db1")[0]


@pytest.mark.parametrize(
    ("arguments", "known_hosts", "disabled"),
    [
        (["-o UserKnownHostsFile=/a -o StrictHostKeyChecking=no"], "/a", True),
        (["-oUserKnownHostsFile=/a -oStrictHostKeyChecking=no"], "/a", True),
        (["-o 'UserKnownHostsFile /a' -o 'StrictHostKeyChecking off'"], "/a", True),
        (['-o "UserKnownHostsFile=~/k /b"'], "~/k", False),
        (["-o userknownhostsfile=/a -o stricthostkeychecking=No"], "/a", True),
        (["-o StrictHostKeyChecking=accept-new"], None, False),
        (["-o UserKnownHostsFile=/first", "-o UserKnownHostsFile=/second"], "/first", False),
        (["-o StrictHostKeyChecking=yes", "-o StrictHostKeyChecking=no"], None, False),
        (["-o ProxyCommand='ssh -W %h:%p jump' -o UserKnownHostsFile=/a"], "/a", False),
        (["-o 'unbalanced -o UserKnownHostsFile=/a"], "/a", False),
        (["-C -o"], None, False),
        ([], None, False),
    ],
)
def test_ssh_option_parsing(arguments: list[str], known_hosts: str | None, disabled: bool) -> None:
    assert _ssh.known_hosts_file(arguments) == known_hosts
    assert _ssh.strict_checking_disabled(arguments) is disabled


# --- variable precedence -------------------------------------------------------------------------


def test_host_vars_file_beats_inline_host_var(precedence: Inventory) -> None:
    assert precedence.host_vars("web01")["role_var"] == "hostvars-dir"


def test_host_vars_file_beats_every_group(precedence: Inventory) -> None:
    assert precedence.host_vars("web01")["level"] == "host"


def test_child_group_beats_parent_and_all(precedence: Inventory) -> None:
    assert precedence.host_vars("web02")["level"] == "web"


def test_inline_host_var_beats_group_vars_file(precedence: Inventory) -> None:
    assert precedence.host_vars("web01")["colour"] == "inline-host"
    assert precedence.host_vars("web02")["colour"] == "web-dir"


def test_group_vars_all_file_beats_inline_group_vars(precedence: Inventory) -> None:
    # Ansible's documented order: "inventory group_vars/all" ranks above "inventory file group vars"
    assert precedence.host_vars("web02")["from_group"] == "all-dir"


def test_parent_group_vars_are_inherited(precedence: Inventory) -> None:
    assert precedence.host_vars("web02")["parent_only"] == "prod"
    assert precedence.host_vars("web02")["only_all"] is True


def test_yaml_inventory_vars_and_groups() -> None:
    inventory = load_inventory([YAML])
    fe2 = host(inventory, "fe2")
    assert fe2.user == "www"
    assert fe2.groups == ("frontend",)
    assert fe2.vars["features"] == {"tls": True, "protocols": ["h2", "http/1.1"]}
    assert fe2.vars["timezone"] == "UTC"
    ceph_b = host(inventory, "ceph-b")
    assert ceph_b.groups == ("ceph", "storage")
    assert (ceph_b.address, ceph_b.vars["weight"], ceph_b.vars["replicas"]) == ("198.51.100.2", 0.5, 3)
    assert host(inventory, "nfs1").vars["exports"] is None
    assert host(inventory, "bastion.example.com").port == 2022
    assert names(inventory.select("storage")) == ["ceph-a", "ceph-b", "nfs1"]


def test_directory_with_group_vars_host_vars_and_several_files() -> None:
    inventory = load_inventory([YAML_DIR])
    app1 = host(inventory, "app1")
    assert (app1.port, app1.user, app1.vars["queue"]) == (2200, "ops", "priority")
    assert app1.known_hosts == os.path.expanduser("~/.maint/known_hosts")
    assert host(inventory, "workerb").vars["queue"] == "default"
    assert names(inventory.select("workers")) == ["workera", "workerb", "workerc", "app1", "app2"]
    assert host(inventory, "mon1").groups == ("monitoring",)


def test_dynamic_script(dynamic_script: Path) -> None:
    inventory = load_inventory([dynamic_script])
    assert names(inventory.select("edge")) == ["edge1", "edge2", "edge3"]
    edge3 = host(inventory, "edge3")
    assert (edge3.address, edge3.port, edge3.groups) == ("192.0.2.103", 2203, ("edge", "edge_canary"))
    assert host(inventory, "cache1").strict_host_key_checking is False
    assert host(inventory, "edge2").vars == {"region": "eu-west", "source": "script"}


def test_host_list_source() -> None:
    inventory = load_inventory(["a.example.com,b.example.com:2200,"])
    assert [(item.name, item.port) for item in inventory.select()] == [("a.example.com", 22), ("b.example.com", 2200)]


def test_several_sources_and_path_objects(dynamic_script: Path) -> None:
    inventory = load_inventory([INI, dynamic_script])
    assert inventory.sources == (str(INI), str(dynamic_script))
    assert len(inventory.select()) == 26 + 4


# --- ansible-inventory views ---------------------------------------------------------------------


def test_ansible_list_shape(ini: Inventory) -> None:
    listing = ini.ansible_list()
    assert listing["all"] == {"children": ["ungrouped", "backup", "prod"]}
    assert listing["prod"] == {"children": ["web", "db"]}
    assert listing["backup"]["hosts"] == ["db1", "db2", "db3", "nas"]
    assert listing["_meta"]["profile"] == "inventory_legacy"
    assert "lonely.example.com" not in listing["_meta"]["hostvars"]  # no vars, left out like Ansible
    assert listing["_meta"]["hostvars"]["nas"] == ini.host_vars("nas")


def test_ansible_list_with_limit(ini: Inventory) -> None:
    listing = ini.ansible_list(limit="nas")
    assert listing["backup"] == {"hosts": ["nas"]}
    assert "web" not in listing
    assert set(listing["_meta"]["hostvars"]) == {"nas"}


def test_host_vars_of_unknown_host(ini: Inventory) -> None:
    with pytest.raises(BadInput, match="unknown host 'nope'"):
        ini.host_vars("nope")
    with pytest.raises(BadInput, match="matches 4 hosts"):
        ini.host_vars("backup")


def test_graph(precedence: Inventory) -> None:
    assert precedence.graph() == "\n".join(
        ["@all:", "  |--@ungrouped:", "  |--@prod:", "  |  |--@web:", "  |  |  |--web01", "  |  |  |--web02"]
    )
    assert precedence.graph("web") == "@web:\n  |--web01\n  |--web02"
    with pytest.raises(BadInput, match="'web01' is not a group"):
        precedence.graph("web01")


# --- digest --------------------------------------------------------------------------------------


def test_digest_is_stable_and_location_independent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "elsewhere" / "precedence"
    shutil.copytree(PRECEDENCE, copy)
    digest = load_inventory([PRECEDENCE]).digest
    assert len(digest) == 64
    assert load_inventory([PRECEDENCE]).digest == digest
    assert inventory_digest([str(copy)]) == digest
    monkeypatch.chdir(copy.parent)
    assert load_inventory(["precedence"]).digest == digest


def test_digest_covers_group_vars_and_host_vars_beside_a_file(tmp_path: Path) -> None:
    copy = tmp_path / "precedence"
    shutil.copytree(PRECEDENCE, copy)
    source = str(copy / "hosts.ini")
    before = inventory_digest([source])
    (copy / "group_vars" / "web.yml").write_text("level: web\ncolour: red\n", encoding="utf-8")
    after_group_vars = inventory_digest([source])
    (copy / "host_vars" / "web02.yml").write_text("level: 2\n", encoding="utf-8")
    after_host_vars = inventory_digest([source])
    assert len({before, after_group_vars, after_host_vars}) == 3
    (copy / "host_vars" / "web02.yml").unlink()
    assert inventory_digest([source]) == after_group_vars


def test_digest_depends_on_content_names_and_order(tmp_path: Path) -> None:
    first = write(tmp_path / "a.ini", "h1\n")
    second = write(tmp_path / "b" / "b.ini", "h2\n")
    digest = inventory_digest([str(first), str(second)])
    assert inventory_digest([str(second), str(first)]) != digest
    first.write_text("h1 \n", encoding="utf-8")
    assert inventory_digest([str(first), str(second)]) != digest
    assert inventory_digest(["h1,h2,"]) != inventory_digest(["h1,h3,"])


# --- bad input -----------------------------------------------------------------------------------


def assert_bad(source: Path | str, where: str, capfd: pytest.CaptureFixture[str]) -> BadInput:
    """Loading ``source`` raises BadInput whose message starts with ``where``, and ansible printed nothing."""
    with pytest.raises(BadInput) as caught:
        load_inventory([source])
    error = caught.value
    message = str(error)
    assert message.startswith(where), message
    assert "\n" not in message
    assert error.exit_code == ExitCode.BAD_INPUT
    assert error.hint
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "", captured
    return error


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[web]\nweb1 ansible_host=10.0.0.1 stray\n", 2, "Expected key=value"),
        ("[web]\nweb1\n\n[db\ndb1\n", 4, "[db"),
        ("[web:hosts]\nweb1\n[web:bogus]\n", 3, "unknown type: bogus"),
        ("[web]\nweb1\n[all:children]\nweb\nmissing\n", 5, "undefined group 'missing'"),
        ("[web:vars]\nno_equals_sign\n", 2, "Expected key=value"),
        ("web1 x='unterminated\n", 1, "No closing quotation"),
    ],
)
def test_malformed_ini_names_file_and_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], text: str, line: int, words: str
) -> None:
    source = write(tmp_path / "hosts", text)
    error = assert_bad(source, f"{source}:{line}: ", capfd)
    assert words in str(error)
    assert (error.source, error.line) == (str(source), line)


def test_invalid_yaml_names_file_and_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path / "hosts.yml", "all:\n  hosts:\n    web1: {\n  children\n")
    error = assert_bad(source, f"{source}:", capfd)
    assert error.line is not None and error.line >= 3
    assert "YAML" in str(error)


def test_yaml_of_the_wrong_shape(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path / "hosts.yaml", "- web1\n- web2\n")
    assert "should be a dictionary" in str(assert_bad(source, f"{source}: ", capfd))


def test_invalid_group_vars_file_names_it(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "inv" / "hosts", "web1\n")
    vars_file = write(tmp_path / "inv" / "group_vars" / "all.yml", "ok: 1\nbroken: [\n")
    error = assert_bad(tmp_path / "inv", f"{vars_file}:", capfd)
    assert error.line is not None


def test_failing_dynamic_script(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    script = write(tmp_path / "cmdb.sh", "#!/bin/sh\necho 'cmdb unreachable' >&2\nexit 3\n")
    script.chmod(0o755)
    error = assert_bad(script, f"{script}: ", capfd)
    assert "non-zero exit code 3" in str(error)
    assert "cmdb unreachable" in str(error)


def test_ill_formed_dynamic_script(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    script = write(tmp_path / "cmdb.sh", "#!/bin/sh\necho 'this is not json'\n")
    script.chmod(0o755)
    assert "JSON" in str(assert_bad(script, f"{script}: ", capfd))


def test_missing_source(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.ini"
    assert "not found" in str(assert_bad(missing, f"{missing}: ", capfd))
    error = assert_bad("webserver", "webserver: ", capfd)
    assert "-i 'webserver,'" in str(error)


def test_bad_port_names_where_it_was_set(tmp_path: Path) -> None:
    source = write(tmp_path / "hosts.ini", "h1\nh2 ansible_port=ssh\n")
    inventory = load_inventory([source])
    with pytest.raises(BadInput) as caught:
        inventory.select()
    assert str(caught.value).startswith(f"{source}:2: host h2: ansible_port must be a TCP port number")


def test_undefined_template_in_connection_var(tmp_path: Path) -> None:
    source = write(tmp_path / "hosts.ini", 'h1 ansible_host="{{ missing_var }}"\n')
    with pytest.raises(BadInput, match="missing_var") as caught:
        load_inventory([source]).select()
    assert caught.value.source == str(source)


def test_no_sources() -> None:
    with pytest.raises(BadInput, match="no inventory given"):
        load_inventory([])


# --- sources and the CLI -------------------------------------------------------------------------


def test_resolve_sources() -> None:
    assert resolve_sources(["a", Path("b")], environ={"MAINT_INVENTORY": "c"}) == ["a", "b"]
    assert resolve_sources([], environ={"MAINT_INVENTORY": "inventory/prod.ini"}) == ["inventory/prod.ini"]
    with pytest.raises(BadInput, match="MAINT_INVENTORY") as caught:
        resolve_sources([], environ={})
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_cli_list_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAINT_INVENTORY", raising=False)
    result = CliRunner().invoke(inventory_command, ["list", "-i", str(INI), "-l", "db:nas:lonely*"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "lonely.example.com  lonely.example.com:22  -",
        "db1                 192.0.2.21:22          backup,db,prod",
        "db2                 192.0.2.22:22          backup,db,prod",
        "db3                 [2001:db8::3]:2222     backup,db,prod",
        "nas                 192.0.2.30:22          backup",
    ]


def test_cli_uses_maint_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAINT_INVENTORY", str(PRECEDENCE))
    result = CliRunner().invoke(inventory_command, ["graph", "web"])
    assert result.exit_code == 0, result.output
    assert result.output == "@web:\n  |--web01\n  |--web02\n"


def test_cli_without_inventory_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAINT_INVENTORY", raising=False)
    result = CliRunner().invoke(inventory_command, ["list"])
    assert isinstance(result.exception, BadInput)
    assert "-i INVENTORY" in str(result.exception)


def test_importing_maint_does_not_import_ansible() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "import maint.inventory, maint.cli.inventory\n"
        "from maint.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] == 'ansible')\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "pattern",
    ["db2", "db", "db1,nas", "db1:nas", "web1*", "*.example.com:!web*", "~web0[1-3]\\.", "~^(db|nas)", "prod:&backup",
     "backup:!db", "prod:!web:!db1", "db,backup", "ungrouped", "all", "*", "!db", "&backup", "web?1*:&prod",
     "~nas|lonely", "prod:!~^web0"],
)  # fmt: skip
def test_the_pattern_matcher_without_inventory_agrees_with_ansible(ini: Inventory, pattern: str) -> None:
    # Tickets' routing rules match a host and its groups without the inventory: ansible-core is the oracle.
    every = ini.select("all")
    matched = {host.name for host in every if matches(pattern, host.name, host.groups)}
    assert matched == set(names(ini.select(pattern)))


def test_the_matcher_refuses_a_subscript_it_cannot_order() -> None:
    with pytest.raises(ValueError, match="a subscript needs the inventory's order"):
        matches("web[0]", "web01", ["web"])
