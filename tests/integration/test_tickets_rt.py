"""The ``rt`` ticket backend against a real Request Tracker 5 server (rt-server, private SQLite database).

The server is started once for the module from a database prepared once per session (see
``tests/helpers/rt_server.py``); every test uses its own dedup keys, and reads what the backend did
back through REST2 on its own, without the backend.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_server import (
    CUSTOM_FIELDS,
    NO_FIELDS_PASSWORD,
    NO_FIELDS_USER,
    QUEUES,
    READONLY_PASSWORD,
    READONLY_USER,
    RTServer,
    backend_settings,
    missing,
    prepare_database,
)

from maint.tickets.backends import BackendRejected, BackendUnavailable, TicketMessage
from maint.tickets.backends.rt import RTBackend

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

_events = itertools.count(1000)

MakeBackend = Callable[..., RTBackend]


@pytest.fixture(scope="session")
def rt_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised RT database for the session (copied by every server)."""
    return prepare_database(tmp_path_factory.getbasetemp() / "rt-template")


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory, rt_template: Path) -> Iterator[RTServer]:
    """One running RT server for the module."""
    server = RTServer(tmp_path_factory.mktemp("rt"), template=rt_template)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_backend(rt: RTServer) -> MakeBackend:
    """Build an RTBackend for the module's server; keyword arguments override its options."""

    def make(timeout: float = 10.0, **overrides: Any) -> RTBackend:
        options: dict[str, Any] = {"url": rt.url, "user": rt.user, "password": rt.password}
        options.update(overrides)
        return RTBackend("helpdesk", options, timeout)

    return make


@pytest.fixture
def backend(make_backend: MakeBackend) -> RTBackend:
    """An RTBackend with the default queues and custom fields, as user maint."""
    return make_backend()


def message(key: str, action: str = "open", tier: str = "L1", **fields: Any) -> TicketMessage:
    """A ticket action for ``key`` ("HOST/CHECK") with a fresh event id."""
    host, check = key.split("/", 1)
    event_id = fields.pop("event_id", next(_events))
    values: dict[str, Any] = {
        "action": action,
        "key": key,
        "ticket_id": 7,
        "event_id": event_id,
        "host": host,
        "check": check,
        "tier": tier,
        "severity": "critical",
        "status": {"resolve": "resolved", "escalate": "escalated"}.get(action, "open"),
        "subject": f"[maint] {check} failing on {host}",
        "body": f"{action} for {key}: event {event_id}",
    }
    values.update(fields)
    return TicketMessage(**values)


def test_open_creates_the_ticket_in_the_tier_queue_with_custom_fields(rt: RTServer, backend: RTBackend) -> None:
    opening = message("web1/disk", severity="critical", body="Disk / is 97% full.\nFree some space.")

    ref = backend.open(opening)

    ticket = rt.ticket(ref)
    assert ticket["Subject"] == "[maint] disk failing on web1"
    assert ticket["Status"] == "new"
    assert ticket["Priority"] == "100"
    assert rt.queue_name(ref) == QUEUES["L1"]
    assert rt.custom_field_values(ref) == {
        CUSTOM_FIELDS["key"]: "web1/disk",
        CUSTOM_FIELDS["host"]: "web1",
        CUSTOM_FIELDS["check"]: "disk",
    }
    created = [entry for entry in rt.history(ref) if entry.type == "Create"]
    assert len(created) == 1
    assert "Disk / is 97% full.\nFree some space." in created[0].text
    assert created[0].text.rstrip().splitlines()[-1] == opening.marker
    assert backend.find("web1/disk") == ref
    assert rt.tickets_with(CUSTOM_FIELDS["key"], "web1/disk") == [ref]


def test_open_uses_the_routing_queue_and_the_configured_priorities(rt: RTServer, make_backend: MakeBackend) -> None:
    backend = make_backend(priorities={"warning": 30})

    routed = backend.open(message("db1/backup", severity="warning", queue=QUEUES["L3"]))
    unmapped = backend.open(message("db2/backup", severity="info", tier="L2"))

    assert rt.queue_name(routed) == QUEUES["L3"]
    assert rt.ticket(routed)["Priority"] == "30"
    assert rt.queue_name(unmapped) == QUEUES["L2"]
    assert rt.ticket(unmapped)["Priority"] == "0"  # no priority for info: RT's default


def test_find_returns_none_for_an_unknown_key(backend: RTBackend) -> None:
    assert backend.find("nowhere/nothing") is None


def test_find_sees_the_first_of_two_tickets_and_none_after_both_are_resolved(backend: RTBackend) -> None:
    key = "web2/load"
    first = backend.open(message(key))
    second = backend.open(message(key))
    assert int(first) < int(second)

    assert backend.find(key) == first
    backend.resolve(first, message(key, "resolve"))
    assert backend.find(key) == second
    backend.resolve(second, message(key, "resolve"))
    assert backend.find(key) is None


