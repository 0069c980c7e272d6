"""The run's behaviours in-process: scripted hosts (FakeExecutor), a store in memory, a frozen clock.

Each behaviour here also has one end-to-end test against the real sshd lab (tests/integration and
tests/e2e); these cover its cases without sshd, in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maint.become import Keywords
from maint.errors import BadInput, ExitCode
from maint.executors import BecomeFailed, HostHung
from maint.locks import HostsBusy, acquire
from maint.notify.pings import WindowPings
from maint.playbooks import adhoc
from maint.processes import process_alive
from maint.run import NotStarted, RunInterrupted, RunRequest, Services, continuation, run
from maint.store import Store
from maint.store.history import RunFilter
from maint.testing import FakeExecutor, FrozenClock, Response, memory_store, services

INVENTORY = "[web]\nweb1 ansible_host=127.0.0.2\nweb2 ansible_host=127.0.0.3\nweb3 ansible_host=127.0.0.4\n"
DF = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 {used} {free} {percent}% /\n"
SATURDAY = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
WINDOW = 'windows:\n  nightly:\n    cron: "0 2 * * 6"\n    duration: 2h\n    grace: 1m\n'


def disk(used: int) -> Response:
    return Response(stdout=DF.format(used=used, free=1000 - used, percent=used // 10))


def project(tmp_path: Path, book: str, config: str = "") -> Path:
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    (tmp_path / "book.yml").write_text(book)
    if config:
        (tmp_path / "maint.yml").write_text(config)
    return tmp_path


def request(directory: Path, **options: Any) -> RunRequest:
    values: dict[str, Any] = {"playbooks": ["book.yml"], "inventory": [str(directory / "hosts.ini")],
                              "project_dir": directory, "tickets": False}  # fmt: skip
    values.update(options)
    return RunRequest(**values)


@pytest.fixture
def store() -> Iterator[Store]:
    opened = memory_store()
    yield opened
    opened.close()


class Quiet:
    """An observer that shows nothing."""

    def run_started(self, run: Any, hosts: int, steps: int) -> None:
        pass

    def result(self, record: Any) -> None:
        pass

    def host_finished(self, host: str) -> None:
        pass


class Interrupting(Quiet):
    """Ctrl-C after the first result reached the display."""

    def result(self, record: Any) -> None:
        raise KeyboardInterrupt


NAPS = "steps:\n" + "".join(f"  - id: nap{n}\n    type: command\n    command: sleep 1\n" for n in range(1, 6))


def test_a_run_records_in_the_given_store_and_leaves_it_open(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, "steps:\n  - id: root\n    type: disk.usage\n    warn: 80\n    critical: 90\n")
    fake = FakeExecutor().on(r"^df ", answer=lambda host, command: disk(950 if host == "web2" else 100))
    document = run(request(directory), services=services(directory, store=store), executors={"ssh": fake})
    assert store.get_run(document.run["id"]).results == document.results
    assert {(r["host"], r["status"]) for r in document.results} == {("web1", "ok"), ("web2", "failed"), ("web3", "ok")}
    assert not (directory / ".maint" / "maint.db").exists()  # nothing went to the default store


def test_a_remediation_runs_then_the_check_again_and_the_second_attempt_counts(tmp_path: Path, store: Store) -> None:
    book = ("steps:\n  - id: root\n    type: disk.usage\n    warn: 80\n    critical: 90\n"
            "    remediate: {type: command, command: apt-get clean}\n")  # fmt: skip
    directory = project(tmp_path, book)
    cleaned: set[str] = set()
    fake = FakeExecutor().on(r"^df ", answer=lambda host, command: disk(100 if host in cleaned else 950))
    fake.on(r"^apt-get clean", answer=lambda host, command: (cleaned.add(host), Response())[1])
    document = run(request(directory, limit="web1"), services=services(directory, store=store),
                   executors={"ssh": fake})  # fmt: skip
    steps = [(r["step"], r["status"], r["attempt"]) for r in document.results]
    assert steps == [("root", "failed", 1), ("root.remediate", "ok", 1), ("root", "ok", 2)]
    assert document.run["counts"] == {"ok": 2} and document.run["exit_code"] == 0


def test_check_mode_never_remediates(tmp_path: Path, store: Store) -> None:
    book = ("steps:\n  - id: root\n    type: disk.usage\n    warn: 80\n    critical: 90\n"
            "    remediate: {type: command, command: apt-get clean}\n")  # fmt: skip
    directory = project(tmp_path, book)
    fake = FakeExecutor().on(r"^df ", stdout=disk(950).stdout)
    document = run(request(directory, limit="web1", check_mode=True), services=services(directory, store=store),
                   executors={"ssh": fake})  # fmt: skip
    assert [(r["step"], r["status"]) for r in document.results] == [("root", "failed")]
    assert not any("apt-get" in command for command in fake.commands["web1"])


def test_the_window_closing_mid_run_skips_the_steps_after_it(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, NAPS, WINDOW)
    clock = FrozenClock(now=SATURDAY.replace(hour=4) - dt.timedelta(seconds=2.5))
    lock = threading.Lock()

    def nap(host: str, command: str) -> Response:
        with lock:  # each step takes a second of the window, whichever host runs it
            clock.advance(1)
        return Response()

    fake = FakeExecutor().on(r"^sleep 1$", answer=nap)
    document = run(request(directory, limit="web1", window="nightly"), services=services(directory, store=store),
                   executors={"ssh": fake}, clock=clock)  # fmt: skip
    statuses = [r["status"] for r in document.results]
    assert statuses == ["ok", "ok", "ok", "skipped", "skipped"]
    assert document.results[3]["summary"] == "window 'nightly' closed at 2026-11-28 04:00 UTC"
    assert [r["skip_kind"] for r in document.results] == [None, None, None, "window-closed", "window-closed"]
    assert len(fake.commands["web1"]) == 3
    assert document.run["exit_code"] == 0


def test_outside_its_window_a_run_is_recorded_not_started_and_nothing_runs(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, NAPS, WINDOW)
    fake = FakeExecutor()
    with pytest.raises(NotStarted) as refused:
        run(request(directory, window="nightly"), services=services(directory, store=store),
            executors={"ssh": fake}, clock=FrozenClock(now=SATURDAY.replace(hour=5)))  # fmt: skip
    assert refused.value.exit_code == ExitCode.NOT_STARTED
    assert all(commands == [] for commands in fake.commands.values())
    recorded = store.get_run(str(refused.value).split()[1])
    assert (recorded.run["status"], recorded.run["exit_code"]) == ("not-started", 7)
    assert recorded.results == []
    assert refused.value.run == recorded.as_dict()  # what --format json prints, with the error


def test_a_host_that_stops_answering_is_an_error_and_its_later_steps_unreachable(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, NAPS)

    def hang(host: str, command: str) -> Response:
        if host == "web2" and len(fake.commands["web2"]) == 2:
            raise HostHung("no answer for 30s (keepalive)")
        return Response()

    fake = FakeExecutor().on(r"^sleep", answer=hang)
    document = run(request(directory), services=services(directory, store=store), executors={"ssh": fake})
    web2 = [(r["status"], r["summary"]) for r in document.results if r["host"] == "web2"]
    assert web2[0][0] == "ok" and web2[1] == ("error", "no answer for 30s (keepalive)")
    assert web2[2:] == [("unreachable", "host stopped responding during step 'nap2'")] * 3
    assert [r["status"] for r in document.results if r["host"] == "web1"] == ["ok"] * 5
    assert document.run["exit_code"] == ExitCode.FAILED


def test_an_interrupt_records_what_finished_and_marks_the_rest_interrupted(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, NAPS)

    # web1's second step is still running at the interrupt: it is ended, and resume runs it again.
    fake = FakeExecutor().on(r"^sleep", answer=lambda host, command: Response(hangs=len(fake.commands[host]) == 2))
    with pytest.raises(RunInterrupted) as stopped:
        run(request(directory, forks=1), Interrupting(), services=services(directory, store=store),
            executors={"ssh": fake})  # fmt: skip
    assert stopped.value.exit_code == ExitCode.INTERRUPTED
    run_id = str(stopped.value).split()[1]
    document = store.get_run(run_id)
    assert document.run["status"] == "interrupted"
    assert stopped.value.run == document.as_dict()
    assert len(document.results) == 15  # every planned step has a result: what ran, and the rest skipped
    statuses = {(r["host"], r["step"]): (r["status"], r["summary"]) for r in document.results}
    assert statuses.pop(("web1", "nap1")) == ("ok", "exit 0")
    assert statuses.pop(("web1", "nap2")) == (
        "skipped", "interrupted: the run was stopped before this step finished; "
        "ended the step's processes on the host with SIGTERM (scripted)",
    )  # fmt: skip
    assert set(statuses.values()) == {("skipped", "interrupted: the run was stopped before this step finished")}
    assert {r["skip_kind"] for r in document.results if r["status"] == "skipped"} == {"interrupted"}
    assert fake.commands == {"web1": ["sleep 1", "sleep 1"]}  # nothing started after the interrupt


def test_hosts_another_run_holds_refuse_the_run_before_anything_is_recorded(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, NAPS)
    given = services(directory, store=store)
    assert given.locks is not None
    acquire(given.locks, "20261128-020000-aaaaaa", ["web2"], process_alive, "2026-11-28T02:00:00Z")
    fake = FakeExecutor()
    with pytest.raises(HostsBusy) as busy:
        run(request(directory), services=given, executors={"ssh": fake})
    assert busy.value.exit_code == ExitCode.NOT_STARTED and "20261128-020000-aaaaaa" in str(busy.value)
    assert fake.commands == {}
    # The run it would have been, for --format json; never recorded.
    assert busy.value.run is not None and busy.value.run["id"] == busy.value.run_id
    assert (busy.value.run["status"], busy.value.run["exit_code"], busy.value.run["results"]) == ("not-started", 7, [])
    assert busy.value.run["hosts"] == ["web1", "web2", "web3"]
    assert store.find_runs(RunFilter(limit=10)) == []


def test_a_connection_no_executor_serves_is_that_hosts_error(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, "steps:\n  - id: hello\n    type: command\n    command: echo hi\n")
    (directory / "hosts.ini").write_text("[web]\nweb1 ansible_connection=winrm\nweb2\n")
    fake = FakeExecutor().on(r"^echo hi", stdout="hi\n")
    document = run(request(directory), services=services(directory, store=store), executors={"ssh": fake})
    results = {r["host"]: (r["status"], r["summary"]) for r in document.results}
    assert results["web2"] == ("ok", "hi")
    assert results["web1"][0] == "error" and "ansible_connection=winrm: maint has no executor" in results["web1"][1]


class Monitor:
    """Records the pings a window sends instead of posting them; ``fail`` answers 503."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, body: dict[str, Any], timeout: float) -> int:
        self.sent.append((url, body))
        return 503 if url.endswith("/down") else 200


