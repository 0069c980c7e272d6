"""Nothing lost: ticket actions go through the outbox to backends that may be down, slow or refusing.

``maint run`` against the lab with maint.yml routing tickets to a webhook (a real HTTP server on
loopback, built on tests/helpers/http_fake.py: a generic receiver, not a vendor's API) and to a
real SMTP server (aiosmtpd). The receiver is stopped, made to hang or to answer 503, and the
tests show that the run's exit code and time do not change, that the actions wait in the outbox,
and that ``maint tickets sync`` delivers each exactly once, in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_fake import FakeHTTPServer, Request
from smtp_server import SMTPServer

from maint.lab import Lab

pytestmark = pytest.mark.lab


@pytest.fixture
def receiver() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer()

    @server.route("POST", "/hook")
    def hook(request: Request) -> tuple[int, Any]:
        return 200, {"ok": True}

    server.start()
    yield server
    server.fault = None
    server.stop()


def project(tmp_path: Path, backends: str, routing: str = "  routing:\n    - backends: [hook]\n") -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    flags = tmp_path / "flags"
    flags.mkdir()
    (directory / "maint.yml").write_text(
        f"store: sqlite:///{directory / 'maint.db'}\ntickets:\n  timeout: 1s\n  deliver_within: 5s\n"
        f"  backends:\n{backends}{routing}",
        encoding="utf-8",
    )
    (directory / "book.yml").write_text(
        f"""
name: book
steps:
  - id: flag-absent
    type: command
    command: test ! -e {flags}/{{{{ inventory_hostname }}}}.bad
