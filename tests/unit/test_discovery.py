"""Which maint.yml is used and why, where the state lives, and the store's default location."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maint.config import choose, discover, load
from maint.config.discovery import SYSTEM_CONFIG, user_state_dir
from maint.errors import ExitCode
from maint.store import locate


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A repository (``repo/.git``) with ``repo/a/b`` inside, a home directory, no $MAINT_CONFIG or --config."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    monkeypatch.delenv("MAINT_CONFIG", raising=False)
    monkeypatch.delenv("MAINT_DB", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    choose(None)
    yield tmp_path
    choose(None)


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_each_place_in_order_first_found_wins(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tree / "repo" / "a" / "b"
    home = tree / "home"
    user = write(home / ".config" / "maint" / "maint.yml")
    assert (discover(here).path, discover(here).source) == (user, "user")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tree / "xdg"))
    xdg = write(tree / "xdg" / "maint" / "maint.yml")
    assert (discover(here).path, discover(here).source) == (xdg, "user")
    parent = write(tree / "repo" / "maint.yml")
    assert (discover(here).path, discover(here).source) == (parent, "parent")
    nearer = write(tree / "repo" / "a" / "maint.yml")
    assert discover(here).path == nearer
    own = write(here / "maint.yml")
    assert (discover(here).path, discover(here).source) == (own, "cwd")
    named = write(tree / "elsewhere" / "named.yml")
    monkeypatch.setenv("MAINT_CONFIG", str(named))
    assert (discover(here).path, discover(here).source) == (named, "$MAINT_CONFIG")
    given = write(tree / "given" / "given.yml")
    choose(given)
    assert (discover(here).path, discover(here).source) == (given, "--config")


def test_the_walk_up_stops_at_the_repository_root(tree: Path) -> None:
    write(tree / "maint.yml")  # above the repository: not this project's
    found = discover(tree / "repo" / "a" / "b")
    assert found.path != tree / "maint.yml"
    assert found.source in ("system", "none") and (found.source == "system") == SYSTEM_CONFIG.is_file()


@pytest.mark.parametrize("marker", [".git", ".hg", ".svn"])
def test_a_maint_yml_at_the_repository_root_is_found(tree: Path, marker: str) -> None:
    root = tree / "other"
    (root / marker).mkdir(parents=True)
    (root / "sub").mkdir()
    config = write(root / "maint.yml")
    assert discover(root / "sub").path == config


def test_a_projects_file_sets_the_project_and_state_directories(tree: Path) -> None:
    write(tree / "repo" / "maint.yml")
    found = discover(tree / "repo" / "a" / "b")
    assert found.project and found.project_dir == tree / "repo"
    assert found.state_dir == tree / "repo" / ".maint"


def test_a_users_file_is_settings_the_project_is_the_current_directory(tree: Path) -> None:
    write(tree / "home" / ".config" / "maint" / "maint.yml")
    found = discover(tree / "repo" / "a")
    assert not found.project and found.project_dir == tree / "repo" / "a"
    assert found.state_dir == user_state_dir()


def test_the_user_state_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert user_state_dir({}, home, euid=1000) == home / ".local" / "state" / "maint"
    assert user_state_dir({}, home, euid=0) == Path("/var/lib/maint")
    given = {"XDG_STATE_HOME": str(tmp_path / "state")}
    assert user_state_dir(given, home, euid=0) == tmp_path / "state" / "maint"
    assert user_state_dir(given, home, euid=1000) == tmp_path / "state" / "maint"


def test_the_default_store_is_beside_the_projects_maint_yml(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tree / "repo" / "maint.yml")
    monkeypatch.chdir(tree / "repo" / "a" / "b")
    found = locate(None)
    assert found.url == f"sqlite:///{tree / 'repo' / '.maint' / 'maint.db'}" and found.default
    assert found.origin == f"the default beside {config}"


def test_without_a_maint_yml_the_default_store_is_in_the_user_state_directory(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree / "repo" / "a")
    monkeypatch.setenv("XDG_STATE_HOME", str(tree / "state"))
    assert locate(None).url == f"sqlite:///{tree / 'state' / 'maint' / 'maint.db'}"


def test_db_maint_db_and_maint_ymls_store_win_over_the_default(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tree / "repo" / "maint.yml", "store: sqlite:///records/maint.db\n")
    monkeypatch.chdir(tree / "repo" / "a")
    # A relative path in maint.yml is relative to maint.yml, wherever maint runs.
    assert locate(None).url == f"sqlite:///{tree / 'repo' / 'records' / 'maint.db'}"
    assert locate(None).origin == f"store in {config}"
    monkeypatch.setenv("MAINT_DB", "sqlite:///env.db")
    assert (locate(None).url, locate(None).origin) == ("sqlite:///env.db", "$MAINT_DB")
    assert (locate("sqlite:///given.db").url, locate("sqlite:///given.db").origin) == ("sqlite:///given.db", "--db")


def test_the_config_option_names_the_file_and_its_directory_is_the_project(
    tree: Path, maint_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tree / "ops" / "fleet.yml", "store_busy_timeout: 42s\n")
    done = maint_cli("--config", config, "config", "show", "--format", "json", cwd=tree / "repo" / "a")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["path"] == str(config) and shown["store_busy_timeout"] == 42
    assert shown["in_use"]["source"] == "--config" and shown["in_use"]["project_dir"] == str(tree / "ops")
    assert shown["in_use"]["store"]["url"] == f"sqlite:///{tree / 'ops' / '.maint' / 'maint.db'}"
    # The option holds for that command only.
    assert load().path != config


def test_config_show_says_which_file_and_why(tree: Path, maint_cli: Any) -> None:
    config = write(tree / "repo" / "maint.yml", "store: postgresql://maint:hunter2@db.example.org/maint\n")
    done = maint_cli("config", "show", cwd=tree / "repo" / "a")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"# maint.yml: {config} (parent: in a parent directory of the current one)"
    assert lines[1] == f"# project directory: {tree / 'repo'}"
    assert f"# store: postgresql://maint:***@db.example.org/maint (store in {config})" in lines
    assert "hunter2" not in "\n".join(lines[:5])


def test_read_only_commands_never_create_a_store(tree: Path, maint_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tree / "repo" / "empty"
    empty.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(tree / "state"))
    store = tree / "state" / "maint" / "maint.db"
    listings = [("runs", "list"), ("tickets", "list"), ("stats",), ("audit", "export"), ("db", "current")]
    records = [("runs", "show", "last"), ("tickets", "show", "1"), ("report", "last"), ("audit", "verify")]
    for command in listings + records:
        done = maint_cli(*command, cwd=empty)
        expected = ExitCode.OK if command in listings else ExitCode.BAD_INPUT
        assert done.returncode == expected, (command, done.stderr)
        # A listing says so and is empty; a record asked for is that command's error.
        prefix = "maint: " if command in listings else "maint: error: "
        assert done.stderr == f"{prefix}no store at {store} (the default without a maint.yml): nothing recorded yet\n"
        assert done.stdout == ""
    assert not (empty / ".maint").exists() and not (tree / "state").exists()
    write(tree / "repo" / "maint.yml")
    done = maint_cli("tickets", "list", cwd=empty)
    assert done.returncode == 0 and f"no store at {tree / 'repo' / '.maint' / 'maint.db'}" in done.stderr
    assert not (tree / "repo" / ".maint").exists()


def test_a_command_that_writes_creates_the_default_store(tree: Path, maint_cli: Any) -> None:
    write(tree / "repo" / "maint.yml")
    done = maint_cli("db", "upgrade", cwd=tree / "repo" / "a")
    assert done.returncode == 0, done.stderr
    assert (tree / "repo" / ".maint" / "maint.db").is_file()
    assert (tree / "repo" / ".maint").stat().st_mode & 0o777 == 0o700
