"""The ``zendesk`` ticket backend: Zendesk Support tickets through the Support API v2 (requests)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from maint.tickets.backends import BackendRejected, Option, TicketMessage, has_marker, text_with_marker

if TYPE_CHECKING:
    import requests

SYSTEM = "zendesk"
CLOSED_STATUSES = ("solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
DEFAULT_PRIORITIES = {"L1": "normal", "L2": "high", "L3": "urgent"}
PAGE_SIZE = 100
MAX_PAGES = 20  # 2,000 tickets or comments: far beyond one dedup key's history


class ZendeskBackend:
    """Tickets in Zendesk Support, through the Support API v2 with an API token.

    Requests go through :mod:`maint.tickets.backends.http` rather than the zenpy client: zenpy builds
    every URL as ``https://{subdomain}.{domain}`` (no port, no plain-HTTP base URL to point it at a test
    double or a proxy) and on HTTP 429 it sleeps for the server's Retry-After, so a rate-limited backend
    would hold the outbox for minutes instead of at most ``timeout`` seconds.

    Dedup: the ticket's ``external_id`` is the dedup key (``HOST/CHECK``); it also carries the tags
    ``maint`` and a key tag (``maint_`` plus a safe form of the key and a short hash), for views and
    triggers. ``find`` lists the tickets with that external id (``GET /api/v2/tickets?external_id=``,
    which, unlike the search API, sees a ticket as soon as it exists) and returns the newest one whose
    status is neither solved nor closed.

    Every text is a private (internal) comment whose last line is the action's marker
    (``maint-event-N``); ``delivered`` looks for that line in the ticket's comments. An escalation
    sets the tier's priority (``priorities``) and group (``groups``, or the routing rule's queue when
    it is a group id) and adds the comment in the same update; ``resolve`` sets status solved and
    ``reopen`` status open, each with its comment, so a status change and its note never come apart.
    A closed ticket cannot be updated any more (Zendesk's rule): such an update is rejected.
    """

    description: ClassVar[str] = "Zendesk Support tickets (API v2, API token), deduplicated by external id."
    options: ClassVar[dict[str, Option]] = {
        "subdomain": Option(str, "Zendesk subdomain: tickets go to https://SUBDOMAIN.zendesk.com (or set url).",
                            example="example"),
        "url": Option(str, "Base URL of the Zendesk account instead of subdomain (e.g. a host-mapped brand).",
                      example="https://support.example.org"),
        "email": Option(str, "Email address of the agent the API token belongs to.", required=True,
                        example="maint@example.org"),
        "token": Option(str, "Zendesk API token (Admin Center > Apps and integrations > Zendesk API).",
                        required=True, secret=True, example="env:MAINT_ZENDESK_TOKEN"),
        "priorities": Option(dict, "Ticket priority per tier: low, normal, high or urgent.",
                             default=DEFAULT_PRIORITIES, example={"L1": "normal", "L2": "high", "L3": "urgent"}),
        "groups": Option(dict, "Group id per tier (tickets move to it on escalation); a numeric routing queue wins.",
                         default={}, example={"L1": 360001234567, "L2": 360001234568}),
        "tags": Option(list, "Extra tags for every ticket (besides maint and the key tag).", default=[],
                       example=["infrastructure"]),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings with defaults applied; no network I/O happens here."""
        self.name = name
        self.timeout = float(timeout)
        url = str(options.get("url") or "").rstrip("/")
        subdomain = str(options.get("subdomain") or "").strip()
        self.base_url = url or (f"https://{subdomain}.zendesk.com" if subdomain else "")
        self.email = str(options.get("email") or "")
        self.token = str(options.get("token") or "")
        priorities = options.get("priorities")
        self.priorities = _mapping(priorities if isinstance(priorities, Mapping) else DEFAULT_PRIORITIES)
        self.groups = _mapping(options.get("groups"))
        tags = options.get("tags")
        self.tags = [str(tag) for tag in tags] if isinstance(tags, list) else []
        self._http: requests.Session | None = None

    # The protocol

    def find(self, key: str) -> str | None:
        """The id of the newest ticket with external id ``key`` that is not solved or closed, or None.

        Raises BackendUnavailable (down, slow, 5xx, 429) or BackendRejected (credentials, other 4xx).
        """
        newest: int | None = None
        for ticket in self._pages("/tickets.json", "tickets", {"external_id": key}):
            if ticket.get("external_id") == key and ticket.get("status") not in CLOSED_STATUSES:
                number = int(ticket["id"])
                newest = number if newest is None else max(newest, number)
        return None if newest is None else str(newest)

    def open(self, message: TicketMessage) -> str:
        """Create the ticket (subject, private first comment, external id, tags, priority, group).

        Returns the ticket id; raises as :meth:`find`.
        """
        ticket: dict[str, Any] = {
            "subject": message.subject,
            "comment": {"body": text_with_marker(message), "public": False},
            "external_id": message.key,
            "tags": ["maint", key_tag(message.key), *self.tags],
            **self._routing(message),
        }
        answer = self._request("POST", "/tickets.json", json={"ticket": ticket}, ok=(200, 201))
        try:
            return str(int(answer.json()["ticket"]["id"]))
        except (ValueError, KeyError, TypeError):
            raise BackendRejected(f"{SYSTEM}: unexpected answer to creating a ticket: {answer.text[:200]}") from None

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Add ``message.body`` as a private comment to ticket ``ref``; raises as :meth:`find`."""
        self._update(ref, message, {})

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Set the new tier's priority and group and add the comment, in one update; raises as :meth:`find`."""
        self._update(ref, message, self._routing(message))

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Set status solved with the note as a private comment; raises as :meth:`find`."""
        self._update(ref, message, {"status": "solved"})

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Set status open with the note as a private comment; raises as :meth:`find`."""
        self._update(ref, message, {"status": "open"})

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Whether a comment of ticket ``ref`` carries ``message.marker``; raises as :meth:`find`."""
        path = f"/tickets/{_ticket_id(ref)}/comments.json"
        return any(has_marker(str(comment.get("body") or ""), message.marker)
                   for comment in self._pages(path, "comments", {}))  # fmt: skip

    # Helpers

    def _routing(self, message: TicketMessage) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        priority = self.priorities.get(message.tier)
        if priority:
            fields["priority"] = priority
        group = message.queue if message.queue and message.queue.isdigit() else self.groups.get(message.tier)
        if group:
            if not str(group).isdigit():
                raise BackendRejected(f"{SYSTEM}: group '{group}' for {message.tier} is not a group id: fix 'groups'")
            fields["group_id"] = int(group)
        return fields

    def _update(self, ref: str, message: TicketMessage, fields: dict[str, Any]) -> None:
        ticket = {**fields, "comment": {"body": text_with_marker(message), "public": False}}
        self._request("PUT", f"/tickets/{_ticket_id(ref)}.json", json={"ticket": ticket})

    def _pages(self, path: str, items: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        # Cursor pagination: links.next is the whole URL of the next page while meta.has_more holds.
        url: str | None = self._url(path)
        query: dict[str, Any] | None = {**params, "page[size]": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            body = self._request("GET", url, params=query).json()
            yield from body.get(items) or []
            more = (body.get("meta") or {}).get("has_more")
            url = (body.get("links") or {}).get("next") if more else None
            if url is not None and not str(url).startswith(f"{self.base_url}/"):
                raise BackendRejected(f"{SYSTEM}: the next page is on another site ({url}): check 'url'")
            query = None

    def _url(self, path: str) -> str:
        if not self.base_url:
            raise BackendRejected(f"{SYSTEM}: set 'subdomain' or 'url' in tickets.backends.{self.name}")
        return f"{self.base_url}/api/v2{path}"

    def _request(self, method: str, path_or_url: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        from maint.tickets.backends.http import call, session

        url = path_or_url if "://" in path_or_url else self._url(path_or_url)
        if not self.email or not self.token:
            raise BackendRejected(f"{SYSTEM}: set 'email' and 'token' in tickets.backends.{self.name}")
        if self._http is None:
            self._http = session()
            self._http.auth = (f"{self.email}/token", self.token)
        try:
            return call(self._http, method, url, self.timeout, system=SYSTEM, ok=ok, **kwargs)
        except BackendRejected as error:
            raise BackendRejected(f"{error}{_hint(str(error))}") from None


def key_tag(key: str) -> str:
    """The Zendesk tag for dedup ``key``: lowercase letters, digits and underscores plus a short hash.

    Tags cannot hold spaces or slashes; the hash keeps two keys that differ only there apart.
    """
    safe = re.sub(r"[^a-z0-9_]+", "_", key.lower()).strip("_")[:60]
    return f"maint_{safe}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _ticket_id(ref: str) -> int:
    if not ref.strip().isdigit():
        raise BackendRejected(f"{SYSTEM}: '{ref}' is not a Zendesk ticket id")
    return int(ref)


def _mapping(value: Any) -> dict[str, str]:
    return {str(key): str(item) for key, item in value.items()} if isinstance(value, Mapping) else {}


def _hint(message: str) -> str:
    if "HTTP 401" in message:
        return " (check 'email' and 'token': the API token must belong to that agent)"
    if "HTTP 403" in message:
        return " (the agent of 'email' lacks the permission, or token access is off in Admin Center)"
    if "HTTP 404" in message:
        return " (no such ticket, or 'subdomain'/'url' names another account)"
    if "HTTP 422" in message:
        return " (check 'priorities' and 'groups'; a closed ticket cannot be updated)"
    return ""
