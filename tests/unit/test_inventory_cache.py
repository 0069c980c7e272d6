"""The static-inventory selection cache: same answers as ansible-core, invalidated by any change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maint.inventory import load_inventory
from maint.inventory.cache import open_inventory

INI = """[web]
web[01:03] ansible_port=2201
[db]
db1 ansible_host=127.0.0.9
[all:vars]
ansible_user=ops
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "inv").mkdir()
    path = tmp_path / "inv" / "hosts.ini"
    path.write_text(INI)
    (tmp_path / "inv" / "group_vars").mkdir()
    (tmp_path / "inv" / "group_vars" / "web.yml").write_text("tier: front\n")
    return path


def test_cached_selection_equals_ansible_cores(inventory: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = open_inventory([str(inventory)], cache)
    assert first.cacheable
    computed = first.select("web:db", "!web02")
    first.save()
    second = open_inventory([str(inventory)], cache)
    cached = second.select("web:db", "!web02")
    assert second._real is None, "a hit must not load ansible-core"
    assert cached == computed == load_inventory([str(inventory)]).select("web:db", "!web02")
    assert [host.vars for host in cached] == [host.vars for host in computed]
    assert cached[0].vars["tier"] == "front"
    assert second.digest == load_inventory([str(inventory)]).digest


def test_a_hit_does_not_import_ansible(inventory: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom maint.inventory.cache import open_inventory\n"
        f"inventory = open_inventory([{str(inventory)!r}], Path({str(tmp_path / 'cache')!r}))\n"
        "print(len(inventory.select('all')))\ninventory.save()\nprint('ansible' in sys.modules)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in "12"]
    assert runs[0].stdout.split() == ["4", "True"]
    assert runs[1].stdout.split() == ["4", "False"]


def test_any_change_is_a_miss(inventory: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = open_inventory([str(inventory)], cache)
    assert first.select("web")[0].vars["tier"] == "front"
    first.save()
    (inventory.parent / "group_vars" / "web.yml").write_text("tier: edge\n")
    second = open_inventory([str(inventory)], cache)
    assert second.select("web")[0].vars["tier"] == "edge"
    assert second._real is not None


def test_ansible_environment_is_part_of_the_key(
    inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = open_inventory([str(inventory)], cache)
    first.select("all")
    first.save()
    monkeypatch.setenv("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "1")
    second = open_inventory([str(inventory)], cache)
    second.select("all")
    assert second._real is not None


def test_limit_file_content_is_part_of_the_key(inventory: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    limit = tmp_path / "limit.txt"
    limit.write_text("web01\n")
    first = open_inventory([str(inventory)], cache)
    assert [host.name for host in first.select("all", f"@{limit}")] == ["web01"]
    first.save()
    limit.write_text("db1\n")
    assert [host.name for host in open_inventory([str(inventory)], cache).select("all", f"@{limit}")] == ["db1"]


@pytest.mark.parametrize(
    ("name", "content", "executable"),
    [
        ("dynamic.py", "#!/bin/sh\necho '{}'\n", True),
        ("hosts.ini", "[web]\nweb1 ansible_host=\"{{ lookup('env', 'IP') }}\"\n", False),
        ("aws.yml", "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n", False),
    ],
)
def test_non_static_sources_are_never_cached(tmp_path: Path, name: str, content: str, executable: bool) -> None:
    path = tmp_path / name
    path.write_text(content)
    if executable:
        path.chmod(0o755)
    assert not open_inventory([str(path)], tmp_path / "cache").cacheable


def test_unwritable_cache_is_skipped(inventory: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cached = open_inventory([str(inventory)], blocker / "cache")
    assert len(cached.select("all")) == 4
    cached.save()
    assert not (blocker / "cache").exists()


def test_no_cache_dir_means_no_cache(inventory: Path) -> None:
    plain = open_inventory([str(inventory)], None)
    assert not plain.cacheable
    assert len(plain.select("all")) == 4
    assert os.path.exists(inventory)