def test_find_matches_the_whole_key_with_quotes_and_backslashes(backend: RTBackend) -> None:
    odd = "it's\\odd/check 'one'"
    ref = backend.open(message(odd))
    backend.open(message("it/s"))

    assert backend.find(odd) == ref
    assert backend.find("it's") is None


def test_comment_appears_in_the_history_with_its_marker(rt: RTServer, backend: RTBackend) -> None:
    ref = backend.open(message("web3/ntp"))
    note = message("web3/ntp", "comment", body="Still failing (3 occurrences).")

    backend.comment(ref, note)

    comments = [entry for entry in rt.history(ref) if entry.type == "Comment"]
    assert len(comments) == 1
    assert comments[0].text == f"Still failing (3 occurrences).\n\n{note.marker}\n"
    assert rt.ticket(ref)["Status"] == "new"


def test_escalate_moves_the_ticket_to_the_tier_queue_and_says_why(rt: RTServer, backend: RTBackend) -> None:
    key = "web4/raid"
    ref = backend.open(message(key))

    backend.escalate(ref, message(key, "escalate", tier="L2", body="No acknowledgement within 4 hours."))
    assert rt.queue_name(ref) == QUEUES["L2"]
    backend.escalate(ref, message(key, "escalate", tier="L3", body="Still nobody."))
    assert rt.queue_name(ref) == QUEUES["L3"]

    history = rt.history(ref)
    moves = [(entry.old_value, entry.new_value) for entry in history if entry.type == "Set" and entry.field == "Queue"]
    assert len(moves) == 2
    comments = [entry.text for entry in history if entry.type == "Comment"]
    assert [text.splitlines()[0] for text in comments] == ["No acknowledgement within 4 hours.", "Still nobody."]
    assert backend.find(key) == ref


def test_escalate_to_a_tier_without_queue_is_rejected(make_backend: MakeBackend, backend: RTBackend) -> None:
    ref = backend.open(message("web5/raid"))

    with pytest.raises(BackendRejected, match=r"no queue for tier L4: add it to tickets\.backends\.helpdesk\.queues"):
        backend.escalate(ref, message("web5/raid", "escalate", tier="L4"))
    with pytest.raises(BackendRejected, match="queue 'Nowhere' does not exist"):
        make_backend(queues={"L2": "Nowhere"}).escalate(ref, message("web5/raid", "escalate", tier="L2"))


def test_resolve_sets_resolved_and_adds_the_note(rt: RTServer, backend: RTBackend) -> None:
    key = "web6/disk"
    ref = backend.open(message(key))
    resolution = message(key, "resolve", body="Disk usage back to 40%.")

    backend.resolve(ref, resolution)

    assert rt.ticket(ref)["Status"] == "resolved"
    history = rt.history(ref)
    assert history[-1].type == "Comment"
    assert history[-1].text.startswith("Disk usage back to 40%.")
    assert any(entry.type == "Status" and entry.new_value == "resolved" for entry in history)
    assert backend.find(key) is None
    backend.resolve(ref, resolution)  # a re-send after the status changed is harmless
    assert rt.ticket(ref)["Status"] == "resolved"


def test_reopen_sets_open_and_find_sees_the_ticket_again(rt: RTServer, backend: RTBackend) -> None:
    key = "web7/disk"
    ref = backend.open(message(key))
    backend.resolve(ref, message(key, "resolve"))

    backend.reopen(ref, message(key, "reopen", body="Failing again."))

    assert rt.ticket(ref)["Status"] == "open"
    assert rt.history(ref)[-1].text.startswith("Failing again.")
    assert backend.find(key) == ref


def test_delivered_tells_by_the_marker(backend: RTBackend) -> None:
    key = "web8/disk"
    opening = message(key, event_id=9100)
    ref = backend.open(opening)
    other = backend.open(message("web9/disk", event_id=9200))
    note = message(key, "comment", event_id=9101)

    assert backend.delivered(ref, opening) is True
    assert backend.delivered(ref, note) is False
    backend.comment(ref, note)
    assert backend.delivered(ref, note) is True
    assert backend.delivered(ref, message(key, "comment", event_id=910)) is False  # a prefix of 9101
    assert backend.delivered(other, note) is False
    assert backend.delivered(other, message("web9/disk", event_id=9200)) is True


def test_unknown_queue_is_rejected_with_a_hint(make_backend: MakeBackend) -> None:
    backend = make_backend(queues={"L1": "No Such Queue"})

    with pytest.raises(BackendRejected) as caught:
        backend.open(message("app1/http"))

    assert "queue 'No Such Queue' does not exist" in str(caught.value)
    assert "tickets.backends.helpdesk.queues" in str(caught.value)


def test_queue_without_the_key_custom_field_is_rejected_before_creating(
    rt: RTServer, make_backend: MakeBackend
) -> None:
    backend = make_backend(custom_fields={"key": "dedup-key"})

    with pytest.raises(BackendRejected, match="no ticket custom field 'dedup-key'"):
        backend.open(message("app2/http", subject="never created"))

    assert rt.search("Subject = 'never created'") == []


