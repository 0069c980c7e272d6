"""Notifications of a run's outcome through Apprise: Slack, Microsoft Teams, Matrix, ntfy, mail, JSON and
form webhooks, and the other services Apprise knows, from maint.yml's ``notify`` list.

Each notifier has ``urls`` (Apprise URLs, or ``env:``/``file:`` references to them), ``on`` (which runs
it hears of), a ``title`` (a Jinja2 template string) and a ``template`` (a Jinja2 file: the project's
``templates/NAME`` first, then maint's own), both rendered in the sandbox with the run's
:func:`run_context`. ``on``:

- ``failure``: every run that did not end with 0 and did start: exit 1 (internal error), 3 (bad input),
  4 (a step failed), 5 (a host was unreachable), 6 (aborted), 8 (the store could not be written) and
  130 (interrupted). Exit 7 (not started: the window is closed) is no failure to page on.
- ``success``: exit 0.
- ``always``: every recorded run, exit 7 included.

A notification is sent once the run is recorded (there is a run to tell of), from the library, so
``maint run``, ``maint schedule run``, ``maint resume`` and ``maint rerun`` all send them.

A failed delivery (a service down, an unknown URL, a template that does not render, Apprise not
installed) is a warning, never an error: it never changes the run's exit code. Every URL of every
notifier is sent at once, each in a thread of its own, and each notifier is waited for at most its
``timeout`` (plus :data:`GRACE`): Apprise's per-request timeouts (``cto``, ``rto``) are set to it too, so a
service that never answers costs that long and no longer. URLs carry tokens: no message and no output
shows one (:func:`masked_url`), and Apprise's own log lines reach only the warnings, with the URL masked.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint.config.values import APPRISE_URL
from maint.errors import ExitCode
from maint.secrets import MASK, is_reference, mask

if TYPE_CHECKING:
    from maint.config import Config

DEFAULT_TEMPLATE = "notify-run.j2"
DEFAULT_TITLE = "maint: run {{ id }} {{ status }} (exit {{ exit_code }})"
DEFAULT_TIMEOUT = 10.0
ON = ("failure", "success", "always")
# How long past its timeout a notifier is waited for before it counts as hung (Apprise's own timeouts
# fire first when the service is merely slow).
GRACE = 1.0
INSTALL_HINT = "notifications need Apprise: pip install 'maint[notify]'"


@dataclass(frozen=True)
class Notifier:
    """One entry of maint.yml's ``notify`` list (``index`` is its place there, for messages)."""

    index: int
    urls: tuple[str, ...]
    on: str = "failure"
    title: str = DEFAULT_TITLE
    template: str = DEFAULT_TEMPLATE
    link: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def label(self) -> str:
        """How messages name it: ``notify[0]``."""
        return f"notify[{self.index}]"

    def wants(self, exit_code: int) -> bool:
        """Whether a run that ended with ``exit_code`` is notified (see the module docstring)."""
        return wanted(self.on, exit_code)


def wanted(on: str, exit_code: int) -> bool:
    """Whether ``on`` (failure, success, always) covers a run that ended with ``exit_code``."""
    if on == "always":
        return True
    if on == "success":
        return exit_code == ExitCode.OK
    return exit_code not in (ExitCode.OK, ExitCode.NOT_STARTED)


def notifiers(config: Config) -> list[Notifier]:
    """The notifiers of maint.yml's validated ``notify`` list (defaults applied)."""
    built = []
    for index, options in enumerate(config.data.get("notify") or []):
        given = {name: value for name, value in options.items() if value is not None}
        built.append(Notifier(index=index, urls=tuple(given.pop("urls", ())), **given))
    return built


def masked_url(url: str) -> str:
    """``url`` as it may be shown: a reference as written (it names where the secret is, not the secret),
    else its scheme and ``***`` (``slack://***``); Apprise URLs hold tokens anywhere, host included."""
    if is_reference(url):
        return url
    scheme, separator, _ = url.partition("://")
    return f"{scheme}://{MASK}" if separator else MASK


def masked(section: Any) -> Any:
    """maint.yml's ``notify`` list with every URL masked (:func:`masked_url`), for ``config show``."""
    if not isinstance(section, list):
        return section
    return [
        {**item, "urls": [masked_url(str(url)) for url in item.get("urls") or []]} if isinstance(item, dict) else item
        for item in section
    ]  # fmt: skip


