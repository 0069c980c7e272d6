"""A fake of the GitHub REST API v3 issues and issue comments endpoints, on loopback.

GitHub is a SaaS that cannot run here, so this fake, built on :mod:`http_fake` (a real HTTP server),
follows the documented request and response shapes of the endpoints the ``github`` backend (through
PyGithub) uses:

- ``GET /repos/{owner}/{repo}/issues`` (``state``, comma-separated ``labels``, ``per_page``, ``page``;
  pull requests are listed too, with a ``pull_request`` object and a ``/pull/`` html_url),
- ``POST /repos/{owner}/{repo}/issues`` (201), ``GET``/``PATCH /repos/{owner}/{repo}/issues/{number}``
  (``state``, ``state_reason``, ``labels``),
- ``GET``/``POST /repos/{owner}/{repo}/issues/{number}/comments``.

It checks what GitHub checks where it matters: a ``User-Agent`` header (403 without), the token
(``Authorization: token X`` or ``Bearer X``; 401 ``Bad credentials`` otherwise), 404 ``Not Found`` for
an unknown repository or issue, and 422 ``Validation Failed`` with ``errors`` for a missing title or
comment body, labels that are not strings, or an unknown state or state_reason. The harness cannot
send a ``Link`` header, so lists come as one page of at most ``per_page`` items.
``rate_limited = True`` answers 429 with GitHub's secondary rate limit message.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

from http_fake import FakeHTTPServer, Request

DOCS = "https://docs.github.com/rest"
STAMP = "2024-05-01T10:00:00Z"
REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


def header(request: Request, name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None."""
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def invalid(resource: str, field: str, code: str = "missing_field") -> tuple[int, Any]:
    """GitHub's 422 answer for one invalid field."""
    return 422, {"message": "Validation Failed", "errors": [{"resource": resource, "code": code, "field": field}],
                 "documentation_url": DOCS, "status": "422"}  # fmt: skip


NOT_FOUND = 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}