def test_a_run_kept_to_a_window_pings_start_then_success(tmp_path: Path, store: Store) -> None:
    config = WINDOW + "    ping: {start: 'http://127.0.0.1:9/start', success: 'http://127.0.0.1:9/down'}\n"
    directory = project(tmp_path, "steps:\n  - id: hello\n    type: command\n    command: echo hi\n", config)
    monitor = Monitor()
    warnings: list[str] = []

    class Observer(Quiet):
        def warning(self, message: str) -> None:
            warnings.append(message)

    given = services(directory, store=store, pings=lambda window: WindowPings(window, post=monitor.post))
    fake = FakeExecutor().on(r"^echo hi", stdout="hi\n")
    document = run(request(directory, window="nightly"), Observer(), services=given, executors={"ssh": fake},
                   clock=FrozenClock(now=SATURDAY.replace(hour=3)))  # fmt: skip
    assert [(url, body["event"], body.get("exit_code")) for url, body in monitor.sent] == [
        ("http://127.0.0.1:9/start", "start", None), ("http://127.0.0.1:9/down", "success", 0),
    ]  # fmt: skip
    assert monitor.sent[0][1]["run_id"] == document.run["id"]
    assert warnings == ["ping 'success' of window 'nightly' failed: HTTP 503"]


def test_a_run_that_fails_to_start_pings_fail_and_raises_its_own_error(tmp_path: Path, store: Store) -> None:
    config = WINDOW + "    ping: {start: 'http://127.0.0.1:9/start', fail: 'http://127.0.0.1:9/fail'}\n"
    directory = project(tmp_path, "steps:\n  - id: hello\n    type: command\n    command: echo hi\n", config)
    monitor = Monitor()
    given = services(directory, store=store, pings=lambda window: WindowPings(window, post=monitor.post))
    with pytest.raises(Exception) as failed:
        run(request(directory, window="nightly", limit="nosuchhost"), services=given, executors={"ssh": FakeExecutor()},
            clock=FrozenClock(now=SATURDAY.replace(hour=3)))  # fmt: skip
    assert "no hosts matched" in str(failed.value)
    ((url, body),) = monitor.sent
    assert (url, body["event"], body["exit_code"]) == ("http://127.0.0.1:9/fail", "fail", 3)
    assert "no hosts matched" in body["error"]