def run_context(document: Mapping[str, Any], link: str | None = None) -> dict[str, Any]:
    """The variables of a notification's templates, from a run's document (``RunDocument.as_dict()``):
    ``id``, ``status``, ``exit_code``, ``counts``, ``problems`` (the last attempt of each step that is not
    ok or skipped: host, playbook, step, status, summary), ``operator`` (who), ``reason`` (why), ``refs``,
    ``playbooks`` (names), ``hosts`` (how many), ``started``, ``finished``, ``duration`` (seconds, or
    None), ``controller``, ``error`` (the one-line error of a run that raised, else None), ``report_url``
    (``link`` with ``{id}`` filled in, or None) and ``run`` (the whole document)."""
    from maint.store import last_attempts

    results = document.get("results") or []
    problems = [
        {"host": result["host"], "playbook": result.get("playbook"), "step": result["step"],
         "status": result["status"], "summary": result.get("summary") or ""}
        for result in last_attempts(results).values() if result["status"] not in ("ok", "skipped")
    ]  # fmt: skip
    problems.sort(key=lambda problem: (str(problem["host"]), str(problem["step"])))
    options = document.get("options") or {}
    run_id = str(document.get("id") or "")
    return {
        "id": run_id,
        "status": document.get("status"),
        "exit_code": document.get("exit_code"),
        "counts": dict(document.get("counts") or {}),
        "problems": problems,
        "operator": document.get("operator"),
        "reason": document.get("reason"),
        "refs": list(options.get("refs") or []),
        "playbooks": [playbook.get("name") for playbook in document.get("playbooks") or []],
        "hosts": len(document.get("hosts") or []),
        "started": document.get("started"),
        "finished": document.get("finished"),
        "duration": _duration(document.get("started"), document.get("finished")),
        "controller": document.get("controller"),
        "error": document.get("error"),
        "report_url": link.replace("{id}", run_id) if link else None,
        "run": dict(document),
    }


def _duration(started: Any, finished: Any) -> float | None:
    try:
        return round((dt.datetime.fromisoformat(str(finished)) - dt.datetime.fromisoformat(str(started)))
                     .total_seconds(), 3)  # fmt: skip
    except (TypeError, ValueError):
        return None


def render(notifier: Notifier, context: Mapping[str, Any], project_dir: Path) -> tuple[str, str]:
    """The ``(title, body)`` of ``notifier`` for a run (``context`` from :func:`run_context`); raises
    ValueError naming the template and what is wrong with it."""
    import jinja2

    from maint.tickets import template_environment

    environment = template_environment(project_dir)
    current = "title"
    try:
        title = environment.from_string(notifier.title).render(context).strip()
        current = f"template {notifier.template}"
        body = environment.get_template(notifier.template).render(context).strip() + "\n"
    except jinja2.TemplateNotFound:
        raise ValueError(f"template {notifier.template} not found in {project_dir / 'templates'} nor maint's "
                         "own templates") from None  # fmt: skip
    except jinja2.TemplateError as error:
        line = getattr(error, "lineno", None)
        raise ValueError(f"{current}{f' line {line}' if line else ''}: {error}") from None
    except Exception as error:  # a filter raising on a value, a sandbox refusal
        raise ValueError(f"{current}: {type(error).__name__}: {error}") from None
    return " ".join(title.split()), body


@dataclass
class _Delivery:
    """One URL of one notifier being sent, in a thread of its own."""

    notifier: Notifier
    number: int  # 1-based place of the URL in the notifier's ``urls``
    reference: str
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def shown(self) -> str:
        return masked_url(self.reference)


