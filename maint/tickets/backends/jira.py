"""The ``jira`` ticket backend: Jira issues through the REST API v2, with the ``jira`` client library."""

from __future__ import annotations

import hashlib
import re
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

SYSTEM = "jira"
DEFAULT_PRIORITIES = {"L1": "Medium", "L2": "High", "L3": "Highest"}
DEFAULT_TIER_LABELS = {"L1": "maint-L1", "L2": "maint-L2", "L3": "maint-L3"}
SUMMARY_LENGTH = 255  # Jira's limit for the summary field


class JiraBackend:
    """Issues in Jira Cloud (or Data Center), through the REST API v2 and the ``jira`` client library.

    The client is built on the first call (it asks ``/rest/api/2/serverInfo`` once, to know whether the
    site is Cloud and must be searched through ``/search/jql``), with the backend's timeout on every
    request and its retries off: a down or rate-limited Jira costs at most about ``timeout`` seconds.
    Authentication: ``user`` (the account's email) with an API token on Jira Cloud; without ``user``,
    ``token`` is sent as a bearer personal access token (Data Center).

    Dedup: every issue carries a label made from the dedup key (``maint-`` plus the key with every
    character other than letters, digits, ``_`` and ``.`` turned into ``-``, plus a short hash of the
    exact key, so labels never hold spaces and two keys never share one). ``find`` searches
    ``labels = "LABEL" AND statusCategory != Done`` and returns the newest issue's key. Jira Cloud's
    search is eventually consistent: an issue created seconds before may not be found yet.

    Tiers: the tier's priority (``priorities``; an empty mapping leaves priority alone) and a tier
    label (``tier_labels``; on escalation the other tiers' labels are removed). The routing rule's
    queue, when set, is the project key. Every text (the description and each comment) ends with the
    action's marker line (``maint-event-N``), which ``delivered`` looks for in the comments (and, for
    an opening, in the description).

    ``resolve`` moves the issue through the transition named ``resolve_transition``, or else the
    first transition whose target status is in the Done category; ``reopen`` through
    ``reopen_transition``, or else the first one to a To Do (then In Progress) status. Each is
    skipped when the issue is already there. The state change comes first and the comment with the
    marker last, so a re-send after a broken connection repeats the (idempotent) change and adds the
    note once.
    """

    description: ClassVar[str] = "Jira issues (REST API v2), deduplicated by a label made from the key."
    libraries: ClassVar[tuple[Library, ...]] = (Library("jira", "jira", "saas"),)
    options: ClassVar[dict[str, Option]] = {
        "url": Option(str, "Base URL of the Jira site.", required=True, example="https://example.atlassian.net"),
        "user": Option(str, "Account email for API token authentication (Jira Cloud); leave out for a "
                            "Data Center personal access token.", example="maint@example.org"),
        "token": Option(str, "API token (Cloud) or personal access token (Data Center).", required=True,
                        secret=True, example="env:MAINT_JIRA_TOKEN"),
        "project": Option(str, "Project key for new issues (a routing rule's queue overrides it).", required=True,
                          example="OPS"),
        "issue_type": Option(str, "Issue type of new issues.", default="Task", example="Task"),
        "priorities": Option(dict, "Priority name per tier; {} leaves the priority to Jira.",
                             default=DEFAULT_PRIORITIES, example={"L1": "Medium", "L2": "High", "L3": "Highest"}),
        "tier_labels": Option(dict, "Label per tier (swapped on escalation); {} for none.",
                              default=DEFAULT_TIER_LABELS, example={"L1": "maint-L1", "L2": "maint-L2"}),
        "labels": Option(list, "Labels for every issue (besides the key and tier labels).", default=["maint"],
                         example=["maint", "infrastructure"]),
        "resolve_transition": Option(str, "Name of the transition that resolves an issue (default: the first "
                                          "one to a Done status).", example="Done"),
        "reopen_transition": Option(str, "Name of the transition that reopens an issue (default: the first "
                                         "one to a To Do status).", example="Reopen"),
    }  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings with defaults applied; no network I/O happens here (the client comes later)."""
        self.name = name
        self.timeout = float(timeout)
        self.url = str(options.get("url") or "").rstrip("/")
        self.user = str(options.get("user") or "")
        self.token = str(options.get("token") or "")
        self.project = str(options.get("project") or "")
        self.issue_type = str(options.get("issue_type") or "Task")
        priorities = options.get("priorities")
        self.priorities = _mapping(DEFAULT_PRIORITIES if priorities is None else priorities)
        tier_labels = options.get("tier_labels")
        self.tier_labels = _mapping(DEFAULT_TIER_LABELS if tier_labels is None else tier_labels)
        labels = options.get("labels")
        self.labels = [str(label) for label in labels] if isinstance(labels, list) else ["maint"]
        self.resolve_transition = str(options.get("resolve_transition") or "")
        self.reopen_transition = str(options.get("reopen_transition") or "")
        self._client: Any = None

    # The protocol

    def find(self, key: str) -> str | None:
        """The key of the newest issue labelled for ``key`` that is not in a Done status, or None.

        Raises BackendUnavailable (down, slow, 5xx, 429) or BackendRejected (credentials, other 4xx).
        """
        jql = f'labels = "{key_label(key)}" AND statusCategory != Done ORDER BY created DESC'
        with self._errors("searching"):
            issues = self._jira().search_issues(jql, maxResults=1, fields=["status"])
            return str(issues[0].key) if issues else None

    def open(self, message: TicketMessage) -> str:
        """Create the issue (summary, description, labels, priority); returns its key. Raises as :meth:`find`."""
        fields: dict[str, Any] = {
            "project": {"key": message.queue or self.project},
            "summary": " ".join(message.subject.split())[:SUMMARY_LENGTH],
            "description": text_with_marker(message),
            "issuetype": {"name": self.issue_type},
            "labels": [key_label(message.key), *self.labels,
                       *([self.tier_labels[message.tier]] if message.tier in self.tier_labels else [])],
        }  # fmt: skip
        if message.tier in self.priorities:
            fields["priority"] = {"name": self.priorities[message.tier]}
        with self._errors("creating an issue"):
            issue = self._jira().create_issue(fields=fields, prefetch=False)
            return str(issue.key)

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Add ``message.body`` (with the marker) as a comment to issue ``ref``; raises as :meth:`find`."""
        with self._errors(f"commenting on {ref}"):
            self._jira().add_comment(ref, text_with_marker(message))

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Set the new tier's priority and label, then comment; raises as :meth:`find`."""
        fields: dict[str, Any] = {}
        if message.tier in self.priorities:
            fields["priority"] = {"name": self.priorities[message.tier]}
        labels: list[dict[str, str]] = []
        if message.tier in self.tier_labels:
            new = self.tier_labels[message.tier]
            labels = [{"remove": label} for label in self.tier_labels.values() if label != new] + [{"add": new}]
        with self._errors(f"escalating {ref}"):
            jira = self._jira()
            if fields or labels:
                jira.issue(ref, fields="labels").update(fields=fields, update={"labels": labels} if labels else {})
            jira.add_comment(ref, text_with_marker(message))

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Move the issue to a Done status (unless it is in one), then comment; raises as :meth:`find`."""
        with self._errors(f"resolving {ref}"):
            jira = self._jira()
            if not self._done(ref):
                transition = self._transition(ref, self.resolve_transition, "resolve_transition", ("done",))
                jira.transition_issue(ref, str(transition["id"]))
            jira.add_comment(ref, text_with_marker(message))

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Move the issue out of its Done status (if it is in one), then comment; raises as :meth:`find`."""
        with self._errors(f"reopening {ref}"):
            jira = self._jira()
            if self._done(ref):
                categories = ("new", "indeterminate")
                transition = self._transition(ref, self.reopen_transition, "reopen_transition", categories)
                jira.transition_issue(ref, str(transition["id"]))
            jira.add_comment(ref, text_with_marker(message))

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Whether a comment of ``ref`` (or, for an opening, its description) holds the marker.

        Raises as :meth:`find`.
        """
        with self._errors(f"reading the comments of {ref}"):
            jira = self._jira()
            if any(has_marker(str(comment.body or ""), message.marker) for comment in jira.comments(ref)):
                return True
            if message.action == "open":
                description = jira.issue(ref, fields="description").raw.get("fields", {}).get("description")
                return has_marker(str(description or ""), message.marker)
            return False

    # Helpers

    def _jira(self) -> Any:
        if self._client is None:
            if not self.url or not self.token:
                raise BackendRejected(f"{SYSTEM}: set 'url' and 'token' in tickets.backends.{self.name}")
            from jira import JIRA

            options: dict[str, Any] = {"check_update": False}
            if self.user:
                self._client = JIRA(self.url, options=options, basic_auth=(self.user, self.token),
                                    timeout=self.timeout, max_retries=0)  # fmt: skip
            else:
                self._client = JIRA(self.url, options=options, token_auth=self.token,
                                    timeout=self.timeout, max_retries=0)  # fmt: skip
        return self._client

    def _done(self, ref: str) -> bool:
        issue = self._jira().issue(ref, fields="status")
        category = ((issue.raw.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
        return bool(category.get("key") == "done")

    def _transition(self, ref: str, name: str, setting: str, categories: tuple[str, ...]) -> dict[str, Any]:
        transitions: list[dict[str, Any]] = list(self._jira().transitions(ref))
        if name:
            for transition in transitions:
                if name.lower() in (str(transition.get("name")).lower(), str(_target(transition)[0]).lower()):
                    return transition
            names = ", ".join(str(t.get("name")) for t in transitions) or "none"
            raise BackendRejected(f"{SYSTEM}: {ref} has no transition '{name}' (available: {names}): fix '{setting}'")
        for category in categories:
            for transition in transitions:
                if _target(transition)[1] == category:
                    return transition
        names = ", ".join(f"{t.get('name')} -> {_target(t)[0]}" for t in transitions) or "none"
        raise BackendRejected(f"{SYSTEM}: {ref} has no transition to a {categories[0]} status "
                              f"(available: {names}): set '{setting}'")  # fmt: skip

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        # The client's own exception text holds the request headers (the credentials): never pass it on.
        from jira import JIRAError

        from maint.tickets.backends.http import requests_errors

        where = urlsplit(self.url).netloc.rpartition("@")[2] or self.url
        try:
            with requests_errors(SYSTEM, where, self.timeout, doing):
                yield
        except JIRAError as error:
            status = error.status_code
            text = " ".join(str(error.text or "").split())[:200]
            if status is None:
                raise BackendRejected(f"{SYSTEM}: {doing}: {text}") from None
            message = f"{SYSTEM}: {where} answered HTTP {status} ({doing}): {text}"
            if status >= 500 or status == 429:
                raise BackendUnavailable(message) from None
            raise BackendRejected(message + _hint(status, self.project)) from None


def key_label(key: str) -> str:
    """The Jira label for dedup ``key``: no spaces, only letters, digits, ``-``, ``_`` and ``.``, plus a hash."""
    safe = re.sub(r"[^A-Za-z0-9_.]+", "-", key).strip("-")[:80]
    return f"maint-{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _target(transition: Mapping[str, Any]) -> tuple[str, str]:
    target = transition.get("to") or {}
    return str(target.get("name") or ""), str((target.get("statusCategory") or {}).get("key") or "")


def _mapping(value: Any) -> dict[str, str]:
    return {str(key): str(item) for key, item in value.items()} if isinstance(value, Mapping) else {}


def _hint(status: int, project: str) -> str:
    if status == 401:
        return " (check 'user' and 'token': on Jira Cloud the account's email and an API token)"
    if status == 403:
        return f" (the account lacks a permission in project {project}: browse, create, edit, transition, comment)"
    if status == 404:
        return " (no such issue, or 'url' names another site)"
    if status == 400:
        return " (check 'project', 'issue_type', 'priorities', 'labels' and 'tier_labels')"
    return ""
