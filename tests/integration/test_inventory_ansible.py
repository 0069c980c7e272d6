"""maint's inventory views against the real ansible-core command-line tools.

`maint inventory list|host|graph` run as real subprocesses and must print what `ansible-inventory`
prints for the same sources, byte for byte; `Inventory.select` must pick the hosts that
`ansible PATTERN --list-hosts` picks. Both tools come from the same virtualenv as the interpreter
running the tests. Nothing here uses the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from maint.inventory import Inventory, load_inventory

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "inventories"
BIN = Path(sys.executable).parent
ANSIBLE_INVENTORY = BIN / "ansible-inventory"
ANSIBLE = BIN / "ansible"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch HOME and cwd: no ansible.cfg around, and ansible-inventory's ~/.ansible lands here."""
    path = tmp_path_factory.mktemp("inventory-ansible")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def sources(workdir: Path) -> dict[str, str]:
    """The inventories both tools read, by name (scripts copied so that they are executable)."""
    scripts = workdir / "scripts"
    scripts.mkdir()
    copied = {}
    for name, script in (("dynamic", DATA / "dynamic.py"), ("example-dynamic", REPO / "inventory" / "dynamic.py")):
        target = scripts / f"{name}.py"
        shutil.copy(script, target)
        target.chmod(0o755)
        copied[name] = str(target)
    return {
        "ini": str(DATA / "hosts.ini"),
        "yaml": str(DATA / "hosts.yml"),
        "dir-precedence": str(DATA / "precedence"),
        "dir-mixed": str(DATA / "yaml-dir"),
        "dynamic": copied["dynamic"],
        "host-list": "alpha.example.com,beta.example.com:2200,",
        "example-ini": str(REPO / "inventory" / "example.ini"),
        "example-yaml": str(REPO / "inventory" / "example-yaml"),
        "example-dynamic": copied["example-dynamic"],
    }


@pytest.fixture(scope="module")
def run(workdir: Path) -> Run:
    """Run a command in the scratch directory with a scratch HOME; never raises on exit status."""
    environment = dict(os.environ)
    environment.update(HOME=str(workdir / "home"), ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"))
    environment.pop("MAINT_INVENTORY", None)
    environment.pop("ANSIBLE_CONFIG", None)

    def run_command(*arguments: str | Path, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(argument) for argument in arguments],
            cwd=workdir,
            env={name: value for name, value in environment.items() if name not in unset},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run_command


def maint(run: Run, *arguments: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "maint", *arguments, unset=unset)


def same_output(ours: subprocess.CompletedProcess[str], theirs: subprocess.CompletedProcess[str]) -> None:
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""
    assert ours.stdout == theirs.stdout


INVENTORIES = [
    "ini",
    "yaml",
    "dir-precedence",
    "dir-mixed",
    "dynamic",
    "host-list",
    "example-ini",
    "example-yaml",
    "example-dynamic",
]


def test_the_ansible_tools_are_installed() -> None:
    assert ANSIBLE_INVENTORY.exists(), f"ansible-core is not installed next to {sys.executable}"
    assert ANSIBLE.exists()


@pytest.mark.parametrize("name", INVENTORIES)
def test_list_json_is_ansible_inventory_list(run: Run, sources: dict[str, str], name: str) -> None:
    source = sources[name]
    same_output(
        maint(run, "inventory", "list", "--format", "json", "-i", source),
        run(ANSIBLE_INVENTORY, "-i", source, "--list"),
    )


def test_list_of_several_sources(run: Run, sources: dict[str, str]) -> None:
    both = ["-i", sources["ini"], "-i", sources["dynamic"], "-i", sources["dir-mixed"]]
    same_output(
        maint(run, "inventory", "list", "--format", "json", *both),
        run(ANSIBLE_INVENTORY, *both, "--list"),
    )


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("ini", "db*:nas"),
        ("ini", "prod:!web"),
        ("yaml", "storage"),
        ("dir-mixed", "app1,mon1"),
        ("dynamic", "edge[1:]"),
    ],
)
def test_list_with_limit(run: Run, sources: dict[str, str], name: str, limit: str) -> None:
    source = sources[name]
    same_output(
        maint(run, "inventory", "list", "--format", "json", "-i", source, "--limit", limit),
        run(ANSIBLE_INVENTORY, "-i", source, "--list", "--limit", limit),
    )


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("ini", "db3"),
        ("ini", "web-canary.example.com"),
        ("ini", "lonely.example.com"),
        ("yaml", "ceph-b"),
        ("dir-precedence", "web01"),
        ("dir-precedence", "web02"),
        ("dir-mixed", "app1"),
        ("dynamic", "edge3"),
        ("example-yaml", "web1.internal"),
    ],
)
def test_host_is_ansible_inventory_host(run: Run, sources: dict[str, str], name: str, host: str) -> None:
    source = sources[name]
    same_output(
        maint(run, "inventory", "host", host, "-i", source),
        run(ANSIBLE_INVENTORY, "-i", source, "--host", host),
    )


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("ini", None),
        ("ini", "prod"),
        ("yaml", None),
        ("yaml", "storage"),
        ("dir-precedence", None),
        ("dir-mixed", "workers"),
        ("dynamic", None),
        ("example-yaml", None),
    ],
)
def test_graph_is_ansible_inventory_graph(run: Run, sources: dict[str, str], name: str, group: str | None) -> None:
    source = sources[name]
    pattern = [group] if group else []
    same_output(
        maint(run, "inventory", "graph", *pattern, "-i", source),
        run(ANSIBLE_INVENTORY, "-i", source, "--graph", *pattern),
    )


