"""The ``github`` ticket backend: GitHub issues through the REST API v3, with the PyGithub client."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import urlsplit

from maint.tickets.backends import (
    BackendRejected,
    BackendUnavailable,
    Library,
    Option,
    TicketMessage,
    has_marker,
    text_with_marker,
)

SYSTEM = "github"
DEFAULT_API_URL = "https://api.github.com"
DEFAULT_TIER_LABELS = {"L1": "maint:L1", "L2": "maint:L2", "L3": "maint:L3"}
TITLE_LENGTH = 256  # GitHub's limit for an issue title


class GitHubBackend:
    """Issues in a GitHub (or GitHub Enterprise Server) repository, through PyGithub.

    The client is built on the first call with the backend's timeout (PyGithub takes whole seconds:
    it is rounded up) and without retries, so a down or rate-limited GitHub costs at most about
    ``timeout`` seconds; rate limits (HTTP 429, or 403 with a rate-limit message) count as unavailable.
    GitHub asks integrations to leave a second between write requests, which ``write_interval`` keeps.

    Dedup: every issue maint opens carries the label ``label`` (default ``maint``) and, in its body, a
    hidden line ``<!-- maint-key: HOST/CHECK -->``. ``find`` lists the repository's open issues with
    that label (the issues list endpoint, which sees a new issue at once, unlike the search API) and
    returns the number of the first whose body holds the key line; pull requests are skipped. Keys
    do not become labels, so the repository does not collect one label per host and check.

    Tiers: one label per tier (``tier_labels``, default ``maint:L1``...); an escalation swaps it. A
    routing rule's queue becomes one more label. ``resolve`` closes the issue as completed and
    ``reopen`` opens it again; each state change comes first and the comment second, so a re-send
    after a broken connection repeats the (idempotent) change and adds the note once. Every text ends
    with the action's marker line (``maint-event-N``), which ``delivered`` looks for in the comments
    (and, for an opening, in the issue's body).
    """

    description: ClassVar[str] = "GitHub issues (REST API v3), found again by a hidden key line in the body."
    libraries: ClassVar[tuple[Library, ...]] = (Library("github", "PyGithub", "saas"),)
    options: ClassVar[dict[str, Option]] = {
        "repository": Option(str, "The repository for the issues, as owner/name.", required=True,
                             example="example-org/ops"),
        "token": Option(str, "A token with read and write access to the repository's issues.", required=True,
                        secret=True, example="env:MAINT_GITHUB_TOKEN"),
        "api_url": Option(str, "REST API base URL (GitHub Enterprise Server: https://HOST/api/v3).",
                          default=DEFAULT_API_URL, example="https://github.example.org/api/v3"),
        "label": Option(str, "The label on every issue maint opens (find looks among those).", default="maint",
                        example="maint"),
        "tier_labels": Option(dict, "Label per tier (swapped on escalation); {} for none.",
                              default=DEFAULT_TIER_LABELS, example={"L1": "maint:L1", "L2": "maint:L2"}),
        "write_interval": Option((int, float), "Seconds between write requests (GitHub asks for at least 1).",
                                 default=1.0, example=1.0),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings with defaults applied; no network I/O happens here (the client comes later)."""
        self.name = name
        self.timeout = float(timeout)
        self.repository = str(options.get("repository") or "").strip("/")
        self.token = str(options.get("token") or "")
        self.api_url = str(options.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self.label = str(options.get("label") or "maint")
        tier_labels = options.get("tier_labels")
        source = DEFAULT_TIER_LABELS if tier_labels is None else tier_labels
        self.tier_labels = {str(k): str(v) for k, v in source.items()} if isinstance(source, Mapping) else {}
        interval = options.get("write_interval")
        self.write_interval = float(interval) if isinstance(interval, int | float) and interval >= 0 else 1.0
        self._repository: Any = None

    # The protocol

    def find(self, key: str) -> str | None:
        """The number of the open issue labelled ``label`` whose body holds the key line, or None.

        Raises BackendUnavailable (down, slow, 5xx, rate limits) or BackendRejected (credentials,
        unknown repository, other 4xx).
        """
        line = key_line(key)
        with self._errors("listing open issues"):
            for issue in self._repo().get_issues(state="open", labels=[self.label]):
                if "/pull/" not in str(issue.html_url) and line in (issue.body or ""):
                    return str(issue.number)
        return None

    def open(self, message: TicketMessage) -> str:
        """Create the issue (title, body with the key line, labels); returns its number. Raises as :meth:`find`."""
        labels = [self.label]
        if message.tier in self.tier_labels:
            labels.append(self.tier_labels[message.tier])
        if message.queue:
            labels.append(message.queue)
        body = f"{text_with_marker(message)}\n\n{key_line(message.key)}"
        title = " ".join(message.subject.split())[:TITLE_LENGTH]
        with self._errors("creating an issue"):
            issue = self._repo().create_issue(title=title, body=body, labels=labels)
            return str(issue.number)

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Add ``message.body`` (with the marker) as a comment to issue ``ref``; raises as :meth:`find`."""
        with self._errors(f"commenting on #{ref}"):
            self._issue(ref).create_comment(text_with_marker(message))

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Swap the tier label for the new tier's, then comment; raises as :meth:`find`."""
        with self._errors(f"escalating #{ref}"):
            issue = self._issue(ref)
            new = self.tier_labels.get(message.tier)
            if new:
                current = [label.name for label in issue.labels]
                wanted = [name for name in current if name not in self.tier_labels.values()] + [new]
                if wanted != current:
                    issue.edit(labels=wanted)
            issue.create_comment(text_with_marker(message))

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Close the issue as completed, then comment; raises as :meth:`find`."""
        with self._errors(f"closing #{ref}"):
            issue = self._issue(ref)
            issue.edit(state="closed", state_reason="completed")
            issue.create_comment(text_with_marker(message))

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Open the issue again, then comment; raises as :meth:`find`."""
        with self._errors(f"reopening #{ref}"):
            issue = self._issue(ref)
            issue.edit(state="open", state_reason="reopened")
            issue.create_comment(text_with_marker(message))

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Whether a comment of issue ``ref`` (or, for an opening, its body) holds the marker.

        Raises as :meth:`find`.
        """
        with self._errors(f"reading the comments of #{ref}"):
            issue = self._issue(ref)
            if any(has_marker(comment.body or "", message.marker) for comment in issue.get_comments()):
                return True
            return message.action == "open" and has_marker(issue.body or "", message.marker)

    # Helpers

    def _repo(self) -> Any:
        if self._repository is None:
            if not self.token or self.repository.count("/") != 1:
                raise BackendRejected(f"{SYSTEM}: set 'token' and 'repository' (owner/name) "
                                      f"in tickets.backends.{self.name}")  # fmt: skip
            from github import Auth, Github

            from maint.tickets.backends.http import USER_AGENT

            settings: dict[str, Any] = {
                "auth": Auth.Token(self.token), "base_url": self.api_url, "timeout": math.ceil(self.timeout),
                "user_agent": USER_AGENT, "per_page": 100, "retry": None, "seconds_between_requests": None,
                "seconds_between_writes": self.write_interval or None, "lazy": True,
            }  # fmt: skip
            self._repository = Github(**settings).get_repo(self.repository)
        return self._repository

    def _issue(self, ref: str) -> Any:
        if not ref.strip().lstrip("#").isdigit():
            raise BackendRejected(f"{SYSTEM}: '{ref}' is not an issue number")
        return self._repo().get_issue(int(ref.strip().lstrip("#")))

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from github import GithubException, RateLimitExceededException

        from maint.tickets.backends.http import requests_errors

        where = urlsplit(self.api_url).netloc or self.api_url
        try:
            with requests_errors(SYSTEM, where, self.timeout, doing):
                yield
        except RateLimitExceededException as error:
            raise BackendUnavailable(f"{SYSTEM}: rate limit reached ({doing}): {_explain(error.data)}") from None
        except GithubException as error:
            message = f"{SYSTEM}: {where} answered HTTP {error.status} ({doing}): {_explain(error.data)}"
            if error.status >= 500 or error.status == 429:
                raise BackendUnavailable(message) from None
            raise BackendRejected(message + _hint(error.status)) from None


def key_line(key: str) -> str:
    """The hidden line in an issue's body that ``find`` looks for (a Markdown comment)."""
    return f"<!-- maint-key: {key} -->"


def _explain(data: Any) -> str:
    if not isinstance(data, Mapping):
        return " ".join(str(data).split())[:200]
    text = str(data.get("message") or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [str(e.get("message") or f"{e.get('field')} {e.get('code')}") if isinstance(e, Mapping) else str(e)
                   for e in errors]  # fmt: skip
        text += ": " + "; ".join(details)
    return " ".join(text.split())[:200]


def _hint(status: int) -> str:
    if status == 401:
        return " (check 'token')"
    if status == 403:
        return " (the token needs read and write access to the issues of 'repository')"
    if status == 404:
        return " (check 'repository' (owner/name) and 'api_url', and that the token can see the repository)"
    if status == 410:
        return " (issues are turned off in 'repository')"
    if status == 422:
        return " (check 'label' and 'tier_labels')"
    return ""
