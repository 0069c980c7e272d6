"""Notifications of run outcomes through Apprise, and maint.yml's ``pings`` for every run, received by real
servers on loopback: an HTTP server (Apprise's json://, form:// and ntfy:// targets, the ping monitor) and
an SMTP server (Apprise's mailto://). The runs are in-process (scripted hosts, a store in memory); one
test runs ``maint run`` as a subprocess end to end.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from http_fake import FakeHTTPServer, Request
from smtp_server import SMTPServer

from maint.errors import ExitCode
from maint.notify.notifications import GRACE
from maint.run import NotStarted, RunInterrupted, RunRequest, run
from maint.store import RunDocument, Store
from maint.testing import FakeExecutor, Response, memory_store, services

pytest.importorskip("apprise")

INVENTORY = "[web]\nweb1 ansible_host=127.0.0.2\nweb2 ansible_host=127.0.0.3\n"
BOOK = "steps:\n  - id: greet\n    type: command\n    command: echo hi\n    expect_stdout: hi\n"
TOKEN = "s3cr3t-TOKEN-4711"


@pytest.fixture
def receiver() -> Iterator[FakeHTTPServer]:
    """Accepts any POST (Apprise's JSON, form and ntfy requests; pings) with 200."""
    server = FakeHTTPServer()

    @server.route("POST", "/.*")
    def accept(request: Request) -> tuple[int, Any]:
        return 200, {"ok": True}

    server.start()
    yield server
    server.stop()


@pytest.fixture
def store() -> Iterator[Store]:
    opened = memory_store()
    yield opened
    opened.close()


def project(tmp_path: Path, config: str, book: str = BOOK) -> Path:
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    (tmp_path / "book.yml").write_text(book)
    (tmp_path / "maint.yml").write_text(config)
    return tmp_path


def request(directory: Path, **options: Any) -> RunRequest:
    values: dict[str, Any] = {"playbooks": ["book.yml"], "inventory": [str(directory / "hosts.ini")],
                              "project_dir": directory, "tickets": False, "reason": "CHG-7 patch day"}  # fmt: skip
    values.update(options)
    return RunRequest(**values)


def hosts(failing: set[str]) -> FakeExecutor:
    """web1 and web2 answer ``hi``; those in ``failing`` answer something else (the step fails)."""
    return FakeExecutor().on(r"^echo hi", answer=lambda host, command: Response(
        stdout="nope\n" if host in failing else "hi\n"))  # fmt: skip


def go(directory: Path, store: Store, failing: set[str] = frozenset(), **options: Any) -> RunDocument:  # type: ignore[assignment]
    return run(request(directory, **options), services=services(directory, store=store),
               executors={"ssh": hosts(set(failing))})  # fmt: skip


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_failed_run_is_sent_to_json_form_and_ntfy_with_the_template_rendered(
    tmp_path: Path, store: Store, receiver: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    # The JSON URL holds a token (a header Apprise sends) and comes from the environment.
    monkeypatch.setenv("MAINT_TEST_HOOK", f"json://127.0.0.1:{port}/hook?+X-Token={TOKEN}")
    config = (
        "notify:\n"
        f"  - urls: [env:MAINT_TEST_HOOK, 'form://127.0.0.1:{port}/form', 'ntfy://127.0.0.1:{port}/maint-ops']\n"
        "    title: 'maint {{ status }}: {{ playbooks | join(\", \") }}'\n"
        "    link: https://maint.example.org/runs/{id}\n"
        f"  - urls: 'json://127.0.0.1:{port}/success-only'\n"
        "    on: success\n"
    )  # fmt: skip
    directory = project(tmp_path, config)
    document = go(directory, store, failing={"web2"})
    run_id = document.run["id"]
    assert document.run["exit_code"] == ExitCode.FAILED and document.warnings == []
    hook, = receiver.requests_to("POST", "/hook")
    form, = receiver.requests_to("POST", "/form")
    ntfy, = receiver.requests_to("POST", "/")
    assert receiver.requests_to("POST", "/success-only") == []  # on: success, and the run failed
    sent = hook.json()
    assert sent["title"] == "maint failed: book"
    body = sent["message"]
    assert f"Run {run_id}: failed (exit 4)" in body
    assert "- web2 greet: failed - " in body and "web1" not in body.split("Problems:")[1]
    assert "Results:   1 failed, 1 ok" in body
    assert "because: CHG-7 patch day" in body
    assert f"Report: https://maint.example.org/runs/{run_id}" in body
    assert hook.headers.get("X-Token") == TOKEN  # the token reached the service, and nothing else
    assert all(TOKEN not in request.body.decode() for request in receiver.requests)
    assert parse_qs(form.body.decode())["message"] == [body]
    assert ntfy.json()["topic"] == "maint-ops" and ntfy.json()["message"] == body


def test_on_success_and_always_hear_of_a_successful_run_and_failure_does_not(
    tmp_path: Path, store: Store, receiver: FakeHTTPServer
) -> None:
    config = "notify:\n" + "".join(f"  - urls: '{receiver.url.replace('http', 'json')}/{on}'\n    on: {on}\n"
                                   for on in ("failure", "success", "always"))  # fmt: skip
    directory = project(tmp_path, config)
    document = go(directory, store)
    assert document.run["exit_code"] == 0
    assert sorted(request.path for request in receiver.requests) == ["/always", "/success"]
    assert receiver.requests[0].json()["title"] == f"maint: run {document.run['id']} ok (exit 0)"


def test_a_mail_through_the_smtp_server_with_a_project_template(tmp_path: Path, store: Store) -> None:
    with SMTPServer(tmp_path / "smtp") as smtp:
        config = (
            "notify:\n"
            f"  - urls: 'mailto://127.0.0.1:{smtp.port}?from=maint@example.org&to=ops@example.org&mode=insecure'\n"
            "    template: notify-mail.j2\n"
            "    title: 'maint run {{ id }} {{ status }}'\n"
        )  # fmt: skip
        directory = project(tmp_path, config)
        (directory / "templates").mkdir()
        (directory / "templates" / "notify-mail.j2").write_text(
            "{% for p in problems %}{{ p.host }}/{{ p.step }}: {{ p.status }}\n{% endfor %}by {{ operator }}\n"
        )
        document = go(directory, store, failing={"web1", "web2"})
        mail, = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ops@example.org"] and not mail.tls
    assert mail.message["Subject"] == f"maint run {document.run['id']} failed"
    text = mail.text()
    assert "web1/greet: failed" in text and "web2/greet: failed" in text
    assert f"by {document.run['operator']}" in text


def test_a_notifier_that_is_down_or_hangs_only_warns_within_its_timeout(
    tmp_path: Path, store: Store, receiver: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.fault = "hang"
    monkeypatch.setenv("MAINT_TEST_DOWN", f"json://{TOKEN}@127.0.0.1:{closed_port()}/hook")
    config = (
        "notify:\n"
        "  - urls: env:MAINT_TEST_DOWN\n"
        f"  - urls: '{receiver.url.replace('http', 'json')}/{TOKEN}'\n"
        "    timeout: 1s\n"
    )  # fmt: skip
    directory = project(tmp_path, config)
    warnings: list[str] = []

    class Observer:
        def run_started(self, run: Any, hosts: int, steps: int) -> None: ...
        def result(self, record: Any) -> None: ...
        def host_finished(self, host: str) -> None: ...
        def warning(self, message: str) -> None:
            warnings.append(message)

    began = time.monotonic()
    document = run(request(directory), Observer(), services=services(directory, store=store),
                   executors={"ssh": hosts({"web1"})})  # fmt: skip
    took = time.monotonic() - began
    assert receiver.wait_for(1)[0].path == f"/{TOKEN}"  # it was asked, and never answered
    assert document.run["exit_code"] == ExitCode.FAILED  # unchanged by the notifiers
    assert took < 1 + GRACE + 2
    assert warnings == document.warnings and len(warnings) == 2
    down, hung = warnings
    assert down.startswith("notify[0] url 1 (env:MAINT_TEST_DOWN) failed: ") and "onnection" in down
    assert hung.startswith("notify[1] url 1 (json://***) failed: ")
    assert all(TOKEN not in warning for warning in warnings)


def test_a_template_that_does_not_render_is_a_warning(tmp_path: Path, store: Store, receiver: FakeHTTPServer) -> None:
    config = f"notify:\n  - urls: '{receiver.url.replace('http', 'json')}/x'\n    title: '{{{{ nosuch }}}}'\n"
    directory = project(tmp_path, config)
    document = go(directory, store, failing={"web1"})
    assert document.warnings == ["notify[0] not sent: title: 'nosuch' is undefined"]
    assert receiver.requests == []


def test_an_interrupted_run_is_notified_with_what_was_recorded(
    tmp_path: Path, store: Store, receiver: FakeHTTPServer
) -> None:
    config = f"notify:\n  - urls: '{receiver.url.replace('http', 'json')}/hook'\n"
    directory = project(tmp_path, config)

    class Interrupting:
        def run_started(self, run: Any, hosts: int, steps: int) -> None: ...
        def host_finished(self, host: str) -> None: ...
        def result(self, record: Any) -> None:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        run(request(directory, forks=1), Interrupting(), services=services(directory, store=store),
            executors={"ssh": hosts(set())})  # fmt: skip
    sent = receiver.wait_for(1)[0].json()
    assert "interrupted (exit 130)" in sent["message"] and "interrupted after" in sent["message"]


def test_a_run_outside_its_window_is_told_only_to_always(
    tmp_path: Path, store: Store, receiver: FakeHTTPServer
) -> None:
    base = receiver.url.replace("http", "json")
    never = "windows:\n  never:\n    cron: '0 2 * * *'\n    duration: 1m\n    blackouts: ['2000-01-01..2099-12-31']\n"
    config = f"notify:\n  - urls: '{base}/failure'\n  - urls: '{base}/always'\n    on: always\n{never}"
    directory = project(tmp_path, config)
    with pytest.raises(NotStarted):
        go(directory, store, window="never")
    (sent,) = receiver.requests
    assert sent.path == "/always" and "not-started (exit 7)" in sent.json()["message"]


def test_pings_for_every_run_without_a_window(tmp_path: Path, store: Store, receiver: FakeHTTPServer) -> None:
    config = (f"pings:\n  start: {receiver.url}/ping/start\n  success: {receiver.url}/ping/success\n"
              f"  fail: http://127.0.0.1:{closed_port()}/ping/fail\n")  # fmt: skip
    directory = project(tmp_path, config)
    document = go(directory, store, failing={"web1"})
    start, success = receiver.wait_for(2)
    assert (start.path, start.json()) == ("/ping/start", {"event": "start", "run_id": document.run["id"],
                                                          "status": "running"})  # fmt: skip
    assert success.path == "/ping/success" and success.json()["exit_code"] == 4  # the maintenance ran
    assert document.warnings == []
    # A run that cannot start pings fail; the monitor being down only warns, the run's error goes on.
    warnings: list[str] = []

    class Observer:
        def warning(self, message: str) -> None:
            warnings.append(message)

    with pytest.raises(Exception, match="no hosts matched"):
        run(request(directory, limit="nosuchhost"), Observer(),  # type: ignore[arg-type]
            services=services(directory, store=store), executors={"ssh": hosts(set())})  # fmt: skip
    assert len(receiver.requests) == 2
    assert len(warnings) == 1 and warnings[0].startswith("ping 'fail' of the run failed: cannot connect")


def test_config_validation_names_the_notifier_and_never_shows_a_url(tmp_path: Path) -> None:
    from maint import config

    (tmp_path / "maint.yml").write_text(
        f"notify:\n  - on: failure\n  - urls: ['json://x/y', 'hooks.example.org/{TOKEN}']\n    on: sometimes\n"
        f"pings:\n  start: ftp://example.org/{TOKEN}\n"
    )
    with pytest.raises(config.ConfigError) as invalid:
        config.load(tmp_path)
    path = tmp_path / "maint.yml"
    assert invalid.value.errors == [
        f"{path}:3: At 'notify[1].urls': URL 2: expected an Apprise URL (scheme://...) or an env:NAME / file:PATH "
        "reference",
        f"{path}:4: At 'notify[1].on': expected one of failure, success, always, got 'sometimes'",
        f"{path}:6: At 'pings.start': expected an http(s) URL or an env:/file: reference, got "
        f"'ftp://example.org/{TOKEN}'",
        f"{path}:2: At 'notify[0].urls': required (the Apprise URLs to send to)",
    ]  # fmt: skip


def test_config_show_and_validate_mask_the_urls(tmp_path: Path, maint_cli: Any) -> None:
    (tmp_path / "maint.yml").write_text(
        f"notify:\n  - urls: ['slack://{TOKEN}/B0/C0', env:MAINT_TEAMS_URL]\n    on: always\n"
        f"pings:\n  success: https://hc.example.org/{TOKEN}\n"
    )
    shown = maint_cli("config", "show", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["notify"] == [{"urls": ["slack://***", "env:MAINT_TEAMS_URL"], "on": "always"}]
    assert data["pings"]["success"] == "https://***"
    text = maint_cli("config", "show", cwd=tmp_path)
    assert "notify = " in text.stdout and TOKEN not in text.stdout + shown.stdout
    valid = maint_cli("config", "validate", cwd=tmp_path)
    assert valid.returncode == 0 and "1 notifiers" in valid.stdout and TOKEN not in valid.stdout


def test_maint_run_notifies_and_pings_end_to_end(tmp_path: Path, receiver: FakeHTTPServer, run_maint: Any) -> None:
    base = receiver.url.replace("http", "json")
    (tmp_path / "hosts.ini").write_text("here ansible_connection=local\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "broken.yml").write_text(
        "name: broken\nsteps:\n  - id: always-fails\n    type: command\n    command: 'false'\n"
    )
    (tmp_path / "maint.yml").write_text(
        f"notify:\n  - urls: '{base}/notify'\n  - urls: 'json://127.0.0.1:{closed_port()}/{TOKEN}'\n"
        f"pings:\n  start: {receiver.url}/ping/start\n  fail: {receiver.url}/ping/fail\n"
        f"  success: {receiver.url}/ping/success\n"
    )
    done = run_maint("run", "broken", "-i", "hosts.ini", "--no-tickets", "--format", "json", cwd=tmp_path,
                     env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])})  # fmt: skip
    assert done.returncode == ExitCode.FAILED, done.stderr
    document = json.loads(done.stdout)
    paths = [request.path for request in receiver.wait_for(3)]
    assert paths == ["/ping/start", "/ping/success", "/notify"]
    assert f"Run {document['id']}: failed (exit 4)" in receiver.requests[2].json()["message"]
    warning_lines = [line for line in done.stderr.splitlines() if "notify[1]" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("maint: warning: notify[1] url 1 (json://***)")
    assert document["warnings"] == [warning_lines[0].removeprefix("maint: warning: ")]
    assert TOKEN not in done.stderr + done.stdout