def test_services_default_to_the_projects_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = project(tmp_path, "steps:\n  - id: hello\n    type: command\n    command: echo hi\n")
    (directory / "maint.yml").write_text("tickets: {enabled: false}\n")  # a project: its store is beside it
    monkeypatch.chdir(directory)
    monkeypatch.delenv("MAINT_DB", raising=False)
    fake = FakeExecutor().on(r"^echo hi", stdout="hi\n")
    document = run(request(directory, limit="web1"), services=Services.default(request(directory)),
                   executors={"ssh": fake})  # fmt: skip
    assert (directory / ".maint" / "maint.db").exists()
    reopened = Store(f"sqlite:///{directory / '.maint' / 'maint.db'}")
    try:
        assert reopened.get_run(document.run["id"]).results == document.results
    finally:
        reopened.close()


def test_each_skip_says_why_in_its_own_column(tmp_path: Path, store: Store) -> None:
    book = ("steps:\n"
            "  - id: only-db\n    type: command\n    command: echo db\n    when: \"'db' in group_names\"\n"
            "  - id: clean\n    type: log.cleanup\n    path: /var/log/app\n    older_than: 7d\n"
            "  - id: hello\n    type: command\n    command: echo hi\n")  # fmt: skip
    directory = project(tmp_path, book)
    fake = FakeExecutor().on(r"^echo hi", stdout="hi\n")
    document = run(request(directory, limit="web1", check_mode=True), services=services(directory, store=store),
                   executors={"ssh": fake})  # fmt: skip
    kinds = {r["step"]: (r["status"], r["skip_kind"]) for r in document.results}
    assert kinds["only-db"] == ("skipped", "condition")
    assert kinds["clean"] == ("skipped", "check-mode")
    assert kinds["hello"] == ("ok", None)
    assert all(r["task"] is None for r in document.results)