# One `ansible --list-hosts` process per case: each pattern kind once, against one inventory.
PATTERNS = [
    ("all", None),
    ("web", None),
    ("db:backup", None),
    ("db,nas,lonely.example.com", None),
    ("prod:&backup", None),
    ("backup:!db", None),
    ("web1*", None),
    ("~(db|nas)[0-9]*$", None),
    ("web[2:4]", None),
    ("web[-1]", None),
    ("all", "db*"),
    ("prod", "!web:!db2"),
    ("all", "@LIMIT_FILE"),
]


@pytest.fixture(scope="module")
def ini_inventory(sources: dict[str, str]) -> Inventory:
    return load_inventory([sources["ini"]])


@pytest.mark.parametrize(("pattern", "limit"), PATTERNS)
def test_select_is_ansible_list_hosts(
    run: Run, workdir: Path, sources: dict[str, str], ini_inventory: Inventory, pattern: str, limit: str | None
) -> None:
    if limit == "@LIMIT_FILE":
        limit_file = workdir / "limit.txt"
        limit_file.write_text("nas\nweb07.example.com\ndb2\n", encoding="utf-8")
        limit = f"@{limit_file}"
    extra = ["--limit", limit] if limit else []
    listed = run(ANSIBLE, pattern, "-i", sources["ini"], "--list-hosts", *extra)
    assert listed.returncode == 0, listed.stderr
    theirs = [line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()]
    ours = [host.name for host in ini_inventory.select(pattern, limit=limit)]
    assert ours == theirs
    assert ours, "every case here should match something"


def test_malformed_inventory_exit_code_and_one_line(run: Run, workdir: Path) -> None:
    bad = workdir / "broken.ini"
    bad.write_text("[web]\nweb1\n[db:children\n", encoding="utf-8")
    result = maint(run, "inventory", "list", "-i", str(bad))
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"maint: error: {bad}:3: ")
    assert "Traceback" not in result.stderr
    assert "WARNING" not in result.stderr


def test_missing_inventory_option(run: Run) -> None:
    result = maint(run, "inventory", "list")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "MAINT_INVENTORY" in result.stderr


def test_maint_leaves_home_alone_and_stays_quiet(run: Run, workdir: Path, sources: dict[str, str]) -> None:
    home = workdir / "home"
    shutil.rmtree(home)
    home.mkdir()
    # the dynamic fixture sets the reserved name `tags`, which makes Ansible warn
    result = maint(
        run, "inventory", "list", "-i", sources["dynamic"], "-i", sources["dir-mixed"], unset=("ANSIBLE_LOCAL_TEMP",)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert list(home.iterdir()) == []
