"""Ticket backends: one small interface to find, open, comment on, escalate and resolve a ticket.

maint keeps its own ticket for every failing (host, check) in the store (the ``local`` backend);
external systems (Request Tracker, Roundup, e-mail, a webhook, Zendesk, Jira, GitHub, PagerDuty)
get each ticket action through the outbox. A backend is a class registered under the
``maint.ticket_backends`` entry point group, built-in ones exactly like third-party ones.

Contract for implementers:

- ``__init__(name, options, timeout)``: ``options`` are the backend's validated settings from
  maint.yml (secrets already resolved to their values); ``timeout`` bounds every network call, in
  seconds. The constructor does no I/O.
- Each method raises :class:`BackendUnavailable` when the system cannot be reached or fails on its
  side (connection refused, timeout, HTTP 5xx, 429): the action stays queued and is sent again
  later. :class:`BackendRejected` when the system refuses the request (HTTP 4xx, bad credentials,
  unknown queue): the action also stays queued, and the message tells the user what to fix.
- ``find`` is what makes re-sending idempotent: before opening, the outbox asks for an open ticket
  with the same dedup key; a backend that cannot search returns None.
- ``delivered`` is asked only when an action is sent again after a failed attempt (the first
  attempt may have reached the system before the connection broke): it says whether the action
  with ``message.marker`` is already on the ticket. A backend that cannot tell returns False.
- ``libraries`` (optional): the :class:`Library` objects the backend imports when it is used, which
  ``maint config validate`` checks are installed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class BackendError(Exception):
    """A ticket action could not be delivered; it stays in the outbox (with this message as its last error)."""

    def __init__(self, message: str) -> None:
        from maint.secrets import mask_url_credentials

        # The message is shown and stored: a backend URL in it never carries its password.
        super().__init__(mask_url_credentials(message))


class BackendUnavailable(BackendError):
    """The system is down, slow or failing on its side: try again later."""


class BackendRejected(BackendError):
    """The system refused the request (credentials, queue, payload): the message says what to fix."""


@dataclass(frozen=True)
class Library:
    """A client library a backend needs: the ``module`` it imports, the distribution ``name`` pip knows it by and
    maint's ``extra`` that installs it (``pip install 'maint[saas]'``)."""

    module: str
    name: str
    extra: str


@dataclass(frozen=True)
class Option:
    """One setting of a backend in maint.yml: its type, default and help text."""

    type: type | tuple[type, ...]
    help: str
    required: bool = False
    default: Any = None
    secret: bool = False  # an env:NAME or file:PATH reference, resolved before the backend sees it
    example: Any = None


ACTIONS = ("open", "comment", "escalate", "resolve", "reopen", "acknowledge")


@dataclass(frozen=True)
class TicketMessage:
    """One ticket action as a backend receives it: what happened and the rendered text.

    ``subject`` and ``body`` come from the Jinja2 templates (templates/ticket-*.j2); a backend uses
    them as the ticket's title and the text of the action (the first message, a comment, ...).
    """

    action: str  # one of ACTIONS
    key: str  # the dedup key, "HOST/CHECK"
    ticket_id: int  # maint's own ticket number
    event_id: int  # maint's number for this action: unique, stable across re-sends
    host: str
    check: str
    tier: str  # L1, L2, L3 (after this action: an escalation carries the new tier)
    severity: str  # info, warning, critical
    status: str  # maint's ticket status after this action: open, acknowledged, escalated, resolved
    subject: str
    body: str
    run_id: str | None = None
    queue: str | None = None  # where the ticket belongs, from the routing rules (queue, project, ...)
    flapping: bool = False
    occurrences: int = 1

    @property
    def marker(self) -> str:
        """A token that identifies this action in the external system, to recognise a re-send."""
        return f"maint-event-{self.event_id}"


def has_marker(text: str, marker: str) -> bool:
    """Whether ``text`` holds ``marker`` as a whole token (``maint-event-12`` is not in ``maint-event-123``)."""
    return re.search(rf"(?<![\w-]){re.escape(marker)}(?![\w-])", text) is not None


def text_with_marker(message: TicketMessage) -> str:
    """``message.body`` ending with its marker: as it is when the template already put it there."""
    body = message.body.rstrip()
    if has_marker(body, message.marker):
        return body
    return f"{body}\n\n{message.marker}"


class TicketBackend(Protocol):
    """What the outbox needs from a ticketing system. ``ref`` is the system's ticket reference."""

    name: str

    def find(self, key: str) -> str | None:
        """The reference of the open (not resolved) ticket with dedup ``key``, or None."""

    def open(self, message: TicketMessage) -> str:
        """Create a ticket; returns its reference."""

    def comment(self, ref: str, message: TicketMessage) -> None:
        """Add ``message.body`` to the ticket (a new occurrence, an acknowledgement, a note)."""

    def escalate(self, ref: str, message: TicketMessage) -> None:
        """Move the ticket to ``message.tier`` (its queue, priority or assignee) and say why."""

    def resolve(self, ref: str, message: TicketMessage) -> None:
        """Resolve (close) the ticket with ``message.body`` as the note."""

    def reopen(self, ref: str, message: TicketMessage) -> None:
        """Reopen a resolved ticket with ``message.body`` as the note."""

    def delivered(self, ref: str, message: TicketMessage) -> bool:
        """Whether the action ``message.marker`` is already on the ticket (asked on re-sends only)."""


class BackendClass(Protocol):
    """A backend class as registered: its settings schema and constructor."""

    description: str
    options: Mapping[str, Option]

    def __call__(self, name: str, options: Mapping[str, Any], timeout: float) -> TicketBackend:
        """Build the backend (no I/O)."""
