"""A fake of the PagerDuty Events API v2 (``POST /v2/enqueue``) on loopback, for backend tests.

PagerDuty is a SaaS that cannot run here, so this fake, built on :mod:`http_fake` (a real HTTP
server), follows the documented request and response shapes of the Events API v2 "Send an Alert
Event" endpoint: 202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}`` for an
accepted event, 400 ``{"status": "invalid event", "message": "Event object is invalid", "errors":
[...]}`` for a body that is not JSON, a routing key that is not 32 characters or not known, an unknown
``event_action``, a trigger without ``payload.summary``, ``payload.source`` or a valid
``payload.severity`` (critical, error, warning, info), a dedup_key over 255 characters or missing on
acknowledge/resolve, and 429 when ``rate_limited`` is set.

Accepted events land in ``alerts`` by dedup key with the documented de-duplication: a trigger adds a
log entry to the open alert with that key or opens a new one; acknowledge and resolve apply to the
open alert and are dropped when there is none.
"""

from __future__ import annotations

import uuid
from typing import Any

from http_fake import FakeHTTPServer, Request

SEVERITIES = ("critical", "error", "warning", "info")


def invalid(*errors: str) -> tuple[int, Any]:
    """The Events API's 400 answer."""
    return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}


class FakePagerDuty:
    """The PagerDuty fake: ``alerts`` (by dedup key, newest last) and ``events`` (the accepted ones, in order)."""

    def __init__(self, routing_key: str = "R0UT1NGKEY0123456789abcdef012345") -> None:
        assert len(routing_key) == 32
        self.routing_key = routing_key
        self.alerts: dict[str, list[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.rate_limited = False
        self.server = FakeHTTPServer()
        self.server.route("POST", r"/v2/enqueue")(self.enqueue)

    @property
    def url(self) -> str:
        """The Events API base URL (what the backend's ``url`` option takes)."""
        return self.server.url

    def start(self) -> FakePagerDuty:
        """Start serving; returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Close the port."""
        self.server.stop()

    def alert(self, dedup_key: str) -> dict[str, Any]:
        """The newest alert with ``dedup_key``."""
        return self.alerts[dedup_key][-1]

    def enqueue(self, request: Request) -> tuple[int, Any]:
        """POST /v2/enqueue: validate the event, apply it to the alerts, answer 202 with the dedup key."""
        if self.rate_limited:
            return 429, {"status": "throttle event", "message": "Requests for this service are arriving too quickly."}
        try:
            event = request.json()
        except ValueError:
            return invalid("Event object is not valid JSON")
        if not isinstance(event, dict):
            return invalid("Event object must be a JSON object")
        key = event.get("routing_key")
        if not isinstance(key, str) or len(key) != 32:
            return invalid("Length of 'routing_key' is incorrect (should be 32 characters)")
        if key != self.routing_key:
            return invalid("Invalid routing key")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            return invalid(f"'event_action' {action!r} is invalid" if action else "'event_action' is missing or blank")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            return invalid("'dedup_key' must be a string of at most 255 characters")
        if action == "trigger":
            problems = self._payload_problems(event.get("payload"))
            if problems:
                return invalid(*problems)
            dedup_key = dedup_key or str(uuid.uuid4())
            alerts = self.alerts.setdefault(dedup_key, [])
            if not alerts or alerts[-1]["status"] == "resolved":
                alerts.append({"status": "triggered", "log": []})
            alerts[-1]["log"].append(event)
            alerts[-1]["payload"] = event["payload"]
        else:
            if not dedup_key:
                return invalid("'dedup_key' is missing or blank")
            open_alerts = [a for a in self.alerts.get(dedup_key, []) if a["status"] != "resolved"]
            if open_alerts:  # else dropped, as documented
                open_alerts[-1]["status"] = "acknowledged" if action == "acknowledge" else "resolved"
                open_alerts[-1]["log"].append(event)
        self.events.append(event)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    def _payload_problems(self, payload: Any) -> list[str]:
        if not isinstance(payload, dict):
            return ["'payload' is missing or blank"]
        problems = [f"'payload.{name}' is missing or blank" for name in ("summary", "source")
                    if not str(payload.get(name) or "").strip()]  # fmt: skip
        if payload.get("severity") not in SEVERITIES:
            problems.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
        if len(str(payload.get("summary") or "")) > 1024:
            problems.append("'payload.summary' is longer than 1024 characters")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict | str):
            problems.append("'payload.custom_details' must be an object")
        return problems