def test_resume_runs_exactly_what_an_interrupted_run_left(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, NAPS)

    first = FakeExecutor().on(r"^sleep", answer=lambda host, command: Response(hangs=len(first.commands[host]) == 2))
    with pytest.raises(RunInterrupted) as stopped:
        run(request(directory, forks=1, become=Keywords(True, "backup"), become_password="typed-at-K"), Interrupting(),
            services=services(directory, store=store), executors={"ssh": first})  # fmt: skip
    recorded = store.get_run(str(stopped.value).split()[1]).as_dict()
    # -b and --become-user are recorded and replayed; the -K password is not recorded: it is asked again.
    assert recorded["options"]["become"] == {"become": True, "become_user": "backup"}
    assert "typed-at-K" not in json.dumps(recorded)
    again = continuation.resumption(recorded, {}, argv=["maint", "resume", "last"], project_dir=directory,
                                    become_password="asked-again")  # fmt: skip
    second = FakeExecutor().on(r"^sleep", stdout="")
    document = run(again, services=services(directory, store=store), executors={"ssh": second})
    assert document.run["id"] == recorded["id"] and document.run["status"] == "ok"
    # nap1 of web1 finished before the interrupt; everything else (nap2 of web1 was ended) runs now.
    assert {host: len(sent) for host, sent in second.commands.items()} == {"web1": 4, "web2": 5, "web3": 5}
    last = {(r["host"], r["step"]): r for r in document.results}
    assert {r["status"] for r in last.values()} == {"ok"} and len(last) == 15
    assert max(r["attempt"] for r in document.results) == 2  # the resumed attempts follow the first run's
    assert {(b.user, b.password) for asked in second.escalations.values() for b in asked if b} == {
        ("backup", "asked-again")
    }


MIXED = ("name: mixed\nsteps:\n"
         "  - id: must-fail\n    type: command\n    command: echo broken >&2; exit 3\n"
         "  - id: full-disk\n    type: disk.usage\n    path: /\n    warn: 0\n    critical: 0\n"
         "  - id: still-runs\n    type: command\n    command: echo after\n")  # fmt: skip


def test_a_failing_step_fails_the_run_and_the_rest_still_runs(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, MIXED)
    fake = FakeExecutor().on(r"^echo broken >&2; exit 3$", stderr="broken\n", exit_code=3)
    fake.on(r"^df ", stdout=disk(100).stdout).on(r"^echo after$", stdout="after\n")
    document = run(request(directory, limit="web1,web2"), services=services(directory, store=store),
                   executors={"ssh": fake})  # fmt: skip
    pairs = {(r["host"], r["step"]): r for r in document.results}
    assert set(pairs) == {(h, s) for h in ("web1", "web2") for s in ("must-fail", "full-disk", "still-runs")}
    failed = pairs[("web1", "must-fail")]
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    assert failed["summary"] == "exit 3, expected 0: broken"
    assert "broken" in failed["output"]
    assert pairs[("web2", "full-disk")]["status"] == "failed"
    assert (pairs[("web2", "still-runs")]["status"], pairs[("web2", "still-runs")]["summary"]) == ("ok", "after")
    assert (document.run["status"], document.run["exit_code"]) == ("failed", ExitCode.FAILED)


