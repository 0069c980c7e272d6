"""A fake of the Zendesk Support API v2 (tickets and ticket comments) on loopback, for backend tests.

Zendesk is a SaaS that cannot run here, so this fake, built on :mod:`http_fake` (a real HTTP server),
follows the documented request and response shapes of the endpoints the ``zendesk`` backend uses:

- ``GET /api/v2/tickets.json?external_id=...`` (List Tickets, cursor pagination with ``page[size]``,
  ``meta.has_more`` and ``links.next``),
- ``POST /api/v2/tickets.json`` (Create Ticket, 201 ``{"ticket": {...}}``),
- ``PUT /api/v2/tickets/{id}.json`` (Update Ticket, 200 ``{"ticket": {...}, "audit": {...}}``),
- ``GET /api/v2/tickets/{id}/comments.json`` (List Comments).

It checks what the real API checks where it matters to the backend: API token authentication
(``Authorization: Basic base64("{email}/token:{token}")``, else 401 ``{"error": "Couldn't authenticate
you"}``), a JSON content type on writes, 404 ``RecordNotFound`` for unknown tickets, and 422
``RecordInvalid`` with ``details`` for a blank comment, an unknown priority, status or group, and any
update of a closed ticket. ``rate_limited = True`` answers 429 to everything.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any
from urllib.parse import urlencode

from http_fake import FakeHTTPServer, Request

PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


def header(request: Request, name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None."""
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


