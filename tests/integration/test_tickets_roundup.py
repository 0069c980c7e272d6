"""The roundup ticket backend against a real roundup-server (classic tracker, SQLite) on 127.0.0.1.

Issues are read back through Roundup's REST API as the tracker's admin (tests/helpers/roundup_server.py).
Each test uses its own dedup keys, so the tests share one server per module; the tests that stop the
server, lock a login out or need another ``[tracker] web`` get their own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from roundup_server import RoundupServer

from maint.tickets.backends import BackendRejected, BackendUnavailable, TicketMessage
from maint.tickets.backends.roundup import RoundupBackend

_events = itertools.count(1000)


@pytest.fixture(scope="module")
def roundup() -> Iterator[RoundupServer]:
    """One tracker for the module, with a keyword ``infra`` and a user ``oncall`` to route and assign to."""
    with RoundupServer() as server:
        server.create("keyword", name="infra")
        server.create("user", username="oncall", roles="User", address="oncall@localhost")
        yield server


def make_backend(server: RoundupServer, timeout: float = 5.0, **options: Any) -> RoundupBackend:
    """A backend named ``bugs`` logged in as maint on ``server``, with extra ``options``."""
    settings = {"url": server.url, "user": server.user, "password": server.password, **options}
    return RoundupBackend("bugs", settings, timeout)


@pytest.fixture
def backend(roundup: RoundupServer) -> RoundupBackend:
    """The module tracker's backend, assigning L3 issues to ``oncall``."""
    return make_backend(roundup, assignees={"L3": "oncall"})


def message(
    action: str, key: str, tier: str = "L1", queue: str | None = None, body: str | None = None
) -> TicketMessage:
    """A ticket action for ``key`` ("HOST/CHECK") with a new event id (so a new marker)."""
    host, check = key.split("/")
    return TicketMessage(
        action=action,
        key=key,
        ticket_id=7,
        event_id=next(_events),
        host=host,
        check=check,
        tier=tier,
        severity="critical",
        status={"resolve": "resolved", "escalate": "escalated"}.get(action, "open"),
        subject=f"{check} failing on {host}",
        body=body or f"{action}: {check} on {host}\n",
        queue=queue,
    )


def test_open_creates_an_issue_that_find_returns_until_resolved(
    roundup: RoundupServer, backend: RoundupBackend
) -> None:
    opening = message("open", "web1/disk_usage")
    ref = backend.open(opening)

    assert ref.startswith("issue")
    assert backend.find("web1/disk_usage") == ref
    issue = roundup.issue(ref)
    assert issue.title == "[web1/disk_usage] disk_usage failing on web1"
    assert (issue.status, issue.priority, issue.assignee) == ("unread", "bug", None)
    [first] = issue.messages
    assert first.content.startswith("open: disk_usage on web1\n")
    assert first.content.rstrip().endswith(opening.marker)
    assert (first.author, first.messageid) == ("maint", f"<{opening.marker}@maint>")

    backend.resolve(ref, message("resolve", "web1/disk_usage", body="passes again"))

    assert backend.find("web1/disk_usage") is None
    issue = roundup.issue(ref)
    assert issue.status == "resolved"
    assert issue.messages[-1].content.startswith("passes again\n")


def test_find_matches_the_whole_key_only(backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "db10/backup_age"))

    assert backend.find("db1/backup_age") is None
    assert backend.find("db10/backup") is None
    assert backend.find("DB10/backup_age") is None
    assert backend.find("db10/backup_age") == ref


def test_find_returns_the_oldest_open_issue_and_skips_done_cbb(roundup: RoundupServer, backend: RoundupBackend) -> None:
    first = backend.open(message("open", "app1/ntp"))
    second = backend.open(message("open", "app1/ntp"))
    backend.open(message("open", "app1/ntp"))
    assert backend.find("app1/ntp") == first

    roundup.edit(first, status="done-cbb")

    assert backend.find("app1/ntp") == second