class FakeGitHub:
    """The GitHub fake: ``issues`` by number and their ``comments`` in one repository ``repository``."""

    def __init__(self, repository: str = "example-org/ops", token: str = "ghp-fake-token-9012") -> None:
        self.repository = repository
        self.token = token
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.rate_limited = False
        self._numbers = itertools.count(1)
        self._ids = itertools.count(900001)
        self.server = FakeHTTPServer()
        route = self.server.route
        route("GET", rf"{REPO}/issues")(self._guard(self.list_issues))
        route("POST", rf"{REPO}/issues")(self._guard(self.create_issue))
        route("GET", rf"{REPO}/issues/(?P<number>\d+)")(self._guard(self.get_issue))
        route("PATCH", rf"{REPO}/issues/(?P<number>\d+)")(self._guard(self.edit_issue))
        route("GET", rf"{REPO}/issues/(?P<number>\d+)/comments")(self._guard(self.list_comments))
        route("POST", rf"{REPO}/issues/(?P<number>\d+)/comments")(self._guard(self.add_comment))

    @property
    def url(self) -> str:
        """The API base URL (what the backend's ``api_url`` option takes)."""
        return self.server.url

    def start(self) -> FakeGitHub:
        """Start serving; returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Close the port."""
        self.server.stop()

    def label_names(self, number: int) -> list[str]:
        """The names of issue ``number``'s labels."""
        return [label["name"] for label in self.issues[number]["labels"]]

    def add_pull_request(self, title: str, body: str, labels: list[str]) -> int:
        """Put a pull request in the repository (the issues list shows it too); returns its number."""
        number = self._new(title, body, labels)
        self.issues[number]["pull_request"] = {"url": f"{self._repo_url()}/pulls/{number}"}
        self.issues[number]["html_url"] = f"https://github.example/{self.repository}/pull/{number}"
        return number

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> tuple[int, Any]:
            if not header(request, "User-Agent"):
                return 403, {"message": "Request forbidden by administrative rules. "
                                        "Please make sure your request has a User-Agent header"}  # fmt: skip
            if self.rate_limited:
                return 429, {"message": "You have exceeded a secondary rate limit. "
                                        "Please wait a few minutes before you try again.",
                             "documentation_url": DOCS}  # fmt: skip
            if header(request, "Authorization") not in (f"token {self.token}", f"Bearer {self.token}"):
                return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
            if f"{request.match['owner']}/{request.match['repo']}" != self.repository:
                return NOT_FOUND
            if request.method in ("POST", "PATCH"):
                try:
                    body = request.json()
                except ValueError:
                    return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}
                if not isinstance(body, dict):
                    return 400, {"message": "Body should be a JSON object", "documentation_url": DOCS}
            result: tuple[int, Any] = handler(request)
            return result

        return guarded

    def _repo_url(self) -> str:
        return f"{self.server.url}/repos/{self.repository}"

    def _label(self, name: str) -> dict[str, Any]:
        return {"id": zlib.crc32(name.encode()), "node_id": f"LA_{name}", "url": f"{self._repo_url()}/labels/{name}",
                "name": name, "color": "ededed", "default": False, "description": None}  # fmt: skip

    def _new(self, title: str, body: str | None, labels: list[str]) -> int:
        number = next(self._numbers)
        url = f"{self._repo_url()}/issues/{number}"
        self.issues[number] = {
            "url": url, "repository_url": self._repo_url(), "comments_url": f"{url}/comments",
            "html_url": f"https://github.example/{self.repository}/issues/{number}", "id": next(self._ids),
            "node_id": f"I_{number}", "number": number, "title": title, "body": body,
            "user": {"login": "maint-bot", "id": 7, "type": "User"}, "labels": [self._label(n) for n in labels],
            "state": "open", "state_reason": None, "locked": False, "assignee": None, "assignees": [],
            "milestone": None, "comments": 0, "created_at": STAMP, "updated_at": STAMP, "closed_at": None,
            "author_association": "MEMBER",
        }  # fmt: skip
        self.comments[number] = []
        return number

    def _labels_ok(self, labels: Any) -> bool:
        return isinstance(labels, list) and all(isinstance(label, str) and label for label in labels)

    def list_issues(self, request: Request) -> tuple[int, Any]:
        """GET issues: by state (default open) and labels (all must be on the issue), newest first."""
        state = request.query.get("state", ["open"])[0]
        if state not in ("open", "closed", "all"):
            return invalid("Issue", "state", "invalid")
        wanted = [name for name in request.query.get("labels", [""])[0].split(",") if name]
        found = [issue for issue in sorted(self.issues.values(), key=lambda i: -i["number"])
                 if state in ("all", issue["state"])
                 and all(name in [label["name"] for label in issue["labels"]] for name in wanted)]  # fmt: skip
        per_page = min(int(request.query.get("per_page", ["30"])[0]), 100)
        page = int(request.query.get("page", ["1"])[0])
        return 200, found[(page - 1) * per_page : page * per_page]

    def create_issue(self, request: Request) -> tuple[int, Any]:
        """POST issues: ``title`` required, ``labels`` a list of names; 201 with the issue."""
        body = request.json()
        if not str(body.get("title") or "").strip():
            return invalid("Issue", "title")
        if "labels" in body and not self._labels_ok(body["labels"]):
            return invalid("Issue", "labels", "invalid")
        number = self._new(str(body["title"]), body.get("body"), list(body.get("labels") or []))
        return 201, self.issues[number]

    def get_issue(self, request: Request) -> tuple[int, Any]:
        """GET issues/{number}."""
        issue = self.issues.get(int(request.match["number"]))
        return (200, issue) if issue else NOT_FOUND

    def edit_issue(self, request: Request) -> tuple[int, Any]:
        """PATCH issues/{number}: ``state`` open/closed, ``state_reason``, ``labels`` (replaces them), title, body."""
        issue = self.issues.get(int(request.match["number"]))
        if issue is None:
            return NOT_FOUND
        body = request.json()
        if "state" in body and body["state"] not in ("open", "closed"):
            return invalid("Issue", "state", "invalid")
        if "state_reason" in body and body["state_reason"] not in ("completed", "not_planned", "reopened", None):
            return invalid("Issue", "state_reason", "invalid")
        if "labels" in body and not self._labels_ok(body["labels"]):
            return invalid("Issue", "labels", "invalid")
        if "state" in body:
            issue["state"] = body["state"]
            issue["closed_at"] = STAMP if body["state"] == "closed" else None
            issue["state_reason"] = body.get("state_reason", "completed" if body["state"] == "closed" else "reopened")
        if "labels" in body:
            issue["labels"] = [self._label(name) for name in body["labels"]]
        for name in ("title", "body"):
            if name in body:
                issue[name] = body[name]
        return 200, issue

    def list_comments(self, request: Request) -> tuple[int, Any]:
        """GET issues/{number}/comments: oldest first, one page."""
        number = int(request.match["number"])
        if number not in self.issues:
            return NOT_FOUND
        per_page = min(int(request.query.get("per_page", ["30"])[0]), 100)
        page = int(request.query.get("page", ["1"])[0])
        return 200, self.comments[number][(page - 1) * per_page : page * per_page]

    def add_comment(self, request: Request) -> tuple[int, Any]:
        """POST issues/{number}/comments: ``body`` required; 201 with the comment."""
        number = int(request.match["number"])
        issue = self.issues.get(number)
        if issue is None:
            return NOT_FOUND
        text = request.json().get("body")
        if not isinstance(text, str) or not text.strip():
            return invalid("IssueComment", "body")
        comment_id = next(self._ids)
        comment = {"id": comment_id, "node_id": f"IC_{comment_id}", "url": f"{self._repo_url()}/issues/comments/"
                   f"{comment_id}", "html_url": f"{issue['html_url']}#issuecomment-{comment_id}", "body": text,
                   "user": {"login": "maint-bot", "id": 7, "type": "User"}, "created_at": STAMP, "updated_at": STAMP,
                   "issue_url": issue["url"], "author_association": "MEMBER"}  # fmt: skip
        self.comments[number].append(comment)
        issue["comments"] += 1
        return 201, comment
