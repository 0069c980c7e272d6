"""The ``webhook`` ticket backend: every ticket action is one JSON POST (maint's shape or Slack's)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from maint.secrets import is_reference, mask, resolve
from maint.tickets.backends import BackendError, BackendRejected, Option, TicketMessage

if TYPE_CHECKING:
    import requests

FORMATS = ("json", "slack")
VERSION = 1
CREDENTIALS_AND_TOKEN = ("the URL holds user:password@ and 'token' is set too (the URL's credentials would "
                         "replace the token): keep one of them")  # fmt: skip

# Slack's legacy attachment colours ("good", "warning", "danger" or a hex code).
SLACK_COLOURS = {"critical": "danger", "warning": "warning", "info": "#439fe0"}
SLACK_VERBS = {
    "open": "New ticket",
    "comment": "Update",
    "acknowledge": "Acknowledged",
    "escalate": "Escalated",
    "resolve": "Resolved",
    "reopen": "Reopened",
}


class WebhookBackend:
    """Ticket actions as HTTP POSTs to a URL: a JSON document for your own receiver, or a Slack message.

    With ``format: json`` every action is one POST of this object (``version`` changes only when a
    field changes meaning or goes away; new fields may be added)::

        {"version": 1, "event": "open|comment|acknowledge|escalate|resolve|reopen",
         "event_id": 42, "marker": "maint-event-42", "key": "HOST/CHECK", "ticket_id": 7,
         "ref": null or the reference open returned, "host": ..., "check": ..., "tier": "L1|L2|L3",
         "severity": "info|warning|critical", "status": "open|acknowledged|escalated|resolved",
         "subject": ..., "body": ..., "run_id": ... or null, "queue": ... or null,
         "flapping": false, "occurrences": 1}

    ``queue`` is the routing rule's queue, else the tier's entry in ``queues``, else null. With
    ``format: slack`` the body is a Slack incoming-webhook message: a mrkdwn ``text`` line and one
    attachment coloured by severity (green on resolve) holding the body, the host, check and tier, and
    the marker in its footer.

    Headers: ``Idempotency-Key: maint-event-N`` (the same on every re-send of an action, so a receiver
    can drop duplicates), ``X-Maint-Event`` (the same marker), ``Authorization: Bearer TOKEN`` with
    ``token``, ``X-Maint-Signature: sha256=HEX`` (HMAC-SHA256 of the exact body bytes with
    ``signing_secret``) and the fixed ``headers``. A POST succeeds on any 2xx.

    ``open`` returns the receiver's ticket reference when it gives one (a JSON ``id``, else a
    ``Location`` header), else the dedup key. A URL cannot be searched: ``find`` returns None and
    ``delivered`` returns False.
    """

    description: ClassVar[str] = "POST each ticket action as JSON to a URL (a receiver of yours or a Slack webhook)."
    options: ClassVar[dict[str, Option]] = {
        "url": Option(str, "URL to POST to; may be an env:NAME or file:PATH reference (a Slack webhook URL is a "
                      "credential).", required=True, example="env:MAINT_SLACK_WEBHOOK"),
        "format": Option(str, "Body format: json (maint's event object) or slack (a Slack message).",
                         default="json", example="slack"),
        "headers": Option(dict, "Extra request headers (plain values; use token for a credential).", default={},
                          example={"X-Team": "ops"}),
        "token": Option(str, "Bearer token, sent as 'Authorization: Bearer TOKEN'.", secret=True,
                        example="env:MAINT_WEBHOOK_TOKEN"),
        "signing_secret": Option(str, "Key for the X-Maint-Signature header (sha256=HMAC-SHA256 of the body, hex).",
                                 secret=True, example="file:/etc/maint/webhook-signing-key"),
        "queues": Option(dict, "The queue sent per tier when routing gives none.", default={},
                         example={"L1": "helpdesk", "L2": "sysadmins", "L3": "oncall"}),
        "verify_tls": Option(bool, "Verify the server's TLS certificate.", default=True, example=True),
        "cafile": Option(str, "CA certificate file (PEM) to verify the server with.",
                         example="/etc/ssl/certs/internal-ca.pem"),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings (defaults applied); no network or file I/O happens here."""
        self.name = name
        self.timeout = float(timeout)
        self.url = str(options.get("url") or "")
        self.format = str(options.get("format") or "json").lower()
        raw_headers = options.get("headers")
        self.headers: dict[str, str] = (
            {str(header): str(value) for header, value in raw_headers.items()}
            if isinstance(raw_headers, Mapping)
            else {}
        )
        self.token = str(options["token"]) if options.get("token") else None
        self.signing_secret = str(options["signing_secret"]) if options.get("signing_secret") else None
        raw_queues = options.get("queues")
        self.queues: dict[str, str] = (
            {str(tier): str(queue) for tier, queue in raw_queues.items()} if isinstance(raw_queues, Mapping) else {}
        )
        verify = options.get("verify_tls")
        self.verify_tls = True if verify is None else bool(verify)
        self.cafile = str(options["cafile"]) if options.get("cafile") else None
        self._target: str | None = None
        self._http: requests.Session | None = None

    @staticmethod
    def check_options(options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems of a combination of options (maint.yml validation): (option, what to fix).

        A URL with ``user:password@`` and a ``token`` conflict: the HTTP library would send the URL's
        credentials as Basic auth in place of the token, so one of them would be ignored unseen.
        """
        url = options.get("url")
        if options.get("token") and isinstance(url, str) and not is_reference(url) and _has_credentials(url):
            return [("url", CREDENTIALS_AND_TOKEN)]
        return []

    # The protocol

    def find(self, key: str) -> str | None:
        """Always None: a webhook cannot be asked for the open ticket of ``key``."""
        return None

    def open(self, message: TicketMessage) -> str:
        """POST the opening event; returns the receiver's reference (JSON ``id``, ``Location``) or the key.

        Raises BackendUnavailable for a refused or timed-out connection, HTTP 5xx and 429, and
        BackendRejected for any other non-2xx answer or an unusable setting.
        """
        response = self._post(message, None)
        return _reference(response) or message.key

    def comment(self, ref: str, message: TicketMessage) -> None:
        """POST a comment (or acknowledgement) event for ``ref``; raises as :meth:`open`."""
        self._post(message, ref)

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """POST an escalation event (``tier`` is the new tier); raises as :meth:`open`."""
        self._post(message, ref)

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """POST a resolution event; raises as :meth:`open`."""
        self._post(message, ref)

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """POST a reopening event; raises as :meth:`open`."""
        self._post(message, ref)

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Always False: the receiver cannot be asked (it can drop re-sends by ``Idempotency-Key``)."""
        return False

    # Bodies

    def queue(self, message: TicketMessage) -> str | None:
        """The routing rule's queue, else the tier's entry in ``queues``, else None."""
        return message.queue or self.queues.get(message.tier)

    def payload(self, message: TicketMessage, ref: str | None) -> dict[str, Any]:
        """The body of the POST for ``message`` in the configured format (see the class docstring)."""
        if self.format == "slack":
            return self._slack(message, ref)
        return {
            "version": VERSION,
            "event": message.action,
            "event_id": message.event_id,
            "marker": message.marker,
            "key": message.key,
            "ticket_id": message.ticket_id,
            "ref": ref,
            "host": message.host,
            "check": message.check,
            "tier": message.tier,
            "severity": message.severity,
            "status": message.status,
            "subject": message.subject,
            "body": message.body,
            "run_id": message.run_id,
            "queue": self.queue(message),
            "flapping": message.flapping,
            "occurrences": message.occurrences,
        }

    def _slack(self, message: TicketMessage, ref: str | None) -> dict[str, Any]:
        verb = SLACK_VERBS.get(message.action, message.action.capitalize())
        if message.action == "escalate":
            verb = f"Escalated to {message.tier}"
        colour = "good" if message.action == "resolve" else SLACK_COLOURS.get(message.severity, "#9e9e9e")
        fields = [
            {"title": "Host", "value": _slack_escape(message.host), "short": True},
            {"title": "Check", "value": _slack_escape(message.check), "short": True},
            {"title": "Tier", "value": message.tier, "short": True},
            {"title": "Severity", "value": message.severity, "short": True},
        ]
        queue = self.queue(message)
        if queue:
            fields.append({"title": "Queue", "value": _slack_escape(queue), "short": True})
        if message.flapping:
            fields.append({"title": "Flapping", "value": f"{message.occurrences} occurrences", "short": True})
        footer = f"maint ticket #{message.ticket_id} · {message.key} · {message.marker}"
        headline = f"*[maint {message.tier}] {verb}:* {_slack_escape(message.subject)}"
        return {
            "text": headline,
            "attachments": [
                {
                    "fallback": f"[maint {message.tier}] {verb}: {message.subject} ({message.marker})",
                    "color": colour,
                    "text": _slack_escape(message.body),
                    "fields": fields,
                    "footer": _slack_escape(footer),
                    "mrkdwn_in": ["text"],
                }
            ],
        }

    # Sending

    @property
    def _system(self) -> str:
        return f"webhook backend '{self.name}'"

    def _resolve_target(self) -> str:
        if self._target is None:
            if not self.url:
                raise BackendRejected(f"{self._system}: url is not set")
            if is_reference(self.url):
                try:
                    self._target = resolve(self.url).value.strip()
                except ValueError as error:
                    raise BackendRejected(f"{self._system}: url: {error}") from None
            else:
                self._target = self.url
            if not self._target.lower().startswith(("http://", "https://")):
                shown = self.url if is_reference(self.url) else self._target.split("?", 1)[0]
                raise BackendRejected(f"{self._system}: url {shown} is not an http:// or https:// URL")
            if self.token and _has_credentials(self._target):
                self._target = None
                raise BackendRejected(f"{self._system}: tickets.backends.{self.name}.url of maint.yml: "
                                      f"{CREDENTIALS_AND_TOKEN}")  # fmt: skip
        return self._target

    def _post(self, message: TicketMessage, ref: str | None) -> requests.Response:
        from maint.tickets.backends import http

        if self.format not in FORMATS:
            raise BackendRejected(f"{self._system}: format is '{self.format}'; use one of {', '.join(FORMATS)}")
        target = self._resolve_target()
        data = json.dumps(self.payload(message, ref), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            **self.headers,
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.marker,
            "X-Maint-Event": message.marker,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.signing_secret:
            digest = hmac.new(self.signing_secret.encode(), data, hashlib.sha256).hexdigest()
            headers["X-Maint-Signature"] = f"sha256={digest}"
        if self._http is None:
            self._http = http.session()
        verify: bool | str = (self.cafile or True) if self.verify_tls else False
        try:
            return http.call(
                self._http,
                "POST",
                target,
                self.timeout,
                system=self._system,
                ok=range(200, 300),
                data=data,
                headers=headers,
                verify=verify,
                allow_redirects=False,
            )
        except BackendError as error:
            raise type(error)(self._hide(str(error), target)) from None

    def _hide(self, text: str, target: str) -> str:
        # A URL from a secret reference (a Slack webhook URL is the credential itself) is shown as
        # its reference; tokens never appear even if a receiver echoes them.
        if is_reference(self.url):
            text = text.replace(target.split("?", 1)[0], self.url)
        return mask(text, [value for value in (self.token, self.signing_secret) if value])


def _has_credentials(url: str) -> bool:
    """Whether ``url`` carries ``user:password@`` (or ``user@``) before its host."""
    from urllib.parse import urlsplit

    try:
        return "@" in urlsplit(url.strip()).netloc
    except ValueError:
        return False


def _reference(response: requests.Response) -> str | None:
    """The receiver's reference for a new ticket: a JSON ``id`` (or ``ref``), else ``Location``."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        for field in ("id", "ref"):
            value = document.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    location = response.headers.get("Location")
    return location.strip() if location and location.strip() else None


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn gives &, < and > a meaning; its documentation asks for these three entities.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
