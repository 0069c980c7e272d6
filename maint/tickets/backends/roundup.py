"""The ``roundup`` ticket backend: issues in a Roundup tracker, through its REST API (tested with Roundup 2.6)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import urlsplit

from maint.tickets.backends import BackendRejected, BackendUnavailable, Option, TicketMessage

if TYPE_CHECKING:
    import requests

DEFAULT_PRIORITIES = {"L1": "bug", "L2": "urgent", "L3": "critical"}
DEFAULT_CLOSED_STATUSES = ("resolved", "done-cbb")
_ISSUE_REFERENCE = re.compile(r"(?:issue)?(\d+)")
# Every status code comes back from http.call, so that _raise can word the error with a hint for the user.
_ANY_STATUS = range(100, 600)


class RoundupBackend:
    """Issues in a Roundup tracker with the stock ``classic`` schema, through the REST API.

    Dedup key: maint titles an issue with the key in brackets first, ``[web1/disk] <subject>``.
    The classic schema has no free field, and the alternatives are worse: a keyword per key would
    flood the keyword list that every issue form shows, and a schema change needs the tracker
    admin. The bracket prefix works on a stock tracker, is the convention Roundup's own mail
    gateway uses for designators (``[issue42]``), and shows host and check in every issue list.
    ``find`` asks Roundup for issues whose title contains ``[KEY]`` (a case-insensitive substring
    filter) in any status not listed in ``closed_statuses``, then keeps only titles that contain
    ``[KEY]`` exactly, so ``web1/disk`` never matches ``web10/disk``; the oldest match wins.
    Whoever edits a title must keep the bracketed key, or maint opens a new issue.

    Every action adds one msg (the issue's history) whose text ends with the event marker, and
    whose Message-ID is ``<maint-event-N@maint>``. Roundup stores that ID, searches it exactly and
    uses it for the nosy e-mail, so ``delivered`` asks for msgs with that ID and checks whether one
    of them is on the issue. Status and message change in one request: the classic ``chatty``
    detector turns a resolved issue back to ``chatting`` when a message arrives on its own.

    Tiers: ``priorities`` maps a tier to a classic priority (L1 bug, L2 urgent, L3 critical) and
    ``assignees`` optionally to a username; both are applied on open, escalate and reopen (a tier
    without an assignee leaves the assignee alone). A routing rule's ``queue`` names a keyword
    (Roundup's category), added when the issue is opened; it must exist in the tracker.
    Statuses: a new issue is ``unread`` (the classic default), ``resolve`` sets
    ``resolved_status``, ``reopen`` sets ``reopened_status``; comments leave the status to
    Roundup's detectors (unread becomes chatting).

    The user needs the classic ``User`` role (Rest Access, create and edit of issue and msg).
    ``url`` must be the tracker's own address (config.ini ``[tracker] web``): Roundup's CSRF
    defence compares the Origin and Host of every REST call with it. References are designators,
    ``issue42``; every request has the ``timeout`` given to the constructor. Roundup answers its
    own failures (database errors, crashing detectors) with HTTP 400 "An error occurred...": the
    backend counts those as unavailable, like 5xx, and closes its connections after any error.
    """

    description: ClassVar[str] = "Issues in a Roundup tracker (REST API, classic schema)"
    options: ClassVar[dict[str, Option]] = {
        "url": Option(
            str,
            "The tracker's base URL, as in its config.ini [tracker] web (Roundup checks Origin and Host against it)",
            required=True,
            example="https://bugs.example.org/support/",
        ),
        "user": Option(
            str, "The Roundup user maint acts as (the classic User role is enough)", required=True, example="maint"
        ),
        "password": Option(str, "That user's password", required=True, secret=True, example="env:ROUNDUP_PASSWORD"),
        "priorities": Option(
            dict,
            "Priority per tier; tiers not given keep the defaults",
            default=dict(DEFAULT_PRIORITIES),
            example={"L1": "bug", "L2": "urgent", "L3": "critical"},
        ),
        "assignees": Option(
            dict,
            "Username to assign the issue to per tier; a tier not listed leaves the assignee as it is",
            default={},
            example={"L3": "oncall"},
        ),
        "resolved_status": Option(
            str, "Status set when maint resolves an issue", default="resolved", example="resolved"
        ),
        "reopened_status": Option(
            str, "Status set when maint reopens an issue", default="chatting", example="chatting"
        ),
        "closed_statuses": Option(
            list,
            "Statuses of finished issues: maint never adds to them, and opens a new issue instead",
            default=list(DEFAULT_CLOSED_STATUSES),
            example=["resolved", "done-cbb"],
        ),
        "verify_tls": Option(
            (bool, str),
            "Verify the tracker's TLS certificate: true, false, or the path of a CA bundle",
            default=True,
            example="/etc/ssl/certs/internal-ca.pem",
        ),
    }

    def __init__(self, name: str, options: Mapping[str, Any], timeout: float) -> None:
        """Keep the settings and prepare an HTTP session; no I/O."""
        from maint.tickets.backends import http

        self.name = name
        self._timeout = timeout
        self._system = f"roundup backend '{name}'"
        url = str(options.get("url") or "").strip()
        self._base = url.rstrip("/") + "/" if url else ""
        self._user = str(options.get("user") or "")
        self._password = str(options.get("password") or "")
        self._priorities = {**DEFAULT_PRIORITIES, **dict(options.get("priorities") or {})}
        self._assignees = dict(options.get("assignees") or {})
        self._resolved_status = str(options.get("resolved_status") or "resolved")
        self._reopened_status = str(options.get("reopened_status") or "chatting")
        closed = options.get("closed_statuses")
        self._closed_statuses = {str(status) for status in (DEFAULT_CLOSED_STATUSES if closed is None else closed)}
        verify = options.get("verify_tls", True)
        parts = urlsplit(self._base)
        # Roundup's CSRF defence refuses REST writes without these two headers.
        self._http = http.session({"X-Requested-With": "maint", "Origin": f"{parts.scheme}://{parts.netloc}"})
        self._http.verify = verify if isinstance(verify, (bool, str)) else True
        if self._user:
            self._http.auth = (self._user, self._password)
        self._open_status_ids: list[str] | None = None

    def find(self, key: str) -> str | None:
        """The designator of the oldest issue with ``[key]`` in its title that is not closed, or None.

        Raises BackendUnavailable / BackendRejected as every method does.
        """
        open_ids = self._open_statuses()
        if not open_ids:
            return None
        tag = _tag(key)
        # "-1" also matches an issue without a status: not closed either.
        params = {"title": tag, "status": ",".join([*open_ids, "-1"]), "@fields": "title,status"}
        found = self._json("GET", "data/issue", params=params)["collection"]
        matches = sorted(
            int(item["id"])
            for item in found
            if tag in str(item.get("title") or "") and _link_id(item.get("status")) in (None, *open_ids)
        )
        return f"issue{matches[0]}" if matches else None

    def open(self, message: TicketMessage) -> str:
        """Create an issue titled ``[KEY] subject`` with the body as its first message; returns ``issueN``."""
        message_id = self._add_message(message)
        properties: dict[str, Any] = {
            "title": f"{_tag(message.key)} {' '.join(message.subject.split())}",
            "messages": [message_id],
            **self._tier_properties(message.tier),
        }
        if message.queue:
            properties["keyword"] = [message.queue]
        created = self._json("POST", "data/issue", ok=(201,), json=properties)
        return f"issue{created['id']}"

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Add the body as a new message of the issue."""
        self._update(ref, message, {})

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Set the priority (and assignee, if mapped) of ``message.tier`` and add the body as a message."""
        self._update(ref, message, self._tier_properties(message.tier))

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Set ``resolved_status`` and add the body as a message, in one change."""
        self._update(ref, message, {"status": self._resolved_status})

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Set ``reopened_status`` and the tier's priority, and add the body as a message, in one change."""
        self._update(ref, message, {"status": self._reopened_status, **self._tier_properties(message.tier)})

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Whether a msg with this action's Message-ID is among the issue's messages."""
        number = self._issue_number(ref)
        found = self._json("GET", "data/msg", params={"messageid:": _message_id(message), "@fields": "id"})
        candidates = {str(item["id"]) for item in found["collection"]}
        if not candidates:
            return False
        issue = self._json("GET", f"data/issue/{number}", params={"@fields": "messages"})
        return any(_link_id(link) in candidates for link in issue["attributes"].get("messages") or [])

    def _tier_properties(self, tier: str) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        if self._priorities.get(tier):
            properties["priority"] = str(self._priorities[tier])
        if self._assignees.get(tier):
            properties["assignedto"] = str(self._assignees[tier])
        return properties

    def _add_message(self, message: TicketMessage) -> str:
        """Create the msg for ``message`` (not yet linked to an issue); returns its id."""
        text = message.body.rstrip("\n")
        if message.marker not in text:
            text = f"{text}\n\n{message.marker}"
        fields = {"content": text + "\n", "author": self._user, "date": ".", "messageid": _message_id(message)}
        if not self._user:
            del fields["author"]
        created = self._json("POST", "data/msg", ok=(201,), json=fields)
        return str(created["id"])

    def _update(self, ref: str, message: TicketMessage, properties: Mapping[str, Any]) -> None:
        """Add a new msg to the issue and set ``properties``, in one edit guarded by the issue's ETag."""
        number = self._issue_number(ref)
        message_id = self._add_message(message)
        for attempt in range(3):
            data = self._json("GET", f"data/issue/{number}", params={"@fields": "messages"})
            etag = str(data.get("@etag") or "")
            messages = [_link_id(link) for link in data["attributes"].get("messages") or []]
            change = {**properties, "messages": [*messages, message_id]}
            response = self._call("PUT", f"data/issue/{number}", ok=(200, 412), json=change, headers={"If-Match": etag})
            if response.status_code == 200:
                return
            # 412: someone changed the issue between our read and write; read it again.
            if attempt == 2:
                raise BackendUnavailable(f"{self._system}: issue{number} kept changing while maint updated it")

    def _open_statuses(self) -> list[str]:
        """Ids of the statuses not in ``closed_statuses`` (read once per backend object)."""
        if self._open_status_ids is None:
            found = self._json("GET", "data/status", params={"@fields": "name"})["collection"]
            self._open_status_ids = [
                str(item["id"]) for item in found if str(item.get("name")) not in self._closed_statuses
            ]
        return self._open_status_ids

    def _issue_number(self, ref: str) -> str:
        matched = _ISSUE_REFERENCE.fullmatch(ref.strip())
        if matched is None:
            raise BackendRejected(f"{self._system}: '{ref}' is not a Roundup issue reference (like issue42)")
        return matched.group(1)

    def _json(self, method: str, path: str, ok: Collection[int] = (200,), **kwargs: Any) -> Any:
        """The ``data`` member of the JSON answer to one REST call."""
        response = self._call(method, path, ok=ok, **kwargs)
        try:
            return response.json()["data"]
        except (ValueError, KeyError, TypeError):
            # A proxy or a non-REST page answered: most likely the URL does not point at a tracker.
            raise BackendRejected(
                f"{self._system}: {method} {self._where(path)} did not answer Roundup REST JSON; "
                f"check tickets.backends.{self.name}.url (the tracker's base URL)"
            ) from None

    def _call(self, method: str, path: str, ok: Collection[int] = (200,), **kwargs: Any) -> requests.Response:
        """One request to ``rest/PATH``; returns the response if its status is in ``ok``.

        Raises BackendUnavailable (unreachable, timeout, 5xx, 429) or BackendRejected (other
        statuses), with a hint about which setting to check.
        """
        from maint.tickets.backends import http

        if not self._base:
            raise BackendRejected(f"{self._system}: tickets.backends.{self.name}.url is not set")
        try:
            response = http.call(
                self._http, method, self._base + "rest/" + path, self._timeout, system=self._system, ok=_ANY_STATUS,
                **kwargs,
            )  # fmt: skip
        except (BackendUnavailable, BackendRejected) as error:
            raise type(error)(self._scrub(str(error))) from None
        if response.status_code in ok:
            return response
        self._raise(method, path, response)

    def _raise(self, method: str, path: str, response: requests.Response) -> NoReturn:
        status = response.status_code
        reason = _error_text(response)
        message = f"{self._system}: {method} {self._where(path)} answered HTTP {status}: {reason}"
        setting = f"tickets.backends.{self.name}"
        # Roundup's REST API answers 400 with this text when the tracker itself fails (a database
        # error, a crashing detector): a failure on its side, not a refusal.
        failed = status == 400 and "an error occurred. please check the server log" in reason.lower()
        if failed:
            hint = "the tracker failed on its side (its server log has the details); maint tries again later"
        elif status == 429 and "login" in reason.lower():
            hint = (
                f"Roundup blocks REST logins of a user for a while after failed ones; check {setting}.user and password"
            )
        elif status == 429 or status >= 500:
            hint = "the tracker is busy or failing; maint tries again later"
        elif status == 401:
            hint = f"check {setting}.user and password"
        elif status == 403:
            hint = (
                f"check {setting}.user (it needs a role with Rest Access and create/edit on issue and msg, "
                f"like the classic User role) and that {setting}.url matches the tracker's [tracker] web setting"
            )
        elif status == 400 and re.search(r"not allowed to use rest|invalid host|header missing", reason, re.I):
            # Roundup's CSRF defence compares Origin and Host with its own web address.
            hint = f"{setting}.url must be the tracker's address as in its config.ini [tracker] web"
        elif status == 400:
            hint = (
                f"check the names in {setting} (priorities, assignees, resolved_status, reopened_status) and "
                "routing queues (Roundup keywords): they must exist in the tracker"
            )
        elif status == 405:
            hint = "a detector of the tracker refused the change"
        elif status == 404:
            hint = f"check {setting}.url (the tracker's base URL, like https://host/tracker/) and the issue reference"
        else:
            hint = f"check {setting}"
        text = self._scrub(f"{message} ({hint})")
        # roundup-server's process for a kept-alive connection can hold a failed request's database
        # lock until the connection closes: every other request to the tracker would wait behind it.
        self._http.close()
        if failed or status == 429 or status >= 500:
            raise BackendUnavailable(text)
        raise BackendRejected(text)

    def _where(self, path: str) -> str:
        return self._base + "rest/" + path

    def _scrub(self, text: str) -> str:
        """``text`` with the password masked, in case an answer ever echoes it."""
        return text.replace(self._password, "***") if self._password else text


def _tag(key: str) -> str:
    """The dedup key as it appears in titles."""
    return f"[{key}]"


def _message_id(message: TicketMessage) -> str:
    """The Message-ID of the msg for ``message``: stable across re-sends of the same action."""
    return f"<{message.marker}@maint>"


def _link_id(link: Any) -> str | None:
    """The id of a Link value as REST shows it (``{"id": ..., "link": ...}``, or a bare id)."""
    if isinstance(link, Mapping):
        return str(link.get("id")) if link.get("id") is not None else None
    return None if link is None else str(link)


def _error_text(response: requests.Response) -> str:
    """Roundup's own explanation (``{"error": {"msg": ...}}``) or the start of the body."""
    try:
        payload = response.json()
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
            return str(payload["error"].get("msg", ""))[:300]
    except ValueError:
        pass
    # A web server's own error page (no tracker at that path) is HTML: keep its words.
    text = (
        re.sub(r"<[^>]*>", " ", response.text) if "html" in response.headers.get("Content-Type", "") else response.text
    )
    return " ".join(text.split())[:300]