def notify(
    notifiers: Sequence[Notifier], document: Mapping[str, Any], project_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> list[str]:  # fmt: skip
    """Send ``document`` (a recorded run, ``RunDocument.as_dict()``, with the exit code it ends with) to
    every notifier whose ``on`` covers it; returns one warning per notifier or URL that failed. Returns
    within the largest notifier timeout plus :data:`GRACE`; raises nothing."""
    exit_code = int(document.get("exit_code") or 0)
    chosen = [notifier for notifier in notifiers if notifier.wants(exit_code)]
    if not chosen:
        return []
    warnings: list[str] = []
    messages: list[tuple[Notifier, str, str]] = []
    for notifier in chosen:
        try:
            title, body = render(notifier, run_context(document, notifier.link), project_dir)
        except ValueError as error:
            warnings.append(f"{notifier.label} not sent: {error}")
            continue
        messages.append((notifier, title, body))
    if not messages:
        return warnings
    try:
        import apprise  # noqa: F401
    except ImportError:
        return [*warnings, f"{', '.join(n.label for n, _, _ in messages)} not sent: {INSTALL_HINT}"]
    deliveries: list[_Delivery] = []
    for notifier, title, body in messages:
        for number, reference in enumerate(notifier.urls, 1):
            delivery = _Delivery(notifier, number, reference)
            deliveries.append(delivery)
            threading.Thread(target=_send, args=(delivery, title, body, environ), daemon=True,
                             name=f"maint-notify-{notifier.index}-{number}").start()  # fmt: skip
    began = time.monotonic()
    for delivery in deliveries:
        remaining = began + delivery.notifier.timeout + GRACE - time.monotonic()
        if not delivery.done.wait(max(remaining, 0.0)):
            delivery.error = f"no answer within {delivery.notifier.timeout:g}s"
        if delivery.error:
            warnings.append(f"{delivery.notifier.label} url {delivery.number} ({delivery.shown}) failed: "
                            f"{delivery.error}")  # fmt: skip
    return warnings


def _send(delivery: _Delivery, title: str, body: str, environ: Mapping[str, str] | None) -> None:
    try:
        delivery.error = deliver(delivery.reference, title, body, delivery.notifier.timeout, environ)
    except Exception as error:  # a notifier must never end the run, whatever Apprise raises
        delivery.error = f"{type(error).__name__}"
    finally:
        delivery.done.set()


def deliver(
    reference: str, title: str, body: str, timeout: float = DEFAULT_TIMEOUT, environ: Mapping[str, str] | None = None
) -> str | None:
    """Send one notification to the Apprise URL ``reference`` gives (a URL, or an env:/file: reference to
    one), with connect and read timeouts of ``timeout`` seconds. Returns None when Apprise delivered it,
    else why not, in words that never hold the URL or its parts. Blocks until Apprise returns."""
    import apprise

    from maint.notify.pings import resolve_url

    try:
        url = resolve_url(reference, environ)
    except ValueError as error:
        return str(error)
    if not APPRISE_URL.match(url):
        return f"the value of {reference} is not an Apprise URL"
    sender = apprise.Apprise()
    if not sender.add(_with_timeouts(url, timeout)):
        return "not a URL Apprise knows (check its scheme and parts)"
    result = sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
    if result:
        return None
    return _reason(result, url)


def _with_timeouts(url: str, timeout: float) -> str:
    """``url`` with Apprise's connect (``cto``) and read (``rto``) timeouts set to ``timeout``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}cto={timeout:g}&rto={timeout:g}"


def _reason(result: Any, url: str) -> str:
    """Apprise's last warning about ``result`` (Apprise 2 keeps them with the result), the URL masked."""
    logs = getattr(result, "logs", None)
    entries = list(logs()) if callable(logs) else []
    messages = [str(getattr(entry, "message", "")) for entry in entries
                if str(getattr(entry, "level", "")).upper() in ("WARNING", "ERROR", "CRITICAL")]  # fmt: skip
    if not messages:
        return "not delivered"
    return mask(messages[-1].strip(), _secrets(url))[:300]


def _secrets(url: str) -> list[str]:
    """The pieces of ``url`` that may be secret: the URL itself, its user, password, path segments and
    query values (all but very short ones, which would garble the message and hide nothing)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    pieces = [url, url.split("://", 1)[-1]]
    try:
        parts = urlsplit(url)
    except ValueError:
        return pieces
    pieces += [unquote(part) for part in (parts.username, parts.password) if part]
    pieces += [unquote(segment) for segment in parts.path.split("/") if segment]
    pieces += [value for _, value in parse_qsl(parts.query)]
    return [piece for piece in pieces if len(piece) >= 4]