def test_a_step_that_times_out_is_an_error_and_the_host_goes_on(tmp_path: Path, store: Store) -> None:
    book = ("steps:\n  - id: slow\n    type: command\n    command: sleep 20\n    timeout: 1\n"
            "  - id: next\n    type: command\n    command: echo alive\n")  # fmt: skip
    directory = project(tmp_path, book)
    fake = FakeExecutor().on(r"^sleep 20$", timed_out=True).on(r"^echo alive$", stdout="alive\n")
    document = run(request(directory, limit="web1"), services=services(directory, store=store),
                   executors={"ssh": fake})  # fmt: skip
    assert [(r["step"], r["status"], r["summary"]) for r in document.results] == [
        ("slow", "error", "timed out after 1s"), ("next", "ok", "alive"),
    ]  # fmt: skip
    assert document.run["exit_code"] == ExitCode.FAILED


def test_limit_patterns_choose_the_hosts_and_extra_vars_reach_the_shell_quoted(tmp_path: Path, store: Store) -> None:
    # Hosts with ansible_connection=local: each command runs in a real local shell, so a `; id` in a value
    # would run if it were not quoted.
    book = ("hosts: lab\nsteps:\n  - id: greet\n    type: command\n"
            "    command: echo {{ greeting }} from {{ inventory_hostname }}\n")  # fmt: skip
    directory = project(tmp_path, book)
    hosts = "".join(f"lab{n} ansible_connection=local\n" for n in range(1, 7))
    (directory / "hosts.ini").write_text(
        f"[lab]\n{hosts}\n[web]\nlab1\nlab2\nlab3\n[odd]\nlab1\nlab3\nlab5\n[canary]\nlab1\n"
    )
    document = run(request(directory, limit="web:&odd:!canary", extra_vars={"greeting": "hello; id"}),
                   services=services(directory, store=store))  # fmt: skip
    # web = lab1..lab3, odd = lab1, lab3, lab5; minus canary (lab1)
    assert [r["host"] for r in document.results] == ["lab3"]
    # The value is shell-quoted: the `; id` is printed, not run.
    assert (document.results[0]["status"], document.results[0]["summary"]) == ("ok", "hello; id from lab3")


HELLO = "steps:\n  - id: hello\n    type: command\n    command: echo hi\n"


def test_a_closed_window_says_when_it_opens_and_ignore_window_runs_anyway(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, HELLO, WINDOW)
    fake = FakeExecutor().on(r"^echo hi$", stdout="hi\n")
    given = services(directory, store=store)
    with pytest.raises(NotStarted) as refused:
        run(request(directory, window="nightly"), services=given, executors={"ssh": fake},
            clock=FrozenClock(now=SATURDAY.replace(hour=5)))  # fmt: skip
    assert "window 'nightly' is closed: opens Sat 2026-12-05 02:00 UTC" in str(refused.value)
    assert all(commands == [] for commands in fake.commands.values())
    forced = run(request(directory, window="nightly", ignore_window=True), services=given, executors={"ssh": fake},
                 clock=FrozenClock(now=SATURDAY.replace(hour=5)))  # fmt: skip
    assert forced.run["status"] == "ok"
    assert forced.run["options"]["ignore_window"] is True
    assert {r["host"] for r in forced.results} == {"web1", "web2", "web3"}


def test_a_window_covers_only_its_hosts(tmp_path: Path, store: Store) -> None:
    directory = project(tmp_path, HELLO, WINDOW + "    hosts: web2\n")
    fake = FakeExecutor().on(r"^echo hi$", stdout="hi\n")
    given = services(directory, store=store)
    document = run(request(directory, window="nightly"), services=given, executors={"ssh": fake},
                   clock=FrozenClock(now=SATURDAY.replace(hour=3)))  # fmt: skip
    assert {r["host"] for r in document.results} == {"web2"}
    ignored = run(request(directory, window="nightly", ignore_window=True), services=given, executors={"ssh": fake},
                  clock=FrozenClock(now=SATURDAY.replace(hour=3)))  # fmt: skip
    assert {r["host"] for r in ignored.results} == {"web1", "web2", "web3"}