""",
        encoding="utf-8",
    )
    return directory


def hook_backend(receiver: FakeHTTPServer) -> str:
    return f"    hook:\n      type: webhook\n      url: {receiver.url}/hook\n"


def run(maint_cli: Any, lab: Lab, directory: Path, *args: str) -> tuple[dict[str, Any], str, float]:
    started = time.monotonic()
    done = maint_cli("run", "book.yml", "-i", lab.inventory, "--format", "json", *args, cwd=directory)
    seconds = time.monotonic() - started
    assert done.returncode in (0, 4), done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document, done.stderr, seconds


def delivered(receiver: FakeHTTPServer) -> list[tuple[str, str]]:
    return [(r.json()["event"], r.json()["key"]) for r in receiver.requests_to("POST", "/hook")]


def test_a_down_backend_keeps_actions_in_the_outbox_until_sync(
    lab: Lab, maint_cli: Any, tmp_path: Path, receiver: FakeHTTPServer
) -> None:
    directory = project(tmp_path, hook_backend(receiver))
    for host in ("lab1", "lab2"):
        (tmp_path / "flags" / f"{host}.bad").touch()
    receiver.stop()
    document, stderr, _ = run(maint_cli, lab, directory, "-l", "lab1,lab2")
    assert document["exit_code"] == 4  # the same as without tickets: a down backend changes nothing
    assert document["tickets"]["actions"] == {"opened": 2}
    assert document["tickets"]["pending"] == 2
    assert "ticket backend 'hook' failed" in stderr and "connection refused" in stderr
    still_down = maint_cli("tickets", "sync", cwd=directory)
    assert still_down.returncode == 4
    assert "2 waiting in the outbox" in still_down.stdout

    # Another run while it is down: its actions queue behind the first ones.
    (tmp_path / "flags" / "lab1.bad").unlink()
    document, _, _ = run(maint_cli, lab, directory, "-l", "lab1,lab2")
    assert document["tickets"]["pending"] == 4

    receiver.start()
    synced = maint_cli("tickets", "sync", cwd=directory)
    assert synced.returncode == 0, synced.stderr
    assert "delivered 4 ticket actions; 0 waiting" in synced.stdout
    events = delivered(receiver)
    assert sorted(events[:2]) == [("open", "lab1/flag-absent"), ("open", "lab2/flag-absent")]
    assert sorted(events[2:]) == [("comment", "lab2/flag-absent"), ("resolve", "lab1/flag-absent")]
    again = maint_cli("tickets", "sync", cwd=directory)
    assert again.returncode == 0 and "delivered 0 ticket actions" in again.stdout
    assert len(delivered(receiver)) == 4  # exactly once

    shown = json.loads(maint_cli("tickets", "show", "1", "--format", "json", cwd=directory).stdout)
    assert {row["status"] for row in shown["deliveries"]} == {"sent"}
    # Refused by the first run, the first sync and the second run, then sent; ticket 2's open
    # waited behind it untried, so the backend saw the actions in order.
    assert shown["deliveries"][0]["attempts"] == 4
    (tmp_path / "flags" / "lab2.bad").unlink()


def test_a_hanging_backend_costs_the_run_one_timeout(
    lab: Lab, maint_cli: Any, tmp_path: Path, receiver: FakeHTTPServer
) -> None:
    directory = project(tmp_path, hook_backend(receiver))
    hosts = ("lab1", "lab2", "lab3", "lab4")
    for host in hosts:
        (tmp_path / "flags" / f"{host}.bad").touch()
    _, _, calm_seconds = run(maint_cli, lab, directory, "-l", "lab5")  # no failure: no delivery at all
    receiver.fault, receiver.hang_seconds = "hang", 3.0
    document, stderr, seconds = run(maint_cli, lab, directory, "-l", ",".join(hosts))
    assert document["tickets"]["actions"] == {"opened": 4}
    assert document["tickets"]["pending"] == 4
    assert "no answer" in stderr
    # One 1 s timeout, then the backend is skipped for the rest of this pass (not 4 x 1 s).
    assert seconds < calm_seconds + 2.5, (seconds, calm_seconds)

    receiver.fault = None
    assert maint_cli("tickets", "sync", cwd=directory).returncode == 0
    keys = {r.headers["Idempotency-Key"] for r in receiver.requests_to("POST", "/hook")}
    assert len(keys) == 4  # the hung first request and its re-send carry the same key
    for host in hosts:
        (tmp_path / "flags" / f"{host}.bad").unlink()


def test_a_failing_backend_does_not_hold_up_another(
    lab: Lab, maint_cli: Any, tmp_path: Path, receiver: FakeHTTPServer
) -> None:
    with SMTPServer(tmp_path) as smtp:
        backends = hook_backend(receiver) + (
            f"    mail:\n      type: email\n      host: 127.0.0.1\n      port: {smtp.port}\n"
            "      from: maint@example.org\n      to: [ops@example.org]\n"
        )
        routing = "  routing:\n    - backends: [hook, mail]\n"
        directory = project(tmp_path, backends, routing)
        (tmp_path / "flags" / "lab3.bad").touch()
        receiver.fault = "error"
        document, stderr, _ = run(maint_cli, lab, directory, "-l", "lab3")
        assert document["tickets"]["pending"] == 1
        assert "HTTP 503" in stderr
        (mail,) = smtp.wait_for(1)
        assert mail.message["X-Maint-Key"] == "lab3/flag-absent"
        assert "flag-absent on lab3" in mail.message["Subject"]
        body = mail.text()
        assert "maint run book.yml" in body and "-l lab3" in body  # how to reproduce
        assert "maint-event-" in body
    refused = len(delivered(receiver))  # the receiver saw the request it answered with 503
    receiver.fault = None
    assert maint_cli("tickets", "sync", cwd=directory).returncode == 0
    assert delivered(receiver)[refused:] == [("open", "lab3/flag-absent")]
    (tmp_path / "flags" / "lab3.bad").unlink()


def test_routing_by_tier_sends_only_matching_tickets(
    lab: Lab, maint_cli: Any, tmp_path: Path, receiver: FakeHTTPServer
) -> None:
    routing = "  routing:\n    - tier: L2\n      backends: [hook]\n      queue: service-desk\n"
    directory = project(tmp_path, hook_backend(receiver), routing)
    config = directory / "maint.yml"
    config.write_text(config.read_text() + "  overrides:\n    flag-*: {tier: L2}\n", encoding="utf-8")
    (tmp_path / "flags" / "lab1.bad").touch()
    document, _, _ = run(maint_cli, lab, directory, "-l", "lab1")
    assert document["results"][0]["tier"] == "L2"  # maint.yml overrides the playbook's default
    (request,) = receiver.requests_to("POST", "/hook")
    assert (request.json()["tier"], request.json()["queue"]) == ("L2", "service-desk")
    (tmp_path / "flags" / "lab1.bad").unlink()


def test_secrets_never_reach_tickets_or_backends(
    lab: Lab, maint_cli: Any, tmp_path: Path, receiver: FakeHTTPServer
) -> None:
    directory = project(tmp_path, hook_backend(receiver))
    (directory / "book.yml").write_text(
        """
name: book
steps:
  - id: leaky
    type: command
    command: echo "token is $(cat)"; exit 1
    stdin_secret: env:MAINT_TEST_SECRET
""",
        encoding="utf-8",
    )
    secret = "s3cr3t-value-4711"
    done = maint_cli("run", "book.yml", "-i", lab.inventory, "-l", "lab1", cwd=directory,
                     env={"MAINT_TEST_SECRET": secret})  # fmt: skip
    assert done.returncode == 4, done.stderr
    (request,) = receiver.requests_to("POST", "/hook")
    assert "token is ***" in request.json()["body"]
    assert secret.encode() not in request.body
    for store_file in directory.glob("maint.db*"):  # the database and its write-ahead log (not its locks/)
        assert store_file.is_dir() or secret.encode() not in store_file.read_bytes()
    shown = maint_cli("tickets", "show", "1", cwd=directory)
    assert shown.returncode == 0 and secret not in shown.stdout