class FakeZendesk:
    """The Zendesk fake: ``tickets`` and ``comments`` by ticket id, ``server`` for faults and the request log."""

    def __init__(self, email: str = "agent@example.org", token: str = "zendesk-token-1234",
                 groups: tuple[int, ...] = (100, 200, 300)) -> None:  # fmt: skip
        self.email = email
        self.token = token
        self.groups = set(groups)
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.rate_limited = False
        self._ids = itertools.count(1001)
        self._comment_ids = itertools.count(5001)
        self.server = FakeHTTPServer()
        route = self.server.route
        route("GET", r"/api/v2/tickets\.json")(self._guard(self.list_tickets))
        route("POST", r"/api/v2/tickets\.json")(self._guard(self.create_ticket))
        route("PUT", r"/api/v2/tickets/(?P<id>\d+)\.json")(self._guard(self.update_ticket))
        route("GET", r"/api/v2/tickets/(?P<id>\d+)/comments\.json")(self._guard(self.list_comments))

    @property
    def url(self) -> str:
        """The base URL (what the backend's ``url`` option takes)."""
        return self.server.url

    def start(self) -> FakeZendesk:
        """Start serving; returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Close the port."""
        self.server.stop()

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> tuple[int, Any]:
            if self.rate_limited:
                return 429, {"error": "TooManyRequests", "description": "Rate limit exceeded, retry later"}
            expected = base64.b64encode(f"{self.email}/token:{self.token}".encode()).decode()
            if header(request, "Authorization") != f"Basic {expected}":
                return 401, {"error": "Couldn't authenticate you"}
            if request.method in ("POST", "PUT"):
                if not (header(request, "Content-Type") or "").startswith("application/json"):
                    return 400, {"error": "InvalidContentType", "description": "Content-Type must be application/json"}
                try:
                    body = request.json()
                except ValueError:
                    return 400, {"error": "InvalidJSON", "description": "The request body is not valid JSON"}
                if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
                    return 400, {"error": "InvalidParameter", "description": "ticket parameter is missing"}
            result: tuple[int, Any] = handler(request)
            return result

        return guarded

    def _url(self, path: str) -> str:
        return f"{self.server.url}/api/v2{path}"

    def _invalid(self, field: str, text: str) -> tuple[int, Any]:
        return 422, {"error": "RecordInvalid", "description": "Record validation errors",
                     "details": {field: [{"description": text, "error": "InvalidValue"}]}}  # fmt: skip

    def _check_fields(self, ticket: dict[str, Any]) -> tuple[int, Any] | None:
        if "priority" in ticket and ticket["priority"] not in PRIORITIES:
            return self._invalid("priority", f"Priority: {ticket['priority']} is not valid")
        if "status" in ticket and ticket["status"] not in STATUSES:
            return self._invalid("status", f"Status: {ticket['status']} is not valid")
        if "group_id" in ticket and ticket["group_id"] not in self.groups:
            return self._invalid("group_id", "Group: is invalid")
        if "tags" in ticket and not all(isinstance(tag, str) and " " not in tag for tag in ticket["tags"]):
            return self._invalid("tags", "Tags: must be a list of tags without spaces")
        comment = ticket.get("comment")
        if comment is not None and (not isinstance(comment, dict) or not str(comment.get("body") or "").strip()):
            return self._invalid("comment", "Comment: body cannot be blank")
        return None

    def _add_comment(self, ticket_id: int, comment: dict[str, Any]) -> None:
        self.comments[ticket_id].append({
            "id": next(self._comment_ids), "type": "Comment", "body": comment["body"],
            "plain_body": comment["body"], "public": bool(comment.get("public", True)), "author_id": 42,
        })  # fmt: skip

    def list_tickets(self, request: Request) -> tuple[int, Any]:
        """GET /api/v2/tickets.json: all tickets, or those with ``external_id``, a cursor page at a time."""
        external_id = request.query.get("external_id", [None])[0]
        found = [t for t in sorted(self.tickets.values(), key=lambda t: t["id"])
                 if external_id is None or t["external_id"] == external_id]  # fmt: skip
        return 200, self._page(request, "tickets", found, "/tickets.json")

    def _page(self, request: Request, name: str, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
        size = min(int(request.query.get("page[size]", ["100"])[0]), 100)
        after = int(request.query.get("page[after]", ["0"])[0])
        page = items[after : after + size]
        more = after + size < len(items)
        query = urlencode({k: v[0] for k, v in request.query.items() if k != "page[after]"})
        return {
            name: page,
            "meta": {"has_more": more, "after_cursor": str(after + size) if more else None, "before_cursor": None},
            "links": {"next": f"{self._url(path)}?{query}&page[after]={after + size}" if more else None,
                      "prev": None},
        }  # fmt: skip

    def create_ticket(self, request: Request) -> tuple[int, Any]:
        """POST /api/v2/tickets.json: needs a subject or a first comment; 201 with the new ticket."""
        fields = request.json()["ticket"]
        comment = fields.get("comment")
        if not isinstance(comment, dict) or not str(comment.get("body") or "").strip():
            return self._invalid("description", "Description: cannot be blank")
        problem = self._check_fields(fields)
        if problem:
            return problem
        ticket_id = next(self._ids)
        ticket = {
            "id": ticket_id, "url": self._url(f"/tickets/{ticket_id}.json"), "subject": fields.get("subject"),
            "description": comment["body"], "status": fields.get("status", "new"),
            "priority": fields.get("priority"), "group_id": fields.get("group_id"),
            "external_id": fields.get("external_id"), "tags": sorted({t.lower() for t in fields.get("tags", [])}),
            "requester_id": 42, "submitter_id": 42, "assignee_id": None,
        }  # fmt: skip
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = []
        self._add_comment(ticket_id, comment)
        return 201, {"ticket": ticket}

    def update_ticket(self, request: Request) -> tuple[int, Any]:
        """PUT /api/v2/tickets/{id}.json: set fields, add a comment; a closed ticket refuses updates."""
        ticket_id = int(request.match["id"])
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return 404, {"error": "RecordNotFound", "description": "Not found"}
        if ticket["status"] == "closed":
            return self._invalid("status", "Status: closed prevents ticket update")
        fields = request.json()["ticket"]
        problem = self._check_fields(fields)
        if problem:
            return problem
        for name in ("subject", "status", "priority", "group_id", "external_id"):
            if name in fields:
                ticket[name] = fields[name]
        if fields.get("status") == "solved" and ticket["assignee_id"] is None:
            ticket["assignee_id"] = 42  # an agent who solves an unassigned ticket becomes its assignee
        if "comment" in fields:
            self._add_comment(ticket_id, fields["comment"])
        return 200, {"ticket": ticket, "audit": {"ticket_id": ticket_id, "events": []}}

    def list_comments(self, request: Request) -> tuple[int, Any]:
        """GET /api/v2/tickets/{id}/comments.json: the comments, oldest first, a cursor page at a time."""
        ticket_id = int(request.match["id"])
        if ticket_id not in self.tickets:
            return 404, {"error": "RecordNotFound", "description": "Not found"}
        return 200, self._page(request, "comments", self.comments[ticket_id], f"/tickets/{ticket_id}/comments.json")
