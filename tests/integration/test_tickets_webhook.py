"""The webhook ticket backend against a real HTTP server (tests/helpers/http_fake.py on loopback).

The receiving end is a fake: a webhook's receiver is the user's own service or Slack's incoming-webhook
endpoint (a SaaS). The Slack route answers as Slack documents for incoming webhooks: HTTP 200 with the
plain body ``ok``, and HTTP 400 ``invalid_payload`` for a body it cannot read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from http_fake import FakeHTTPServer, Request

from maint.tickets.backends import BackendRejected, BackendUnavailable, TicketMessage
from maint.tickets.backends.webhook import WebhookBackend

TOKEN = "tok-4f9a8b7c6d5e"
SIGNING_SECRET = "sign-1b2c3d4e5f"
SLACK_PATH = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"

JSON_FIELDS = [
    "version",
    "event",
    "event_id",
    "marker",
    "key",
    "ticket_id",
    "ref",
    "host",
    "check",
    "tier",
    "severity",
    "status",
    "subject",
    "body",
    "run_id",
    "queue",
    "flapping",
    "occurrences",
]


def message(action: str = "open", event_id: int = 201, **changes: Any) -> TicketMessage:
    """A ticket action for db1/backup.restic, ticket 9, with ``changes`` applied."""
    base = TicketMessage(
        action=action,
        key="db1/backup.restic",
        ticket_id=9,
        event_id=event_id,
        host="db1",
        check="backup.restic",
        tier="L1",
        severity="warning",
        status="open",
        subject="backup.restic failing on db1",
        body="Last snapshot is 30 hours old (limit 26 hours).",
        run_id="run-20240102-0300",
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeHTTPServer]:
    """One HTTP server for the module: a JSON receiver and a Slack incoming-webhook endpoint."""
    server = FakeHTTPServer()

    @server.route("POST", "/hooks/maint")
    def accept(request: Request) -> tuple[int, Any]:
        return 202, {}

    @server.route("POST", "/hooks/with-id")
    def accept_with_id(request: Request) -> tuple[int, Any]:
        return 201, {"id": 5012, "status": "created"}

    @server.route("POST", "/hooks/bad")
    def refuse(request: Request) -> tuple[int, Any]:
        return 400, {"error": "unknown field 'ref'", "token_seen": request.headers.get("Authorization", "")}

    @server.route("POST", SLACK_PATH)
    def slack(request: Request) -> tuple[int, Any]:
        payload = request.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            return 400, b"invalid_payload"
        return 200, b"ok"

    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake(receiver: FakeHTTPServer) -> Iterator[FakeHTTPServer]:
    """The module's receiver with an empty request log and no fault."""
    receiver.requests.clear()
    receiver.fault = None
    yield receiver
    receiver.fault = None


def backend(url: str, timeout: float = 5.0, **options: Any) -> WebhookBackend:
    """A webhook backend posting to ``url`` with ``options``."""
    return WebhookBackend("hook", {"url": url, **options}, timeout)


def test_entry_point_loads_the_backend() -> None:
    (entry,) = entry_points(group="maint.ticket_backends", name="webhook")
    assert entry.load() is WebhookBackend
    assert WebhookBackend.options["token"].secret and WebhookBackend.options["signing_secret"].secret
    assert [name for name, option in WebhookBackend.options.items() if option.required] == ["url"]


def test_json_events_have_the_documented_shape(fake: FakeHTTPServer) -> None:
    hook = backend(fake.url + "/hooks/maint", queues={"L1": "helpdesk", "L3": "oncall"})
    assert hook.find("db1/backup.restic") is None

    ref = hook.open(message())
    hook.escalate(ref, message("escalate", 202, tier="L3", status="escalated", body="Still failing."))
    hook.resolve(ref, message("resolve", 203, tier="L3", status="resolved", queue="storage", occurrences=3))

    opening, escalation, resolution = fake.requests_to("POST", "/hooks/maint")
    assert ref == "db1/backup.restic"
    body = opening.json()
    assert list(body) == JSON_FIELDS
    assert body == {
        "version": 1,
        "event": "open",
        "event_id": 201,
        "marker": "maint-event-201",
        "key": "db1/backup.restic",
        "ticket_id": 9,
        "ref": None,
        "host": "db1",
        "check": "backup.restic",
        "tier": "L1",
        "severity": "warning",
        "status": "open",
        "subject": "backup.restic failing on db1",
        "body": "Last snapshot is 30 hours old (limit 26 hours).",
        "run_id": "run-20240102-0300",
        "queue": "helpdesk",
        "flapping": False,
        "occurrences": 1,
    }
    assert opening.headers["Idempotency-Key"] == "maint-event-201"
    assert opening.headers["Content-Type"].startswith("application/json")
    assert "Authorization" not in opening.headers and "X-Maint-Signature" not in opening.headers
    assert escalation.json()["event"] == "escalate"
    assert escalation.json()["ref"] == ref
    assert escalation.json()["queue"] == "oncall"
    assert escalation.headers["Idempotency-Key"] == "maint-event-202"
    assert resolution.json()["queue"] == "storage"
    assert resolution.json()["occurrences"] == 3
    assert resolution.json()["status"] == "resolved"
    assert not hook.delivered(ref, message("resolve", 203))


def test_a_resent_action_has_the_same_body_and_idempotency_key(fake: FakeHTTPServer) -> None:
    hook = backend(fake.url + "/hooks/maint", signing_secret=SIGNING_SECRET)
    hook.comment("db1/backup.restic", message("acknowledge", 204))
    hook.comment("db1/backup.restic", message("acknowledge", 204))

    first, again = fake.requests_to("POST", "/hooks/maint")
    assert first.body == again.body
    assert first.json()["event"] == "acknowledge"
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] == "maint-event-204"
    assert first.headers["X-Maint-Signature"] == again.headers["X-Maint-Signature"]


