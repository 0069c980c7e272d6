"""The ``rt`` ticket backend: Request Tracker 5 tickets through RT's REST2 API (``/REST/2.0``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import quote

from maint.secrets import mask
from maint.tickets.backends import BackendRejected, Option, TicketMessage, text_with_marker

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

DEFAULT_QUEUES = {"L1": "Help Desk", "L2": "Service Desk", "L3": "Back End"}
DEFAULT_CUSTOM_FIELDS = {"key": "maint-key", "host": "maint-host", "check": "maint-check"}
# RT 5 shows priorities 0, 50 and 100 as Low, Medium and High.
DEFAULT_PRIORITIES = {"info": 0, "warning": 50, "critical": 100}
REST_PATH = "/REST/2.0"

# call() maps refused/timed-out connections, 5xx and 429 to BackendUnavailable; every other answer comes
# back here so that a refusal can say what to fix in maint.yml or in RT.
_ANSWERED: frozenset[int] = frozenset(range(200, 300)) | (frozenset(range(400, 500)) - {429})


@dataclass(frozen=True)
class _Queue:
    id: int
    name: str
    custom_fields: frozenset[str]


class RTBackend:
    """Tickets in Request Tracker 5, through its REST2 API (requests), as an RT user with a password or a token.

    Dedup: every ticket maint opens carries the dedup key ``HOST/CHECK`` in a single-value ticket custom
    field (``custom_fields.key``, default ``maint-key``), and the host and check in two more when the
    queue has them. ``find`` is the TicketSQL search ``CF.{maint-key} = 'KEY' AND Status = '__Active__'``
    (the lifecycle's active statuses: new, open, stalled by default), oldest ticket first; the reference
    is RT's ticket number as a string. ``open`` refuses to create a ticket in a queue that lacks the key
    custom field, since such a ticket could never be found again.

    Tiers: a ticket is created in ``message.queue`` (from maint's routing rules) or else in the queue
    that ``queues`` gives for its tier; ``escalate`` moves it to the new tier's queue and comments why.
    ``priorities`` turns the severity into RT's priority when the ticket is created.

    Idempotent re-sends: every text maint sends (the opening message and each comment) ends with a line
    holding ``message.marker``; ``delivered`` searches the ticket's attachments for it. Actions that
    change the ticket (queue, status) do so before posting their comment, so a marker on the ticket
    means the whole action is done. Status and queue changes are read back, because REST2 answers
    HTTP 200 even when RT declines a change.

    The RT user needs SeeQueue, ShowTicket, CreateTicket, ModifyTicket, CommentOnTicket,
    ShowTicketComments, SeeCustomField, SetInitialCustomField and ModifyCustomField on the queues.
    """

    description: ClassVar[str] = "Request Tracker 5 tickets through its REST2 API, found by a custom field."
    options: ClassVar[dict[str, Option]] = {
        "url": Option(str, "RT's web address, including its web path if any (REST2 is below it at /REST/2.0).",
                      required=True, example="https://rt.example.org/rt"),
        "user": Option(str, "RT user that maint acts as (with password; see the class help for its rights).",
                       example="maint"),
        "password": Option(str, "Password of the RT user.", secret=True, example="env:MAINT_RT_PASSWORD"),
        "token": Option(str, "RT auth token of the user, instead of user and password (sent as "
                        "'Authorization: token ...').", secret=True, example="file:/etc/maint/rt-token"),
        "queues": Option(dict, "RT queue per tier (tiers left out keep their default); a routing rule's queue "
                         "takes precedence.", default=DEFAULT_QUEUES, example=DEFAULT_QUEUES),
        "custom_fields": Option(dict, "Names of the single-value ticket custom fields for the dedup key (required "
                                "on every queue maint uses), the host and the check (set when the queue has them).",
                                default=DEFAULT_CUSTOM_FIELDS, example=DEFAULT_CUSTOM_FIELDS),
        "priorities": Option(dict, "RT priority per severity at creation (severities left out: RT's default).",
                             default=DEFAULT_PRIORITIES, example={"warning": 50, "critical": 100}),
        "verify_tls": Option((bool, str), "Verify RT's TLS certificate (true/false, or the path of a CA bundle).",
                             default=True, example=True),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings with their defaults applied; no network I/O happens here."""
        self.name = name
        self.timeout = float(timeout)
        url = str(options.get("url") or "").strip().rstrip("/")
        if url.endswith(REST_PATH):
            url = url[: -len(REST_PATH)]
        self.url = url
        self.user = str(options["user"]) if options.get("user") else None
        self.password = str(options["password"]) if options.get("password") else None
        self.token = str(options["token"]) if options.get("token") else None
        self.queues = _merged(DEFAULT_QUEUES, options.get("queues"))
        self.custom_fields = _merged(DEFAULT_CUSTOM_FIELDS, options.get("custom_fields"))
        raw_priorities = options.get("priorities")
        priorities = raw_priorities if isinstance(raw_priorities, Mapping) else DEFAULT_PRIORITIES
        self.priorities = {
            str(severity): int(value)
            for severity, value in priorities.items()
            if isinstance(value, int | str) and str(value).lstrip("-").isdigit()
        }
        verify = options.get("verify_tls")
        self.verify_tls: bool | str = True if verify is None else verify if isinstance(verify, str) else bool(verify)
        self._system = f"rt backend '{name}'"
        self._http: requests.Session | None = None
        self._queue_cache: dict[str, _Queue] = {}

    # The protocol

    def find(self, key: str) -> str | None:
        """The number of the oldest active ticket whose key custom field is ``key``, or None.

        Raises BackendUnavailable when RT cannot be reached or fails, BackendRejected when it refuses.
        """
        query = f"CF.{{{self.custom_fields['key']}}} = {_quoted(key)} AND Status = '__Active__'"
        found = self._json(
            "GET", "/tickets", "search tickets",
            params={"query": query, "orderby": "id", "order": "ASC", "per_page": 1, "fields": "Status"},
        )  # fmt: skip
        items = found.get("items") if isinstance(found, dict) else None
        if not items:
            return None
        return str(items[0]["id"])

    def open(self, message: TicketMessage) -> str:
        """Create the ticket in the tier's (or the routing rule's) queue; returns its number.

        Raises BackendRejected when the queue does not exist, lacks the key custom field or the user
        may not create tickets there; BackendUnavailable when RT cannot be reached or fails.
        """
        queue = self._queue(self._queue_name(message))
        key_field = self.custom_fields["key"]
        if key_field not in queue.custom_fields:
            raise BackendRejected(
                f"{self._system}: queue '{queue.name}' has no ticket custom field '{key_field}', so maint could "
                "not find its tickets again: create it in RT (single-value freeform, applied to the queue) or set "
                f"tickets.backends.{self.name}.custom_fields.key"
            )
        values = {"key": message.key, "host": message.host, "check": message.check}
        custom_fields = {
            self.custom_fields[role]: value
            for role, value in values.items()
            if self.custom_fields.get(role) in queue.custom_fields
        }
        payload: dict[str, Any] = {
            "Queue": queue.id,
            "Subject": message.subject,
            "Content": text_with_marker(message) + "\n",
            "ContentType": "text/plain",
            "CustomFields": custom_fields,
        }
        if message.severity in self.priorities:
            payload["Priority"] = self.priorities[message.severity]
        created = self._json("POST", "/ticket", f"create a ticket in queue '{queue.name}'", json=payload)
        ref = str(created.get("id") or "") if isinstance(created, dict) else ""
        if not ref.isdigit():
            raise BackendRejected(f"{self._system}: RT created no ticket (answer: {_excerpt(str(created))})")
        ticket = self._ticket(ref)
        stored = {entry.get("name"): entry.get("values") for entry in ticket.get("CustomFields") or []}
        if message.key not in (stored.get(key_field) or []):
            # The ticket exists now: failing would make the outbox create another one on every attempt.
            log.warning(
                "%s: RT did not store custom field '%s' on ticket %s; give %s the SetInitialCustomField right, "
                "or maint cannot find this ticket by its key",
                self._system, key_field, ref, self._who,
            )  # fmt: skip
        return ref

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Add ``message.body`` (and the marker) to ticket ``ref`` as a comment; raises as :meth:`open`."""
        ticket_id = self._ticket_id(ref)
        payload = {"Content": text_with_marker(message) + "\n", "ContentType": "text/plain"}
        try:
            self._json("POST", f"/ticket/{ticket_id}/comment", f"comment on ticket {ticket_id}", json=payload)
        except BackendRejected:
            self._ticket(ticket_id)  # a clearer message when the ticket itself is gone
            raise

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Move ticket ``ref`` to the queue of ``message.tier`` (or ``message.queue``), then comment why.

        Raises BackendRejected when the queue does not exist or RT declines the move; as :meth:`open`.
        """
        ticket_id = self._ticket_id(ref)
        queue = self._queue(self._queue_name(message))
        outcome = self._json(
            "PUT", f"/ticket/{ticket_id}", f"move ticket {ticket_id}",
            not_found=self._no_ticket(ticket_id), json={"Queue": queue.id},
        )  # fmt: skip
        now = self._ticket(ticket_id).get("Queue") or {}
        if str(now.get("id")) != str(queue.id):
            raise BackendRejected(
                f"{self._system}: RT did not move ticket {ticket_id} to queue '{queue.name}': {_results(outcome)} "
                f"({self._who} needs ModifyTicket on the ticket and CreateTicket in '{queue.name}')"
            )
        self.comment(ticket_id, message)

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Set ticket ``ref`` to resolved, then add ``message.body`` as a comment; raises as :meth:`escalate`."""
        ticket_id = self._ticket_id(ref)
        self._set_status(ticket_id, "resolved")
        self.comment(ticket_id, message)

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Set ticket ``ref`` back to open, then add ``message.body`` as a comment; raises as :meth:`escalate`."""
        ticket_id = self._ticket_id(ref)
        self._set_status(ticket_id, "open")
        self.comment(ticket_id, message)

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Whether a text on ticket ``ref`` (its history's attachments) holds ``message.marker``.

        Raises BackendUnavailable when RT cannot be reached or fails, BackendRejected when it refuses.
        """
        ticket_id = self._ticket_id(ref)
        # RT narrows it down with LIKE; the exact token check here keeps maint-event-1 from matching maint-event-12.
        found = self._json(
            "POST", f"/ticket/{ticket_id}/attachments", f"search the history of ticket {ticket_id}",
            params={"fields": "Content", "per_page": 100},
            json=[{"field": "Content", "operator": "LIKE", "value": message.marker}],
        )  # fmt: skip
        token = re.compile(rf"(?<![\w-]){re.escape(message.marker)}(?!\d)")
        items = found.get("items") if isinstance(found, dict) else None
        return any(token.search(str(item.get("Content") or "")) for item in items or [])

    # REST2

    @property
    def _who(self) -> str:
        return "the token's owner" if self.token else f"user '{self.user}'"

    def _session(self) -> requests.Session:
        if self._http is not None:
            return self._http
        if not self.url:
            raise BackendRejected(f"{self._system}: set tickets.backends.{self.name}.url to RT's web address")
        if not self.token and not (self.user and self.password):
            raise BackendRejected(f"{self._system}: set tickets.backends.{self.name}.user and password, or token")
        from maint.tickets.backends.http import session

        http = session({"Authorization": f"token {self.token}"} if self.token else None)
        if not self.token and self.user and self.password:
            http.auth = (self.user, self.password)
        http.verify = self.verify_tls
        self._http = http
        return http

    def _json(self, method: str, path: str, doing: str, *, not_found: str | None = None, **kwargs: Any) -> Any:
        """Send one REST2 request; returns the parsed JSON answer, or raises the error for a refusal."""
        from maint.tickets.backends.http import call

        url = f"{self.url}{REST_PATH}{path}"
        response = call(self._session(), method, url, self.timeout, system=self._system, ok=_ANSWERED, **kwargs)
        if response.status_code >= 400:
            self._refused(response, doing, not_found)
        try:
            return response.json()
        except ValueError:
            raise BackendRejected(
                f"{self._system}: {url} did not answer with JSON (HTTP {response.status_code}): is "
                f"tickets.backends.{self.name}.url RT's web address?"
            ) from None

    def _refused(self, response: requests.Response, doing: str, not_found: str | None) -> NoReturn:
        status = response.status_code
        try:
            answer = response.json()
            detail = str(answer.get("message")) if isinstance(answer, dict) and answer.get("message") else None
        except ValueError:
            detail = None
        detail = _excerpt(mask(detail or response.text, [self.password or "", self.token or ""]))
        if status == 401:
            credentials = "token" if self.token else "user and password"
            raise BackendRejected(
                f"{self._system}: RT refused the login (HTTP 401): check tickets.backends.{self.name}.{credentials}"
            )
        if status == 403:
            raise BackendRejected(f"{self._system}: RT does not let {self._who} {doing} (HTTP 403: {detail})")
        if status == 404:
            hint = not_found or (
                f"RT has no such resource at {response.url.split('?', 1)[0]}: is tickets.backends.{self.name}.url "
                "RT's web address?"
            )
            raise BackendRejected(f"{self._system}: cannot {doing}: {hint}")
        raise BackendRejected(f"{self._system}: RT refused to {doing} (HTTP {status}: {detail})")

    def _ticket(self, ticket_id: str) -> dict[str, Any]:
        record = self._json(
            "GET", f"/ticket/{ticket_id}", f"read ticket {ticket_id}",
            not_found=self._no_ticket(ticket_id),
        )  # fmt: skip
        if not isinstance(record, dict):
            raise BackendRejected(f"{self._system}: unexpected answer for ticket {ticket_id}: {_excerpt(str(record))}")
        return record

    def _no_ticket(self, ticket_id: str) -> str:
        return f"ticket {ticket_id} does not exist in RT (or {self._who} may not see it)"

    def _queue(self, name: str) -> _Queue:
        cached = self._queue_cache.get(name)
        if cached is not None:
            return cached
        record = self._json(
            "GET", f"/queue/{quote(name, safe='')}", f"use queue '{name}'",
            not_found=f"queue '{name}' does not exist in RT (or {self._who} lacks SeeQueue on it): check "
            f"tickets.backends.{self.name}.queues and the routing rules",
        )  # fmt: skip
        if not isinstance(record, dict) or "id" not in record:
            raise BackendRejected(f"{self._system}: unexpected answer for queue '{name}': {_excerpt(str(record))}")
        fields = frozenset(str(entry.get("name")) for entry in record.get("TicketCustomFields") or [])
        queue = _Queue(id=int(record["id"]), name=str(record.get("Name") or name), custom_fields=fields)
        self._queue_cache[name] = queue
        return queue

    def _queue_name(self, message: TicketMessage) -> str:
        if message.queue:
            return message.queue
        queue = self.queues.get(message.tier)
        if not queue:
            raise BackendRejected(
                f"{self._system}: no queue for tier {message.tier}: add it to tickets.backends.{self.name}.queues"
            )
        return queue

    def _set_status(self, ticket_id: str, status: str) -> None:
        outcome = self._json(
            "PUT", f"/ticket/{ticket_id}", f"set ticket {ticket_id} to {status}",
            not_found=self._no_ticket(ticket_id), json={"Status": status},
        )  # fmt: skip
        now = str(self._ticket(ticket_id).get("Status") or "")
        if now != status:
            raise BackendRejected(
                f"{self._system}: RT left ticket {ticket_id} {now or 'unchanged'} instead of {status}: "
                f"{_results(outcome)}"
            )

    def _ticket_id(self, ref: str) -> str:
        ticket_id = str(ref).strip().lstrip("#")
        if not ticket_id.isdigit():
            raise BackendRejected(f"{self._system}: '{_excerpt(ticket_id)}' is not an RT ticket number")
        return ticket_id


def _merged(defaults: Mapping[str, str], configured: Any) -> dict[str, str]:
    merged = dict(defaults)
    if isinstance(configured, Mapping):
        merged.update({str(key): str(value) for key, value in configured.items() if value})
    return merged


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _results(outcome: Any) -> str:
    if isinstance(outcome, list) and outcome:
        return "; ".join(str(line) for line in outcome)
    return "no change reported"


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:200]
