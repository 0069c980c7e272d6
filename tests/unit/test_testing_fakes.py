"""maint.testing's fakes: the engine in-process against scripted hosts and a frozen clock (no sshd)."""

from __future__ import annotations

from pathlib import Path

import maint.run as engine
from maint.testing import FakeExecutor, FrozenClock, Response

# Hosts reached over SSH by the inventory; the fake answers for them, nothing is dialled.
INVENTORY = "[web]\nweb1 ansible_host=127.0.0.2\nweb2 ansible_host=127.0.0.3\nweb3 ansible_host=127.0.0.4\n"
BOOK = (
    "steps:\n"
    "  - id: root-disk\n    type: disk.usage\n    warn: 80\n    critical: 90\n"
    "  - id: greet\n    type: command\n    command: echo hello {{ inventory_hostname }}\n"
)
DF = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 {used} {free} {used_pct}% /\n"


def request(tmp_path: Path, **options: object) -> engine.RunRequest:
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    (tmp_path / "book.yml").write_text(BOOK)
    return engine.RunRequest(
        playbooks=[str(tmp_path / "book.yml")], inventory=[str(tmp_path / "hosts.ini")],
        db_url=f"sqlite:///{tmp_path / 'maint.db'}", project_dir=tmp_path, tickets=False, **options,  # type: ignore[arg-type]
    )  # fmt: skip


def disk(used: int) -> Response:
    return Response(stdout=DF.format(used=used, free=1000 - used, used_pct=used // 10))


def test_scripted_hosts_run_and_record_in_process(tmp_path: Path) -> None:
    fake = FakeExecutor()
    fake.on(r"^df ", answer=lambda host, command: disk(950 if host == "web2" else 500))
    fake.on(r"^echo ", answer=lambda host, command: Response(stdout=command.removeprefix("echo ") + "\n"))
    fake.unreachable("web3", "connection to 127.0.0.4:22 refused")
    clock = FrozenClock()
    document = engine.run(request(tmp_path), executors={"ssh": fake}, clock=clock)
    results = {(r["host"], r["step"]): (r["status"], r["summary"]) for r in document.results}
    assert results[("web1", "root-disk")][0] == "ok"
    assert results[("web2", "root-disk")] == ("failed", results[("web2", "root-disk")][1])
    assert "95%" in results[("web2", "root-disk")][1]
    assert results[("web1", "greet")] == ("ok", "hello web1")
    assert results[("web3", "greet")] == ("unreachable", "connection to 127.0.0.4:22 refused")
    assert document.run["status"] == "failed" and document.run["exit_code"] == 4
    assert fake.commands["web1"] == [fake.commands["web1"][0], "echo hello web1"]
    assert all(r["started"] == "2026-01-05T02:00:00.000Z" for r in document.results)


def test_a_command_nobody_scripted_fails_as_not_found(tmp_path: Path) -> None:
    document = engine.run(request(tmp_path, limit="web1"), executors={"ssh": FakeExecutor()})
    summaries = {r["step"]: r["summary"] for r in document.results}
    assert summaries["greet"].startswith("command not found (exit 127): not scripted: echo hello web1")


def test_a_failed_batch_aborts_the_rest_in_process(tmp_path: Path) -> None:
    fake = FakeExecutor().on(r"^df ", answer=lambda host, command: disk(990 if host == "web1" else 100))
    fake.on(r"^echo ", stdout="hi\n")
    document = engine.run(request(tmp_path, serial=("1",), max_fail_percentage=0.0), executors={"ssh": fake})
    assert (document.run["status"], document.run["exit_code"]) == ("aborted", 6)
    skipped = {r["host"] for r in document.results if r["status"] == "skipped"}
    assert skipped == {"web2", "web3"}
    assert "web2" not in fake.commands  # never touched