def test_become_follows_ansible_precedence_variables_over_step_over_playbook_over_command_line(
    tmp_path: Path, store: Store
) -> None:
    directory = project(
        tmp_path,
        "become: true\nbecome_user: backup\nsteps:\n"
        "  - id: as-playbook\n    type: command\n    command: id -un\n"
        "  - id: as-login\n    type: command\n    command: whoami\n    become: false\n"
        "  - id: as-step\n    type: command\n    command: id -u\n    become_user: postgres\n",
    )
    (directory / "hosts.ini").write_text(
        "[web]\nweb1 ansible_user=deploy\nweb2 ansible_become_user=www-data ansible_become_method=su\n"
        "web3 ansible_become=false\n"
    )
    fake = FakeExecutor().on(".", stdout="x\n")
    cli = Keywords(become=None, user="nobody", method="doas")
    document = run(request(directory, become=cli), services=services(directory, store=store), executors={"ssh": fake})
    assert {r["status"] for r in document.results} == {"ok"}
    seen = {host: [(b.method, b.user) if b else None for b in asked] for host, asked in fake.escalations.items()}
    # The playbook's keywords beat the command line's user and the default method comes from it (doas).
    assert seen["web1"] == [("doas", "backup"), None, ("doas", "postgres")]
    # Host variables beat the keywords (user, method); web2 sets no ansible_become, so the step's false holds.
    assert seen["web2"] == [("su", "www-data"), None, ("su", "www-data")]
    assert seen["web3"] == [None, None, None]  # ansible_become=false beats the playbook's become: true


