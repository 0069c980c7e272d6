"""Dead man's switch pings: tell a monitoring service (healthchecks.io and the like) that a window ran.

A window's ``ping`` URLs are requested as the run of a window goes (``maint schedule run`` and
``maint run --window``):

- ``start`` when the run has started: the window is open, the hosts are free, the run is recorded.
  A run that does not start (exit 7: the window is closed, another run works on the hosts) sends
  nothing at all: it is not a failure, and no start is left without an end.
- ``success`` when the run went through: exit 0, and also 4 (a step failed) and 5 (a host was
  unreachable), because the monitor watches whether the maintenance ran; what the checks found is
  reported by tickets. The body's ``exit_code`` and ``status`` still say what happened.
- ``fail`` when it did not go through: any other exit (3 bad input, 6 aborted, 8 store not writable,
  130 interrupted, 1 an internal error), whether or not the run had started.

Each ping is one HTTP POST with a short JSON body (window, event, run id, status, exit code), as
healthchecks.io, Cronitor, Dead Man's Snitch and Uptime Kuma accept; any 2xx answer is success.
URLs may be ``env:``/``file:`` references (see maint.secrets). The URL often holds the monitor's
secret token, so no message names it: warnings name the window and the ping. A failed ping is a
warning for the caller to show, never an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maint.errors import ExitCode, MaintError

if TYPE_CHECKING:  # the window's calendar code is imported when a run keeps to one
    from maint.windows import Window

TIMEOUT = 5.0
# Exit codes after which the window counts as having run (see the module docstring).
RAN = frozenset({ExitCode.OK, ExitCode.FAILED, ExitCode.UNREACHABLE})


@dataclass(frozen=True)
class PingResult:
    """One ping of a window: ``error`` says why it failed (never the URL), None when it was delivered."""

    window: str
    event: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the monitoring service answered 2xx."""
        return self.error is None

    @property
    def warning(self) -> str | None:
        """The line to show when the ping failed (``ping 'start' of window 'nightly' failed: ...``), else None."""
        if self.error is None:
            return None
        return f"ping '{self.event}' of window '{self.window}' failed: {self.error}"


def finish_event(exit_code: int) -> str | None:
    """The ping that ends a run with ``exit_code``: ``success``, ``fail``, or None for a run that did not start."""
    if exit_code == ExitCode.NOT_STARTED:
        return None
    return "success" if exit_code in RAN else "fail"


class WindowPings:
    """The pings of one window for one run: ``start`` once it started, ``finish`` when it ended.

    ``environ`` resolves ``env:`` references (default: the process environment); ``post`` sends one
    request and returns the HTTP status (default: requests), for tests and other transports.
    """

    def __init__(
        self,
        window: Window,
        *,
        timeout: float = TIMEOUT,
        environ: Mapping[str, str] | None = None,
        post: Any = None,
    ) -> None:
        self.window = window
        self.timeout = timeout
        self.environ = environ
        self.post = post or _post
        self.run_id: str | None = None

    def start(self, run_id: str) -> PingResult | None:
        """Send ``start`` for the run ``run_id``; None when the window has no start URL."""
        self.run_id = run_id
        return self._send("start", {"run_id": run_id, "status": "running"})

    def finish(self, exit_code: int, *, status: str | None = None, error: str | None = None) -> PingResult | None:
        """Send ``success`` or ``fail`` for a run that ended with ``exit_code`` (see :func:`finish_event`).

        ``status`` is the run's final status, ``error`` the one-line message of a run that raised.
        Returns None when nothing is sent (the run did not start, or the window has no such URL).
        """
        event = finish_event(exit_code)
        if event is None:
            return None
        if status is None:
            status = "interrupted" if exit_code == ExitCode.INTERRUPTED else "error"
        body: dict[str, Any] = {"run_id": self.run_id, "status": status, "exit_code": int(exit_code)}
        if error:
            body["error"] = error[:500]
        return self._send(event, body)

    def _send(self, event: str, details: Mapping[str, Any]) -> PingResult | None:
        reference = getattr(self.window.ping, event)
        if not reference:
            return None
        body = {"window": self.window.name, "event": event, **details}
        return PingResult(self.window.name, event, ping(reference, body, self.timeout, self.environ, self.post))


