"""Where a store's host locks live (maint.locks.lock_directory): one registry per store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maint.locks import lock_directory


def test_an_sqlite_store_keeps_its_locks_beside_it_whatever_the_directory_it_is_named_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    store = tmp_path / "maint.db"
    monkeypatch.chdir(tmp_path / "a")
    from_a = lock_directory("sqlite:///../maint.db", Path("../maint.db"))
    monkeypatch.chdir(tmp_path)
    assert lock_directory(f"sqlite:///{store}", store) == from_a == tmp_path / "maint.db.locks"
    os.symlink(store, tmp_path / "link.db")
    assert lock_directory("sqlite:///link.db", Path("link.db")) == from_a


def test_a_server_store_keeps_its_locks_in_the_state_directory_keyed_by_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    first = lock_directory("postgresql://maint:secret@db.example.org/maint", None)
    assert first.parent == tmp_path / "maint" / "locks"
    # The same database named with other credentials is the same fleet; another database is not.
    assert lock_directory("postgresql://maint:other@db.example.org/maint", None) == first
    assert lock_directory("postgresql://maint@db.example.org/staging", None) != first
    assert "secret" not in str(first)


def test_a_waiting_run_is_told_once_whom_it_waits_for(tmp_path: Path) -> None:
    from maint.locks import acquire, release

    registry = tmp_path / "locks"
    acquire(registry, "first", ["web1", "web2"], lambda pid: True, "2026-12-05T01:00:00Z")
    told: list[str] = []
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the first run ends after the second poll
        polls.append(seconds)
        if len(polls) == 2:
            release(registry, "first")

    acquire(registry, "second", ["web2"], lambda pid: True, "2026-12-05T01:00:01Z", wait=True, sleep=sleep,
            waiting=told.append)  # fmt: skip
    assert len(polls) == 2
    assert told == [f"waiting: run first (pid {os.getpid()}, since 2026-12-05T01:00:00Z) is working on web2"]