def test_become_password_reference_is_resolved_masked_and_failures_are_that_steps_error(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_SUDO", "s3cret-sudo-pw")
    directory = project(tmp_path, "steps:\n  - id: who\n    type: command\n    command: id -un\n"
                                  "  - id: again\n    type: command\n    command: uptime\n")  # fmt: skip
    (directory / "hosts.ini").write_text(
        "[web]\nweb1 ansible_become=yes ansible_become_password=env:LAB_SUDO\n"
        "web2 ansible_become=yes ansible_become_method=pbrun\n"
        "web3 ansible_become=yes ansible_become_pass=\"{{ lookup('env', 'LAB_SUDO') }}\"\n"
        "web4 ansible_become=yes ansible_become_pass=\"{{ lookup('pipe', 'id') }}\"\n"
    )

    def answer(host: str, command: str) -> Response:
        if command == "uptime" and host == "web3":
            raise BecomeFailed("sudo to root: the become password was not accepted (s3cret-sudo-pw)")
        return Response(stdout="root\nleaked s3cret-sudo-pw\n")

    fake = FakeExecutor().on(".", answer=answer)
    document = run(request(directory), services=services(directory, store=store), executors={"ssh": fake})
    results = {(r["host"], r["step"]): (r["status"], r["summary"], r["output"]) for r in document.results}
    assert fake.escalations["web1"][0].password == "s3cret-sudo-pw"
    assert fake.escalations["web3"][0].password == "s3cret-sudo-pw"
    assert results["web1", "who"][0] == "ok" and "s3cret" not in results["web1", "who"][2]
    assert "***" in results["web1", "who"][2]
    status, summary, _ = results["web2", "who"]
    assert status == "error" and "ansible_become_method=pbrun" in summary and not fake.commands.get("web2")
    status, summary, _ = results["web3", "again"]
    assert status == "error" and summary.startswith("sudo to root: the become password was not accepted")
    assert "s3cret" not in summary
    status, summary, _ = results["web4", "who"]
    assert status == "error" and "template maint does not evaluate" in summary and not fake.commands.get("web4")
    assert document.run["exit_code"] == ExitCode.FAILED


# maint run --tags/--skip-tags/--list-hosts/--list-steps and maint exec (the lab's path: tests/e2e/test_exec.py)

TAGGED = (
    "steps:\n"
    "  - id: patch\n    type: command\n    command: echo patch\n    tags: [updates]\n"
    "  - id: debug\n    type: command\n    command: echo debug\n    tags: [never, debug]\n"
    "  - id: plain\n    type: command\n    command: echo plain\n"
    "  - id: stamp\n    type: command\n    command: echo stamp\n    tags: [always]\n"
)  # fmt: skip


def in_project(tmp_path: Path, book: str = "", inventory: str = "") -> Path:
    """``project`` with the ``TAGGED`` book, or ``book``, and ``inventory`` instead of INVENTORY."""
    directory = project(tmp_path, book or TAGGED)
    if inventory:
        (directory / "hosts.ini").write_text(inventory)
    return directory


def echo(fake: FakeExecutor | None = None) -> FakeExecutor:
    """Hosts that echo (after ``fake``'s own rules, when given)."""
    fake = fake or FakeExecutor()
    return fake.on(r"^echo (\w+)", answer=lambda host, command: Response(stdout=command[5:] + "\n"))


@pytest.mark.parametrize(
    ("tags", "skip_tags", "steps"),
    [
        ((), (), ["patch", "plain", "stamp"]),
        (("updates",), (), ["patch", "stamp"]),
        (("debug",), (), ["debug", "stamp"]),
        (("updates",), ("always",), ["patch"]),
        ((), ("updates",), ["plain", "stamp"]),
        (("untagged",), (), ["plain", "stamp"]),
    ],
)
def test_tags_choose_the_steps_that_run_and_only_those_are_recorded(
    tmp_path: Path, store: Store, tags: tuple[str, ...], skip_tags: tuple[str, ...], steps: list[str]
) -> None:
    directory = in_project(tmp_path)
    fake = echo()
    document = run(request(directory, limit="web1", tags=tags, skip_tags=skip_tags),
                   services=services(directory, store=store), executors={"ssh": fake})  # fmt: skip
    assert [result["step"] for result in document.results] == steps
    assert fake.commands["web1"] == [f"echo {step}" for step in steps]
    options = document.run["options"]
    assert (options.get("tags", []), options.get("skip_tags", [])) == (list(tags), list(skip_tags))


def test_a_rerun_keeps_the_tags_of_the_run(tmp_path: Path, store: Store) -> None:
    directory = in_project(tmp_path)
    first = echo(FakeExecutor().on(r"^echo patch", hosts="web2", exit_code=1))
    document = run(request(directory, tags=("updates",)), services=services(directory, store=store),
                   executors={"ssh": first})  # fmt: skip
    assert document.run["exit_code"] == 4
    again = continuation.rerun(document.as_dict(), {}, argv=["maint", "rerun", "last", "--failed"],
                               project_dir=directory)  # fmt: skip
    assert again.tags == ("updates",)
    second = echo()
    rerun = run(again, services=services(directory, store=store), executors={"ssh": second})
    assert second.commands == {"web2": ["echo patch"]}
    assert rerun.run["options"]["tags"] == ["updates"] and rerun.run["exit_code"] == 0


def test_tags_that_choose_no_step_are_bad_input(tmp_path: Path, store: Store) -> None:
    directory = in_project(tmp_path)
    fake = echo()
    with pytest.raises(BadInput, match=r"no step of book is chosen by --tags nosuch --skip-tags always"):
        run(request(directory, tags=("nosuch",), skip_tags=("always",)), services=services(directory, store=store),
            executors={"ssh": fake})  # fmt: skip
    assert fake.commands == {}


def test_list_hosts_and_steps_connect_to_nothing_and_record_nothing(tmp_path: Path, maint_cli: Any) -> None:
    # Hosts on the controller itself: a step that ran would leave its file.
    book = ("name: touchy\nhosts: web\nbecome: true\nsteps:\n"
            "  - id: mark\n    type: command\n    command: touch {{ inventory_hostname }}.ran\n    tags: [x]\n"
            "  - id: only-db\n    type: command\n    command: 'true'\n    when: \"'db' in group_names\"\n"
            "    become: false\n")  # fmt: skip
    directory = in_project(tmp_path, book, "[web]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n"
                        "[db]\ndb1 ansible_connection=local\n")  # fmt: skip
    shown = maint_cli("run", "book.yml", "-i", "hosts.ini", "-l", "!web2", "--list-hosts", "--list-steps",
                      cwd=directory)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "playbook: touchy (hosts: web)",
        "  hosts (1):",
        "    web1",
        "  steps (2):",
        "    STEP     TYPE     TAGS  WHEN                 BECOME",
        "    mark     command  x     -                    root (sudo)",
        "    only-db  command  -     'db' in group_names  no",
    ]
    listed = maint_cli("run", "book.yml", "-i", "hosts.ini", "--list-hosts", "--tags", "y", "--format", "json",
                       cwd=directory)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"schema_version": 1, "playbook": "touchy",
                                          "path": str(directory / "book.yml"), "pattern": "web",
                                          "hosts": ["web1", "web2"]}]  # fmt: skip
    assert not list(directory.glob("*.ran"))
    assert not (directory / ".maint").exists()  # no store, no locks, not even the inventory cache