class Monitored:
    """A run watched by its window's pings (see :func:`monitored`): :meth:`started` once it is recorded,
    :meth:`finished` with its exit code; each failed ping goes to ``warn``."""

    def __init__(self, pings: WindowPings | None, warn: Callable[[str], None]) -> None:
        self.pings = pings
        self.warn = warn
        self.done = False

    def started(self, run_id: str) -> None:
        """Ping ``start`` for ``run_id``."""
        if self.pings is not None:
            self._show(self.pings.start(run_id))

    def finished(self, exit_code: int, status: str) -> None:
        """Ping the end of a run that ended with ``exit_code`` and ``status``."""
        self.done = True
        if self.pings is not None:
            self._show(self.pings.finish(exit_code, status=status))

    def _show(self, result: PingResult | None) -> None:
        if result is not None and result.warning:
            self.warn(result.warning)


@contextlib.contextmanager
def monitored(pings: WindowPings | None, warn: Callable[[str], None]) -> Iterator[Monitored]:
    """``with monitored(pings, warn) as monitor:`` around a run: a run that raises pings ``fail`` (or
    nothing, for exit 7) with its error's exit code and one-line message, then the error goes on unchanged.
    A ping never raises: a failing monitor never hides the run's own error."""
    monitor = Monitored(pings, warn)
    try:
        yield monitor
    except BaseException as error:
        if pings is not None and not monitor.done and not isinstance(error, (SystemExit, GeneratorExit)):
            if isinstance(error, MaintError):
                code, message = int(error.exit_code), str(error)
            elif isinstance(error, KeyboardInterrupt):
                code, message = int(ExitCode.INTERRUPTED), "interrupted"
            else:  # an unexpected error's message could hold anything
                code, message = int(ExitCode.INTERNAL), f"internal error: {type(error).__name__}"
            monitor._show(pings.finish(code, error=message))
        raise


def ping(
    reference: str,
    body: Mapping[str, Any],
    timeout: float = TIMEOUT,
    environ: Mapping[str, str] | None = None,
    post: Any = None,
) -> str | None:
    """POST ``body`` as JSON to the URL ``reference`` gives (a URL, or an env:/file: reference to one).

    Returns None when the service answered 2xx, else why not, in words that never hold the URL.
    """
    from maint.secrets import is_reference, mask, resolve

    url = reference
    if is_reference(reference):
        try:
            url = resolve(reference, environ).value.strip()
        except ValueError as error:
            return str(error)
    if not url.startswith(("http://", "https://")):
        return f"the value of {reference} is not an http(s) URL" if is_reference(reference) else "not an http(s) URL"
    try:
        status = (post or _post)(url, dict(body), timeout)
    except Exception as error:  # a monitoring failure must never end the run
        return mask(_reason(error, timeout), [url, url.split("://", 1)[-1]])
    if 200 <= status < 300:
        return None
    return f"HTTP {status}"


def _post(url: str, body: Mapping[str, Any], timeout: float) -> int:
    import requests

    from maint.tickets.backends.http import USER_AGENT

    response = requests.post(url, json=body, timeout=timeout, headers={"User-Agent": USER_AGENT})
    return int(response.status_code)


def _reason(error: Exception, timeout: float) -> str:
    """Why a request failed, without the URL (requests' own messages quote it, token and all)."""
    import requests

    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(error, requests.ConnectionError):
        from maint.tickets.backends.http import CONNECTION_FAILURES

        text = str(error)
        for known in CONNECTION_FAILURES:
            if known in text:
                return f"cannot connect: {known.lower()}"
        return "cannot connect"
    if isinstance(error, requests.RequestException):
        return f"bad request ({type(error).__name__})"
    return f"{type(error).__name__}"