def test_unknown_ticket_is_rejected(backend: RTBackend) -> None:
    with pytest.raises(BackendRejected, match="ticket 999999 does not exist"):
        backend.comment("999999", message("app3/http", "comment"))
    with pytest.raises(BackendRejected, match="not an RT ticket number"):
        backend.resolve("PROJ-1", message("app3/http", "resolve"))


def test_bad_password_is_rejected_without_showing_it(make_backend: MakeBackend) -> None:
    backend = make_backend(password="wrong-Secret-42")

    with pytest.raises(BackendRejected) as caught:
        backend.find("app4/http")

    assert "HTTP 401" in str(caught.value)
    assert "check tickets.backends.helpdesk.user and password" in str(caught.value)
    assert "wrong-Secret-42" not in str(caught.value)


def test_token_authentication(rt: RTServer, make_backend: MakeBackend) -> None:
    backend = make_backend(user=None, password=None, token=rt.token)
    ref = backend.open(message("app5/http"))
    assert backend.find("app5/http") == ref

    wrong = rt.token[:-4] + "0000" if not rt.token.endswith("0000") else rt.token[:-4] + "1111"
    with pytest.raises(BackendRejected) as caught:
        make_backend(user=None, password=None, token=wrong).find("app5/http")
    assert "check tickets.backends.helpdesk.token" in str(caught.value)
    assert wrong not in str(caught.value)


def test_missing_credentials_are_rejected_before_any_request(make_backend: MakeBackend) -> None:
    with pytest.raises(BackendRejected, match=r"set tickets\.backends\.helpdesk\.user and password, or token"):
        make_backend(password=None).find("app6/http")


def test_missing_right_is_rejected_with_rts_reason(rt: RTServer, make_backend: MakeBackend) -> None:
    backend = make_backend(user=READONLY_USER, password=READONLY_PASSWORD)

    with pytest.raises(BackendRejected) as caught:
        backend.open(message("app7/http"))

    text = str(caught.value)
    assert "HTTP 403" in text
    assert f"RT does not let user '{READONLY_USER}' create a ticket in queue '{QUEUES['L1']}'" in text
    assert "No permission to create tickets" in text


def test_a_key_that_rt_did_not_store_is_reported(
    rt: RTServer, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend = make_backend(user=NO_FIELDS_USER, password=NO_FIELDS_PASSWORD)

    with caplog.at_level(logging.WARNING, logger="maint.tickets.backends.rt"):
        ref = backend.open(message("app10/http"))

    assert rt.custom_field_values(ref) == {}  # RT drops the fields silently without SetInitialCustomField
    assert f"RT did not store custom field 'maint-key' on ticket {ref}" in caplog.text
    assert f"give user '{NO_FIELDS_USER}' the SetInitialCustomField right" in caplog.text


def test_the_settings_for_maint_yml_build_a_working_backend(rt: RTServer) -> None:
    from maint.secrets import resolve

    settings = backend_settings(rt)
    settings["password"] = resolve(settings["password"], rt.environment()).value
    backend = RTBackend("helpdesk", {name: value for name, value in settings.items() if name != "type"}, 5.0)

    ref = backend.open(message("app11/http"))
    assert rt.tickets_with(CUSTOM_FIELDS["key"], "app11/http", active_only=True) == [ref]


def test_wrong_url_is_rejected_with_a_hint(rt: RTServer, make_backend: MakeBackend) -> None:
    with pytest.raises(BackendRejected, match=r"tickets\.backends\.helpdesk\.url"):
        make_backend(url=f"{rt.url}/no-rt-here").find("app8/http")


def test_hanging_server_is_unavailable_after_the_timeout(make_backend: MakeBackend) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=1) as silent:  # accepts connections, never answers
        backend = make_backend(url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=1.0)
        began = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"no answer .* within 1s"):
            backend.find("app9/http")
        assert time.monotonic() - began < 3


def test_stopped_server_is_unavailable_quickly_and_a_restart_keeps_the_data(
    rt: RTServer, make_backend: MakeBackend
) -> None:
    backend = make_backend(timeout=2.0)
    key = "db3/replication"
    ref = backend.open(message(key))
    backend.comment(ref, note := message(key, "comment", body="Lag 600 s."))

    rt.stop(kill=True)
    try:
        began = time.monotonic()
        with pytest.raises(BackendUnavailable, match="connection refused"):
            backend.find(key)
        with pytest.raises(BackendUnavailable):
            backend.comment(ref, message(key, "comment"))
        assert time.monotonic() - began < 2
    finally:
        rt.start()

    assert rt.startup_seconds is not None and rt.startup_seconds < 30
    assert backend.find(key) == ref
    assert backend.delivered(ref, note) is True
    assert [entry.text.splitlines()[0] for entry in rt.history(ref) if entry.type == "Comment"] == ["Lag 600 s."]
    assert backend.open(message("db4/replication")) != ref  # writes work after the restart too