def test_comment_adds_a_message(roundup: RoundupServer, backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "web2/load"))
    note = message("comment", "web2/load", body="seen again (3 times)")

    backend.comment(ref, note)

    issue = roundup.issue(ref)
    assert [m.content.splitlines()[0] for m in issue.messages] == ["open: load on web2", "seen again (3 times)"]
    assert issue.messages[-1].content.rstrip().endswith(note.marker)
    # The classic detector: a message on an unread issue makes it chatting.
    assert issue.status == "chatting"
    assert backend.find("web2/load") == ref


def test_escalate_sets_the_tier_priority_and_assignee(roundup: RoundupServer, backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "web3/raid"))

    backend.escalate(ref, message("escalate", "web3/raid", tier="L2", body="third failure"))
    assert (roundup.issue(ref).priority, roundup.issue(ref).assignee) == ("urgent", None)

    to_oncall = message("escalate", "web3/raid", tier="L3", body="still failing")
    backend.escalate(ref, to_oncall)
    issue = roundup.issue(ref)
    assert (issue.priority, issue.assignee) == ("critical", "oncall")
    # Roundup's nosy mail to the new assignee carries the action's Message-ID.
    assert "TO: oncall@localhost\n" in roundup.mail()
    assert f"Message-Id: <{to_oncall.marker}@maint>" in roundup.mail()
    assert [m.content.splitlines()[0] for m in issue.messages[1:]] == ["third failure", "still failing"]


def test_priorities_option_overrides_one_tier(roundup: RoundupServer) -> None:
    backend = make_backend(roundup, priorities={"L1": "wish"})

    ref = backend.open(message("open", "web4/updates"))
    assert roundup.issue(ref).priority == "wish"

    backend.escalate(ref, message("escalate", "web4/updates", tier="L2"))
    assert roundup.issue(ref).priority == "urgent"


def test_reopen_sets_chatting_and_find_sees_the_issue_again(roundup: RoundupServer, backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "web5/clamav"))
    backend.resolve(ref, message("resolve", "web5/clamav"))
    assert backend.find("web5/clamav") is None

    backend.reopen(ref, message("reopen", "web5/clamav", body="failing again within 24h"))

    issue = roundup.issue(ref)
    assert (issue.status, issue.priority) == ("chatting", "bug")
    assert issue.messages[-1].content.startswith("failing again within 24h\n")
    assert backend.find("web5/clamav") == ref


def test_delivered_tells_whether_the_action_is_on_the_issue(roundup: RoundupServer, backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "web6/time"))
    other = backend.open(message("open", "web7/time"))
    note = message("comment", "web6/time")

    assert backend.delivered(ref, note) is False
    backend.comment(other, note)  # the same event on another issue does not count
    assert backend.delivered(ref, note) is False

    backend.comment(ref, note)

    assert backend.delivered(ref, note) is True
    assert backend.delivered(ref, message("comment", "web6/time")) is False


def test_queue_names_a_keyword(roundup: RoundupServer, backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "web8/backup", queue="infra"))

    assert roundup.issue(ref).keywords == ("infra",)
    with pytest.raises(BackendRejected, match=r"HTTP 400: property keyword: 'nonexistent' is not a keyword.*queues"):
        backend.open(message("open", "web9/backup", queue="nonexistent"))


def test_unknown_reference_is_rejected(backend: RoundupBackend) -> None:
    with pytest.raises(BackendRejected, match="not a Roundup issue reference"):
        backend.comment("TICKET-1", message("comment", "web1/disk"))
    with pytest.raises(BackendRejected, match="HTTP 404"):
        backend.comment("issue99999", message("comment", "web1/disk"))


def test_bad_password_is_rejected_without_the_password() -> None:
    # Its own tracker: Roundup locks a user's REST logins after four failures.
    with RoundupServer() as server:
        wrong = "Wrong-Pa55word-xyzzy"
        backend = RoundupBackend("bugs", {"url": server.url, "user": server.user, "password": wrong}, 5.0)

        with pytest.raises(BackendRejected) as rejected:
            backend.open(message("open", "web1/disk"))

        text = str(rejected.value)
        assert "HTTP 401" in text
        assert "check tickets.backends.bugs.user and password" in text
        assert wrong not in text
        assert server.issues() == []

        for _ in range(3):
            with pytest.raises(BackendRejected, match="HTTP 401"):
                backend.find("web1/disk")
        with pytest.raises(BackendUnavailable) as locked:
            backend.find("web1/disk")
        assert "HTTP 429" in str(locked.value)
        assert "blocks REST logins" in str(locked.value)
        assert wrong not in str(locked.value)


