"""Delivers queued ticket actions to the external backends: in order, idempotently, never lost.

Each outbox row is one action (open, comment, escalate, resolve, reopen) for one backend. Rows go
out in the order they were queued. When a backend fails (down, slow, refusing), the row stays
pending with the error, and that backend gets nothing more in this pass, so its actions keep their
order; other backends go on. A pass stops after ``budget`` seconds; what is left waits for the
next run or ``maint tickets sync``.

Re-sending never duplicates: before opening, the backend is asked for an open ticket with the same
dedup key (the first attempt may have created it before the connection broke); before repeating a
comment or a status change, whether the action's marker is already on the ticket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from maint import registry
from maint.clock import timestamp
from maint.secrets import resolve
from maint.tickets.backends import BackendError, TicketBackend, TicketMessage

if TYPE_CHECKING:
    import datetime as dt

    from maint.config import BackendConfig, Config
    from maint.store import Store


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    pending: int = 0
    failed_backends: dict[str, str] = field(default_factory=dict)  # backend -> last error

    @property
    def warnings(self) -> list[str]:
        """One line per backend that failed in this pass."""
        return [
            f"ticket backend '{name}' failed: {error}; its actions wait in the outbox "
            "('maint tickets sync' delivers them)"
            for name, error in self.failed_backends.items()
        ]


def build_backend(config: BackendConfig, timeout: float) -> TicketBackend:
    """Instantiate a configured backend, resolving its secret options.

    Raises BackendError when a secret cannot be read or the backend type is not installed.
    """
    backend_class = registry.load(registry.TICKET_BACKENDS, config.type)
    if backend_class is None:
        raise BackendError(f"backend type '{config.type}' is not installed")
    options: dict[str, Any] = {}
    for name, value in config.options.items():
        option = backend_class.options.get(name)
        if option is not None and option.secret and value is not None:
            try:
                options[name] = resolve(value).value
            except ValueError as error:
                raise BackendError(f"tickets.backends.{config.name}.{name}: {error}") from None
        else:
            options[name] = value
    backend: TicketBackend = backend_class(config.name, options, timeout)
    return backend


def _send(backend: TicketBackend, ref: str | None, message: TicketMessage, retry: bool) -> str | None:
    """Carry out one action; returns the ticket's reference in the backend (None: nothing to do)."""
    if ref is None:
        ref = backend.find(message.key)
        if ref is None:
            if message.action == "resolve":
                return None  # never reached this backend, and the problem is gone: nothing to resolve
            return backend.open(message)
        if message.action == "open":
            return ref  # an earlier attempt created it; do not create a second one
        retry = True  # found by key: this action may have reached it already
    if message.action == "open":
        return ref
    if retry and backend.delivered(ref, message):
        return ref
    if message.action in ("comment", "acknowledge"):
        backend.comment(ref, message)
    elif message.action == "escalate":
        backend.escalate(ref, message)
    elif message.action == "resolve":
        backend.resolve(ref, message)
    elif message.action == "reopen":
        backend.reopen(ref, message)
    return ref


def deliver(
    store: Store,
    config: Config,
    clock: Callable[[], dt.datetime],
    budget: float | None = None,
    backends: Mapping[str, TicketBackend] | None = None,
    only: Sequence[str] | None = None,
) -> DeliveryReport:
    """Send pending outbox rows until done or ``budget`` seconds have passed.

    ``backends`` may supply ready instances (tests); by default they are built from ``config``.
    ``only`` limits the pass to these backend names.
    """
    tickets_config = config.tickets
    timeout = float(tickets_config["timeout"])
    budget = float(tickets_config["deliver_within"]) if budget is None else budget
    deadline = time.monotonic() + budget
    instances: dict[str, TicketBackend] = dict(backends or {})
    report = DeliveryReport()
    rows = store.pending_deliveries(only)
    for row in rows:
        name = row["backend"]
        if name in report.failed_backends:
            continue
        if time.monotonic() >= deadline:
            break
        try:
            backend = instances.get(name)
            if backend is None:
                backend_config = config.backends.get(name)
                if backend_config is None:
                    raise BackendError(f"no backend '{name}' in tickets.backends of maint.yml any more")
                backend = instances[name] = build_backend(backend_config, timeout)
            message = TicketMessage(**row["message"])
            ticket = store.get_ticket(row["ticket_id"])
            ref = ticket.refs.get(name) if ticket else None
            ref = _send(backend, ref, message, retry=row["attempts"] > 0)
        except BackendError as error:
            _failed(store, row["id"], str(error), timestamp(clock()))
            report.failed_backends[name] = str(error)
            continue
        except Exception as error:  # a bug in a backend must not cost the run its other tickets
            text = f"{type(error).__name__}: {error}"
            _failed(store, row["id"], text, timestamp(clock()))
            report.failed_backends[name] = text
            continue
        store.mark_sent(row["id"], row["ticket_id"], name, ref or "", timestamp(clock()))
        report.sent += 1
    report.pending = store.pending_count()
    return report


def _failed(store: Store, row_id: int, error: str, now: str) -> None:
    store.mark_failed(row_id, error[:500], now)
