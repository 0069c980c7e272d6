"""The ``pagerduty`` ticket backend: alerts through the PagerDuty Events API v2 (requests)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from maint.tickets.backends import BackendRejected, Option, TicketMessage

if TYPE_CHECKING:
    import requests

SYSTEM = "pagerduty"
DEFAULT_URL = "https://events.pagerduty.com"
SEVERITIES = ("critical", "error", "warning", "info")
DEFAULT_SEVERITIES = {"info": "info", "warning": "warning", "critical": "critical"}
SUMMARY_LENGTH = 1024  # the Events API's limit for payload.summary
DEDUP_LENGTH = 255  # and for dedup_key


class PagerDutyBackend:
    """Alerts on a PagerDuty service through the Events API v2 (``POST /v2/enqueue``).

    Requests go through :mod:`maint.tickets.backends.http` rather than the ``pagerduty`` client: its
    ``EventsApiV2Client`` accepts only ``https://`` base URLs (no plain-HTTP proxy or test double) and
    sleeps and retries on HTTP 429 and 5xx (at least one retry after several seconds, however its
    retry table is set), so a rate-limited or failing PagerDuty would hold the outbox much longer than
    ``timeout``. The Events API is a single endpoint, so the client would add little.

    The dedup key (``HOST/CHECK``) is the alert's ``dedup_key`` and the ticket's reference. Opening,
    commenting, escalating and reopening send ``trigger`` events (summary = the ticket's subject,
    source = the host, component = the check, severity mapped through ``severities``, group = the
    routing rule's queue, and in ``custom_details`` the tier, run id, maint ticket number, status,
    occurrences, the text and the action's marker); PagerDuty adds each to the open alert with that
    dedup key, or opens a new alert when there is none. An acknowledgement sends an ``acknowledge``
    event and resolving a ``resolve`` event (the Events API takes no text with those).

    ``find`` returns None: the Events API cannot be queried, and it needs no search, because a
    trigger with the same dedup key is merged into the open alert by PagerDuty itself, so the
    outbox's "open" is idempotent there. ``delivered`` returns False for the same reason: a re-sent
    trigger becomes one more log entry on the same alert, and a re-sent resolve changes nothing.
    """

    description: ClassVar[str] = "PagerDuty alerts (Events API v2), deduplicated by dedup_key = HOST/CHECK."
    options: ClassVar[dict[str, Option]] = {
        "routing_key": Option(str, "Integration key of an Events API v2 integration on the service.", required=True,
                              secret=True, example="env:MAINT_PAGERDUTY_ROUTING_KEY"),
        "url": Option(str, "Events API base URL (the EU service region: https://events.eu.pagerduty.com).",
                      default=DEFAULT_URL, example="https://events.pagerduty.com"),
        "severities": Option(dict, "PagerDuty severity (critical, error, warning, info) per maint severity.",
                             default=DEFAULT_SEVERITIES, example={"warning": "warning", "critical": "error"}),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings with defaults applied; no network I/O happens here."""
        self.name = name
        self.timeout = float(timeout)
        self.routing_key = str(options.get("routing_key") or "")
        self.url = str(options.get("url") or DEFAULT_URL).rstrip("/")
        severities = options.get("severities")
        self.severities = dict(DEFAULT_SEVERITIES)
        if isinstance(severities, Mapping):
            self.severities.update({str(key): str(value) for key, value in severities.items()})
        self._http: requests.Session | None = None

    # The protocol

    def find(self, key: str) -> str | None:
        """Always None: PagerDuty merges triggers with the same dedup key into the open alert itself."""
        return None

    def open(self, message: TicketMessage) -> str:
        """Send a trigger event; returns the alert's dedup key (the reference).

        Raises BackendUnavailable (down, slow, 5xx, 429) or BackendRejected (invalid event or routing key).
        """
        return self._send("trigger", dedup_key(message.key), message)

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Send a trigger event with the text (an acknowledgement: an acknowledge event); raises as :meth:`open`."""
        self._send("acknowledge" if message.action == "acknowledge" else "trigger", ref, message)

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Send a trigger event carrying the new tier; raises as :meth:`open`."""
        self._send("trigger", ref, message)

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Send a resolve event for the alert ``ref``; raises as :meth:`open`."""
        self._send("resolve", ref, message)

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Send a trigger event (PagerDuty opens a new alert: it never reopens one); raises as :meth:`open`."""
        self._send("trigger", ref, message)

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Always False: the Events API cannot be asked, and re-sent events are harmless."""
        return False

    # Helpers

    def event(self, action: str, key: str, message: TicketMessage) -> dict[str, Any]:
        """The Events API v2 event for ``action`` (trigger, acknowledge, resolve) on alert ``key``.

        Raises BackendRejected when the severity mapping names no PagerDuty severity.
        """
        event: dict[str, Any] = {"routing_key": self.routing_key, "event_action": action, "dedup_key": key}
        if action != "trigger":
            return event
        severity = self.severities.get(message.severity, "critical")
        if severity not in SEVERITIES:
            raise BackendRejected(f"{SYSTEM}: '{severity}' is not a PagerDuty severity "
                                  f"({', '.join(SEVERITIES)}): fix 'severities'")  # fmt: skip
        payload: dict[str, Any] = {
            "summary": " ".join(message.subject.split())[:SUMMARY_LENGTH] or message.key,
            "source": message.host,
            "severity": severity,
            "component": message.check,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "custom_details": {
                "tier": message.tier, "run_id": message.run_id, "ticket": message.ticket_id, "status": message.status,
                "action": message.action, "occurrences": message.occurrences, "flapping": message.flapping,
                "body": message.body, "marker": message.marker,
            },
        }  # fmt: skip
        if message.queue:
            payload["group"] = message.queue
        return {**event, "payload": payload, "client": "maint"}

    def _send(self, action: str, key: str, message: TicketMessage) -> str:
        from maint.tickets.backends.http import call, session

        if not self.routing_key:
            raise BackendRejected(f"{SYSTEM}: set 'routing_key' in tickets.backends.{self.name}")
        if self._http is None:
            self._http = session()
        event = self.event(action, key, message)
        try:
            answer = call(self._http, "POST", f"{self.url}/v2/enqueue", self.timeout, system=SYSTEM, ok=(202,),
                          json=event)  # fmt: skip
        except BackendRejected as error:
            raise BackendRejected(f"{error} (check 'routing_key': the integration key of an Events API v2 "
                                  "integration, and 'url' for the service region)") from None  # fmt: skip
        try:
            answered = answer.json()
        except ValueError:
            return key
        return str(answered.get("dedup_key") or key) if isinstance(answered, dict) else key


def dedup_key(key: str) -> str:
    """The alert's dedup key for maint's key: the key itself, or a shortened form with a hash past 255 characters."""
    if len(key) <= DEDUP_LENGTH:
        return key
    return f"{key[: DEDUP_LENGTH - 17]}#{hashlib.sha256(key.encode()).hexdigest()[:16]}"
