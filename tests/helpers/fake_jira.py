"""A fake of the Jira Cloud REST API v2 (issues, JQL search, comments, transitions) on loopback.

Jira Cloud is a SaaS that cannot run here, so this fake, built on :mod:`http_fake` (a real HTTP
server), follows the documented request and response shapes of the Jira Cloud platform REST API v2
endpoints the ``jira`` backend (through the ``jira`` client library) uses:

- ``GET /rest/api/2/serverInfo`` (``deploymentType: Cloud``) and ``GET /rest/api/2/field``,
- ``GET /rest/api/2/search/jql`` (enhanced JQL search: ``issues`` and ``isLast``, no ``total``),
- ``POST /rest/api/2/issue`` (201 ``{"id", "key", "self"}``), ``GET``/``PUT /rest/api/2/issue/{key}``
  (edit: ``fields`` and ``update`` operations, 204),
- ``GET``/``POST /rest/api/2/issue/{key}/comment``,
- ``GET``/``POST /rest/api/2/issue/{key}/transitions`` (transitions with ``to.statusCategory``).

It checks what Jira checks where it matters: authentication (basic ``email:token`` or a bearer
token; 401 otherwise), 404 ``Issue does not exist or you do not have permission to see it.``, and 400
``{"errorMessages": [...], "errors": {field: message}}`` for an unknown project, issue type or
priority, a missing summary, a label with a space, an empty comment, a transition that is not
available from the issue's status, and JQL outside the small grammar the backend uses (labels =
"X" AND statusCategory != Done, optionally ORDER BY created DESC). The workflow is a simple one:
To Do, In Progress (category indeterminate) and Done. ``rate_limited = True`` answers 429.
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

from http_fake import FakeHTTPServer, Request

API = "/rest/api/2"
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
CATEGORIES = {
    "new": {"id": 2, "key": "new", "name": "To Do", "colorName": "blue-gray"},
    "indeterminate": {"id": 4, "key": "indeterminate", "name": "In Progress", "colorName": "yellow"},
    "done": {"id": 3, "key": "done", "name": "Done", "colorName": "green"},
}
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"), "Done": ("10001", "done")}
WORKFLOW = {  # status -> the transitions available from it: (id, name, target status)
    "To Do": [("21", "Start Progress", "In Progress"), ("31", "Resolve Issue", "Done")],
    "In Progress": [("11", "Stop Progress", "To Do"), ("31", "Resolve Issue", "Done")],
    "Done": [("41", "Reopen Issue", "To Do")],
}
JQL = re.compile(r'labels\s*=\s*"(?P<label>[^"\s]+)"\s+AND\s+statusCategory\s*!=\s*Done'
                 r"(\s+ORDER\s+BY\s+created\s+DESC)?\s*", re.IGNORECASE)  # fmt: skip
SYSTEM_FIELDS = ("summary", "description", "labels", "priority", "status", "issuetype", "project", "created")


def header(request: Request, name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None."""
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def bad(errors: dict[str, str] | None = None, messages: list[str] | None = None, status: int = 400) -> tuple[int, Any]:
    """A Jira error answer."""
    return status, {"errorMessages": messages or [], "errors": errors or {}}