def test_exec_is_recorded_as_a_run_of_the_exec_playbook_and_reruns_from_its_record(
    tmp_path: Path, store: Store
) -> None:
    directory = in_project(tmp_path)
    playbook = adhoc("web:!web3", "cat /etc/hostname || echo {{ fallback }}")
    fake = FakeExecutor().on(r"cat /etc/hostname", answer=lambda host, command: Response(
        stdout=f"{host}\n", exit_code=1 if host == "web2" else 0))  # fmt: skip
    document = run(request(directory, playbooks=[playbook], extra_vars={"fallback": "$(reboot)"}),
                   services=services(directory, store=store), executors={"ssh": fake})  # fmt: skip
    recorded = document.as_dict()
    assert recorded["playbooks"] == [{
        "name": "exec", "path": "<maint exec>", "digest": playbook.digest, "builtin": False,
        "exec": {"hosts": "web:!web3", "command": "cat /etc/hostname || echo {{ fallback }}", "template": True},
    }]  # fmt: skip
    assert sorted(fake.commands) == ["web1", "web2"]
    # The -e value reached the shell as data, in a variable: never as a command substitution.
    assert fake.commands["web1"] == ["__maint_v0='$(reboot)'\ncat /etc/hostname || echo \"${__maint_v0}\""]
    results = {r["host"]: (r["status"], r["exit_code"], r["output"]) for r in recorded["results"]}
    assert results == {"web1": ("ok", 0, "web1"), "web2": ("failed", 1, "web2")}
    assert recorded["exit_code"] == 4
    again = continuation.rerun(recorded, {}, argv=["maint", "rerun", "last", "--failed"], project_dir=directory)
    second = FakeExecutor().on(r"cat /etc/hostname", stdout="back\n")
    rerun = run(again, services=services(directory, store=store), executors={"ssh": second})
    assert sorted(second.commands) == ["web2"] and rerun.run["exit_code"] == 0
    assert rerun.run["playbooks"][0]["digest"] == playbook.digest


def test_an_exec_command_with_a_secret_is_recorded_masked_and_not_rerun(tmp_path: Path, store: Store) -> None:
    directory = in_project(tmp_path)
    fake = FakeExecutor().on(r"psql", exit_code=2)
    document = run(request(directory, playbooks=[adhoc("web1", "PGPASSWORD=hunter22 psql -c 'select 1'")]),
                   services=services(directory, store=store), executors={"ssh": fake})  # fmt: skip
    assert fake.commands["web1"] == ["PGPASSWORD=hunter22 psql -c 'select 1'"]
    assert "hunter22" not in json.dumps(document.as_dict())
    with pytest.raises(BadInput, match=r"held a secret that was not recorded: PGPASSWORD=\*\*\* psql"):
        continuation.rerun(document.as_dict(), {}, argv=["maint", "rerun"], project_dir=directory)


LOCAL = "[here]\nh1 ansible_connection=local\nh2 ansible_connection=local\n"


def test_maint_exec_prints_each_host_and_records_without_tickets(tmp_path: Path, maint_cli: Any) -> None:
    directory = in_project(tmp_path, inventory=LOCAL)
    database = f"sqlite:///{directory / 'maint.db'}"
    done = maint_cli("exec", "here", "-i", "hosts.ini", "--db", database, "--reason", "look", "--", "echo",
                     "{{ inventory_hostname }}", "a  b;", cwd=directory)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Each host's header, then its output; the hosts in the order they finished. The words stayed words.
    lines = done.stdout.splitlines()
    blocks = sorted(zip(lines[::2], lines[1::2], strict=True))
    assert blocks == [("h1 | ok | rc=0 >>", "h1 a  b;"), ("h2 | ok | rc=0 >>", "h2 a  b;")]
    assert "ok (2 ok); exit 0: every step ok" in done.stderr
    failed = maint_cli("exec", "h1", "-i", "hosts.ini", "--db", database, "--format", "json", "--",
                       "echo oops >&2; exit 3", cwd=directory)  # fmt: skip
    assert failed.returncode == 4
    document = json.loads(failed.stdout)
    assert document.get("tickets") is None  # tickets are off unless --tickets
    assert document["playbooks"][0]["exec"]["command"] == "echo oops >&2; exit 3"
    assert [(r["host"], r["status"], r["exit_code"]) for r in document["results"]] == [("h1", "failed", 3)]
    shown = maint_cli("runs", "show", document["id"], "--db", database, cwd=directory)
    assert "exec       echo oops >&2; exit 3 (on h1)" in shown.stdout
    listed = maint_cli("runs", "list", "--db", database, "--format", "json", cwd=directory)
    assert [[p["name"] for p in run["playbooks"]] for run in json.loads(listed.stdout)] == [["exec"], ["exec"]]
    ticketed = maint_cli("exec", "h1", "-i", "hosts.ini", "--db", database, "--tickets", "--format", "json", "--",
                         "exit 3", cwd=directory)  # fmt: skip
    assert ticketed.returncode == 4 and json.loads(ticketed.stdout)["tickets"] is not None