def test_url_other_than_the_tracker_web_is_rejected_with_a_hint() -> None:
    # As behind a proxy: the tracker knows itself as bugs.example.org, maint reaches it on 127.0.0.1.
    with RoundupServer(web="https://bugs.example.org/tracker/") as server:
        backend = make_backend(server)

        with pytest.raises(BackendRejected) as rejected:
            backend.open(message("open", "web1/disk"))

        assert "HTTP 400" in str(rejected.value)
        assert "tickets.backends.bugs.url must be the tracker's address as in its config.ini" in str(rejected.value)
        assert server.issues() == []


def test_url_without_a_tracker_is_rejected_with_a_hint(roundup: RoundupServer) -> None:
    backend = RoundupBackend("bugs", {"url": f"http://127.0.0.1:{roundup.port}/nosuch/", "user": "maint",
                                      "password": roundup.password}, 5.0)  # fmt: skip

    with pytest.raises(BackendRejected) as rejected:
        backend.find("web1/disk")

    text = str(rejected.value)
    assert "HTTP 404" in text and "<html" not in text.lower()
    assert "check tickets.backends.bugs.url" in text


def test_a_concurrent_comment_is_kept(
    roundup: RoundupServer, backend: RoundupBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = backend.open(message("open", "web11/ntp"))
    call = backend._call
    answers: list[int] = []

    def call_with_a_person_in_between(method: str, path: str, **kwargs: Any) -> Any:
        if method == "PUT" and not answers:
            # Between maint's read of the issue and its write, a person adds a message.
            person = roundup.create("msg", content="looking into it\n", author="admin", date=".")
            roundup.edit(ref, messages=[m.id for m in roundup.issue(ref).messages] + [person])
        response = call(method, path, **kwargs)
        if method == "PUT":
            answers.append(response.status_code)
        return response

    monkeypatch.setattr(backend, "_call", call_with_a_person_in_between)
    backend.resolve(ref, message("resolve", "web11/ntp", body="fixed"))

    issue = roundup.issue(ref)
    assert answers == [412, 200]
    assert issue.status == "resolved"
    assert {m.content.splitlines()[0] for m in issue.messages} == {"open: ntp on web11", "looking into it", "fixed"}


def test_stopped_server_is_unavailable_and_a_restart_keeps_the_data() -> None:
    with RoundupServer() as server:
        backend = make_backend(server, timeout=2.0)
        ref = backend.open(message("open", "web1/disk"))
        port = server.port

        server.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="cannot connect"):
            backend.find("web1/disk")
        assert time.monotonic() - started < 2.0

        server.start()
        assert server.port == port
        assert server.start_seconds is not None and server.start_seconds < 10
        assert backend.find("web1/disk") == ref
        backend.comment(ref, message("comment", "web1/disk", body="after the restart"))
        assert server.issue(ref).messages[-1].content.startswith("after the restart\n")


def test_a_failing_tracker_is_unavailable(roundup: RoundupServer, backend: RoundupBackend) -> None:
    ref = backend.open(message("open", "web12/disk"))
    # Where the tracker stores message texts: unwritable, its writes fail (Roundup answers HTTP 400
    # "An error occurred. Please check the server log").
    [texts] = (roundup.tracker / "db" / "files" / "msg").iterdir()
    mode = texts.stat().st_mode
    texts.chmod(0o555)
    try:
        with pytest.raises(BackendUnavailable, match="failed on its side"):
            backend.comment(ref, message("comment", "web12/disk"))
    finally:
        texts.chmod(mode)

    backend.comment(ref, message("comment", "web12/disk", body="written again"))
    assert roundup.issue(ref).messages[-1].content.startswith("written again\n")


def test_frozen_server_times_out_as_unavailable(roundup: RoundupServer) -> None:
    backend = make_backend(roundup, timeout=1.0)

    with roundup.paused():
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="no answer"):
            backend.find("web1/disk")
        elapsed = time.monotonic() - started

    assert 0.9 < elapsed < 3.0