class FakeJira:
    """The Jira fake: ``issues`` by key and their ``comments``; ``server`` for faults and the request log."""

    def __init__(self, user: str = "maint@example.org", token: str = "jira-token-5678",
                 projects: dict[str, tuple[str, ...]] | None = None) -> None:  # fmt: skip
        self.user = user
        self.token = token
        self.projects = projects or {"OPS": ("Task", "Bug"), "NET": ("Task",)}
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.rate_limited = False
        self._ids = itertools.count(10001)
        self._numbers: dict[str, itertools.count[int]] = {key: itertools.count(1) for key in self.projects}
        self.server = FakeHTTPServer()
        route = self.server.route
        route("GET", rf"{API}/serverInfo")(self._guard(self.server_info, anonymous=True))
        route("GET", rf"{API}/field")(self._guard(self.fields))
        route("GET", rf"{API}/search/jql")(self._guard(self.search))
        route("POST", rf"{API}/issue")(self._guard(self.create_issue))
        route("GET", rf"{API}/issue/(?P<key>[^/]+)")(self._guard(self.get_issue))
        route("PUT", rf"{API}/issue/(?P<key>[^/]+)")(self._guard(self.edit_issue))
        route("GET", rf"{API}/issue/(?P<key>[^/]+)/comment")(self._guard(self.get_comments))
        route("POST", rf"{API}/issue/(?P<key>[^/]+)/comment")(self._guard(self.add_comment))
        route("GET", rf"{API}/issue/(?P<key>[^/]+)/transitions")(self._guard(self.get_transitions))
        route("POST", rf"{API}/issue/(?P<key>[^/]+)/transitions")(self._guard(self.do_transition))

    @property
    def url(self) -> str:
        """The site's base URL (what the backend's ``url`` option takes)."""
        return self.server.url

    def start(self) -> FakeJira:
        """Start serving; returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Close the port."""
        self.server.stop()

    def status_of(self, key: str) -> str:
        """The name of issue ``key``'s status."""
        return str(self.issues[key]["fields"]["status"]["name"])

    def _guard(self, handler: Any, anonymous: bool = False) -> Any:
        basic = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()

        def guarded(request: Request) -> tuple[int, Any]:
            if self.rate_limited:
                return 429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}
            authorization = header(request, "Authorization")
            if authorization not in (basic, f"Bearer {self.token}") and not (anonymous and authorization is None):
                return 401, {"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}}
            if request.method in ("POST", "PUT"):
                try:
                    body = request.json()
                except ValueError:
                    return bad(messages=["Unexpected character: the request body is not JSON."])
                if not isinstance(body, dict):
                    return bad(messages=["The request body must be a JSON object."])
            result: tuple[int, Any] = handler(request)
            return result

        return guarded

    def _issue(self, key: str) -> dict[str, Any] | None:
        if key in self.issues:
            return self.issues[key]
        return next((issue for issue in self.issues.values() if issue["id"] == key), None)

    def _status(self, name: str) -> dict[str, Any]:
        status_id, category = STATUSES[name]
        return {"self": f"{self.url}{API}/status/{status_id}", "id": status_id, "name": name,
                "statusCategory": CATEGORIES[category]}  # fmt: skip

    def _view(self, issue: dict[str, Any], request: Request) -> dict[str, Any]:
        wanted = [name for value in request.query.get("fields", []) for name in value.split(",") if name]
        if not wanted or "*all" in wanted:
            return issue
        return {**issue, "fields": {name: value for name, value in issue["fields"].items() if name in wanted}}

    def _bad_labels(self, labels: list[Any]) -> tuple[int, Any] | None:
        for label in labels:
            if not isinstance(label, str) or not label or " " in label:
                return bad({"labels": f"The label '{label}' contains spaces which is invalid."})
        return None

    def server_info(self, request: Request) -> tuple[int, Any]:
        """GET serverInfo: a Cloud site."""
        return 200, {"baseUrl": self.url, "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                     "deploymentType": "Cloud", "buildNumber": 100289, "serverTitle": "Jira"}  # fmt: skip

    def fields(self, request: Request) -> tuple[int, Any]:
        """GET field: the system fields the backend uses."""
        flags = {"custom": False, "orderable": True, "navigable": True, "searchable": True}
        return 200, [{"id": name, "key": name, "name": name.title(), **flags, "clauseNames": [name]}
                     for name in SYSTEM_FIELDS]  # fmt: skip

    def search(self, request: Request) -> tuple[int, Any]:
        """GET search/jql: issues with a label that are not Done, newest first."""
        jql = request.query.get("jql", [""])[0]
        found = JQL.fullmatch(jql)
        if not found:
            return bad(messages=[f"Error in the JQL Query: the query '{jql}' is not understood by this fake."])
        matches = [issue for issue in self.issues.values()
                   if found["label"] in issue["fields"]["labels"]
                   and issue["fields"]["status"]["statusCategory"]["key"] != "done"]  # fmt: skip
        matches.sort(key=lambda issue: int(issue["id"]), reverse=True)
        limit = int(request.query.get("maxResults", ["50"])[0])
        return 200, {"issues": [self._view(issue, request) for issue in matches[:limit]],
                     "isLast": len(matches) <= limit}  # fmt: skip

    def create_issue(self, request: Request) -> tuple[int, Any]:
        """POST issue: validate project, issue type, summary, priority and labels; 201 with id, key, self."""
        fields = request.json().get("fields")
        if not isinstance(fields, dict):
            return bad(messages=["Field 'fields' is required."])
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            return bad({"project": "valid project is required"})
        if (fields.get("issuetype") or {}).get("name") not in self.projects[project]:
            return bad({"issuetype": "Specify a valid issue type"})
        if not str(fields.get("summary") or "").strip():
            return bad({"summary": "You must specify a summary of the issue."})
        if "\n" in str(fields.get("summary")) or len(str(fields.get("summary"))) > 255:
            return bad({"summary": "Summary must be less than 255 characters and on one line."})
        priority = (fields.get("priority") or {"name": "Medium"}).get("name")
        if priority not in PRIORITIES:
            return bad({"priority": f"Priority name '{priority}' is not valid"})
        labels = fields.get("labels") or []
        problem = self._bad_labels(labels)
        if problem:
            return problem
        issue_id = str(next(self._ids))
        key = f"{project}-{next(self._numbers[project])}"
        self.issues[key] = {
            "id": issue_id, "key": key, "self": f"{self.url}{API}/issue/{issue_id}",
            "fields": {"summary": fields["summary"], "description": fields.get("description"), "labels": list(labels),
                       "priority": {"name": priority}, "status": self._status("To Do"),
                       "issuetype": {"name": fields["issuetype"]["name"]}, "project": {"key": project},
                       "created": "2024-05-01T10:00:00.000+0000"},
        }  # fmt: skip
        self.comments[key] = []
        return 201, {"id": issue_id, "key": key, "self": f"{self.url}{API}/issue/{issue_id}"}

    def get_issue(self, request: Request) -> tuple[int, Any]:
        """GET issue/{key}: the issue, limited to ``fields`` when given."""
        issue = self._issue(request.match["key"])
        if issue is None:
            return bad(messages=["Issue does not exist or you do not have permission to see it."], status=404)
        return 200, self._view(issue, request)

    def edit_issue(self, request: Request) -> tuple[int, Any]:
        """PUT issue/{key}: ``fields`` (priority, summary) and ``update`` label operations; 204."""
        issue = self._issue(request.match["key"])
        if issue is None:
            return bad(messages=["Issue does not exist or you do not have permission to see it."], status=404)
        body = request.json()
        fields, update = body.get("fields") or {}, body.get("update") or {}
        for name in [*fields, *update]:
            if name not in ("priority", "labels", "summary"):
                return bad({name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."})
        if "priority" in fields and (fields["priority"] or {}).get("name") not in PRIORITIES:
            return bad({"priority": f"Priority name '{fields['priority'].get('name')}' is not valid"})
        labels = list(issue["fields"]["labels"])
        for operation in update.get("labels", []):
            (verb, label), *rest = operation.items()
            if rest or verb not in ("add", "remove", "set"):
                return bad({"labels": f"Operation '{verb}' is not supported for labels."})
            problem = self._bad_labels(label if verb == "set" else [label])
            if problem:
                return problem
            if verb == "add" and label not in labels:
                labels.append(label)
            elif verb == "remove" and label in labels:
                labels.remove(label)
            elif verb == "set":
                labels = list(label)
        if "labels" in fields:
            labels = list(fields["labels"])
        issue["fields"]["labels"] = labels
        if "priority" in fields:
            issue["fields"]["priority"] = {"name": fields["priority"]["name"]}
        if "summary" in fields:
            issue["fields"]["summary"] = fields["summary"]
        return 204, b""

    def get_comments(self, request: Request) -> tuple[int, Any]:
        """GET issue/{key}/comment: ``startAt``, ``maxResults``, ``total``, ``comments``."""
        issue = self._issue(request.match["key"])
        if issue is None:
            return bad(messages=["Issue does not exist or you do not have permission to see it."], status=404)
        comments = list(self.comments[issue["key"]])
        if request.query.get("orderBy", [""])[0] == "-created":
            comments.reverse()
        limit = int(request.query.get("maxResults", ["5000"])[0])
        return 200, {"startAt": 0, "maxResults": limit, "total": len(comments), "comments": comments[:limit]}

    def add_comment(self, request: Request) -> tuple[int, Any]:
        """POST issue/{key}/comment: a non-empty ``body``; 201 with the comment."""
        issue = self._issue(request.match["key"])
        if issue is None:
            return bad(messages=["Issue does not exist or you do not have permission to see it."], status=404)
        body = request.json().get("body")
        if not isinstance(body, str) or not body.strip():
            return bad({"comment": "Comment body can not be empty!"})
        comments = self.comments[issue["key"]]
        comment_id = str(20000 + sum(len(c) for c in self.comments.values()))
        comment = {"id": comment_id, "self": f"{issue['self']}/comment/{comment_id}", "body": body,
                   "author": {"displayName": "maint"}, "created": "2024-05-01T10:00:00.000+0000"}  # fmt: skip
        comments.append(comment)
        return 201, comment

    def get_transitions(self, request: Request) -> tuple[int, Any]:
        """GET issue/{key}/transitions: the transitions available from the issue's status."""
        issue = self._issue(request.match["key"])
        if issue is None:
            return bad(messages=["Issue does not exist or you do not have permission to see it."], status=404)
        status = issue["fields"]["status"]["name"]
        return 200, {"expand": "transitions", "transitions": [
            {"id": transition_id, "name": name, "to": self._status(target), "hasScreen": False, "isGlobal": False,
             "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}
            for transition_id, name, target in WORKFLOW[status]
        ]}  # fmt: skip

    def do_transition(self, request: Request) -> tuple[int, Any]:
        """POST issue/{key}/transitions: ``transition.id`` must be available from the current status; 204."""
        issue = self._issue(request.match["key"])
        if issue is None:
            return bad(messages=["Issue does not exist or you do not have permission to see it."], status=404)
        wanted = str((request.json().get("transition") or {}).get("id"))
        for transition_id, _name, target in WORKFLOW[issue["fields"]["status"]["name"]]:
            if transition_id == wanted:
                issue["fields"]["status"] = self._status(target)
                return 204, b""
        return bad(messages=[f"Transition id '{wanted}' is not valid for this issue."])