def test_open_returns_the_receivers_id(fake: FakeHTTPServer) -> None:
    assert backend(fake.url + "/hooks/with-id").open(message()) == "5012"


def test_slack_messages_follow_the_incoming_webhook_shape(fake: FakeHTTPServer) -> None:
    hook = backend(fake.url + SLACK_PATH, format="slack")

    ref = hook.open(message(subject="backup <restic> & co failing", severity="critical"))
    hook.resolve(ref, message("resolve", 205, status="resolved", body="Snapshot taken."))

    opening, resolution = (request.json() for request in fake.requests_to("POST", SLACK_PATH))
    assert ref == "db1/backup.restic"
    assert opening["text"] == "*[maint L1] New ticket:* backup &lt;restic&gt; &amp; co failing"
    (attachment,) = opening["attachments"]
    assert attachment["color"] == "danger"
    assert attachment["text"] == "Last snapshot is 30 hours old (limit 26 hours)."
    assert attachment["mrkdwn_in"] == ["text"]
    assert "maint-event-201" in attachment["footer"] and "maint-event-201" in attachment["fallback"]
    assert {"title": "Host", "value": "db1", "short": True} in attachment["fields"]
    assert resolution["text"].startswith("*[maint L1] Resolved:*")
    assert resolution["attachments"][0]["color"] == "good"
    assert "maint-event-205" in resolution["attachments"][0]["footer"]


def test_signature_is_hmac_sha256_of_the_body(fake: FakeHTTPServer) -> None:
    backend(fake.url + "/hooks/maint", signing_secret=SIGNING_SECRET).open(message())

    (request,) = fake.requests_to("POST", "/hooks/maint")
    expected = hmac.new(SIGNING_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Maint-Signature"], f"sha256={expected}")
    assert SIGNING_SECRET not in request.body.decode()


def test_bearer_token_and_extra_headers_are_sent(fake: FakeHTTPServer) -> None:
    backend(fake.url + "/hooks/maint", token=TOKEN, headers={"X-Team": "ops"}).open(message())

    (request,) = fake.requests_to("POST", "/hooks/maint")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Team"] == "ops"


def test_url_from_a_secret_reference(fake: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAINT_TEST_WEBHOOK", fake.url + SLACK_PATH)
    monkeypatch.setenv("MAINT_TEST_BAD_WEBHOOK", fake.url + "/hooks/bad")
    backend("env:MAINT_TEST_WEBHOOK", format="slack").open(message())
    assert len(fake.requests_to("POST", SLACK_PATH)) == 1

    with pytest.raises(BackendRejected) as caught:
        backend("env:MAINT_TEST_BAD_WEBHOOK").open(message())
    assert "env:MAINT_TEST_BAD_WEBHOOK" in str(caught.value)
    assert "/hooks/bad" not in str(caught.value)
    with pytest.raises(BackendRejected, match=r"MAINT_TEST_UNSET_WEBHOOK .* is not set"):
        backend("env:MAINT_TEST_UNSET_WEBHOOK").open(message())


def test_server_error_is_unavailable(fake: FakeHTTPServer) -> None:
    fake.fault = "error"
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        backend(fake.url + "/hooks/maint").open(message())


def test_client_error_is_rejected_without_the_token(fake: FakeHTTPServer) -> None:
    with pytest.raises(BackendRejected, match=r"HTTP 400.*unknown field") as caught:
        backend(fake.url + "/hooks/bad", token=TOKEN).open(message())
    assert TOKEN not in str(caught.value)

    with pytest.raises(BackendRejected, match="HTTP 404"):
        backend(fake.url + "/hooks/missing").open(message())


def test_refused_connection_is_unavailable() -> None:
    server = FakeHTTPServer().start()
    url = server.url + "/hooks/maint"
    server.stop()

    with pytest.raises(BackendUnavailable, match="connection refused"):
        backend(url).open(message())


def test_hanging_receiver_is_unavailable_after_the_timeout() -> None:
    server = FakeHTTPServer().start()
    server.fault = "hang"
    server.hang_seconds = 2.0
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"no answer .* within 0.5s"):
            backend(server.url + "/hooks/maint", timeout=0.5).open(message())
        assert time.monotonic() - started < 1.5
    finally:
        server.stop()


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(BackendRejected, match="format is 'xml'"):
        backend("http://127.0.0.1:9/hooks", format="xml").open(message())
    with pytest.raises(BackendRejected, match="not an http"):
        backend("ftp://127.0.0.1/hooks").open(message())
    assert json.loads(json.dumps(backend("http://127.0.0.1:9/").payload(message(), None)))["marker"] == (
        "maint-event-201"
    )


def test_url_credentials_never_replace_the_token_nor_show(
    fake: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "url-Pa55-w0rd"
    with_credentials = fake.url.replace("://", f"://hook:{password}@") + "/hooks/maint"
    monkeypatch.setenv("MAINT_TEST_CREDENTIALS_WEBHOOK", with_credentials)
    with pytest.raises(BackendRejected, match=r"tickets\.backends\.hook\.url of maint\.yml: the URL holds") as caught:
        backend("env:MAINT_TEST_CREDENTIALS_WEBHOOK", token=TOKEN).open(message())
    assert password not in str(caught.value)
    assert fake.requests_to("POST", "/hooks/maint") == []  # nothing sent with the wrong credentials

    # Without a token the URL's credentials are the authentication; an error shows them masked.
    with pytest.raises(BackendRejected, match=r"hook:\*\*\*@127\.0\.0\.1") as caught:
        backend(fake.url.replace("://", f"://hook:{password}@") + "/hooks/bad").open(message())
    assert password not in str(caught.value)
