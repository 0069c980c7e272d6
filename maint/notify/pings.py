"""Dead man's switch pings: tell a monitoring service (healthchecks.io and the like) that a run ran.

Two sets of URLs, each ``start``, ``success`` and ``fail``: a window's ``ping`` (runs kept to the window:
``maint schedule run`` and ``maint run --window``) and maint.yml's ``pings`` (every run: ``maint run``,
``maint schedule run``, ``maint resume``, ``maint rerun``). A run kept to a window with both sends both.

- ``start`` when the run has started: the window is open, the hosts are free, the run is recorded.
  A run that does not start (exit 7: the window is closed, another run works on the hosts) sends
  nothing at all: it is not a failure, and no start is left without an end.
- ``success`` when the run went through: exit 0, and also 4 (a step failed) and 5 (a host was
  unreachable), because the monitor watches whether the maintenance ran; what the checks found is
  reported by tickets and notifications. The body's ``exit_code`` and ``status`` still say what happened.
- ``fail`` when it did not go through: any other exit (3 bad input, 6 aborted, 8 store not writable,
  130 interrupted, 1 an internal error), whether or not the run had started.

Each ping is one HTTP POST with a short JSON body (event, run id, status, exit code, and the window for
a window's pings), as healthchecks.io, Cronitor, Dead Man's Snitch and Uptime Kuma accept; any 2xx answer
is success. URLs may be ``env:``/``file:`` references (see maint.secrets). The URL often holds the
monitor's secret token, so no message names it: warnings name the window (or the run) and the ping. A
failed ping is a warning for the caller to show, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maint.errors import ExitCode

if TYPE_CHECKING:  # the window's calendar code is imported when a run keeps to one
    from maint.config import Config
    from maint.windows import Window

TIMEOUT = 5.0
# Exit codes after which the window counts as having run (see the module docstring).
RAN = frozenset({ExitCode.OK, ExitCode.FAILED, ExitCode.UNREACHABLE})


@dataclass(frozen=True)
class PingResult:
    """One ping: ``window`` names the window (None: maint.yml's ``pings``), ``error`` says why it failed
    (never the URL), None when it was delivered."""

    window: str | None
    event: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the monitoring service answered 2xx."""
        return self.error is None

    @property
    def warning(self) -> str | None:
        """The line to show when the ping failed (``ping 'start' of window 'nightly' failed: ...``, or
        ``ping 'start' of the run failed: ...`` for maint.yml's ``pings``), else None."""
        if self.error is None:
            return None
        source = f"window '{self.window}'" if self.window is not None else "the run"
        return f"ping '{self.event}' of {source} failed: {self.error}"


def finish_event(exit_code: int) -> str | None:
    """The ping that ends a run with ``exit_code``: ``success``, ``fail``, or None for a run that did not start."""
    if exit_code == ExitCode.NOT_STARTED:
        return None
    return "success" if exit_code in RAN else "fail"


class Pings:
    """The pings of one run: ``start`` once it started, ``finish`` when it ended.

    ``urls`` maps ``start``, ``success`` and ``fail`` to a URL or reference (missing or None: not sent);
    ``window`` is the name of the window they belong to (None: maint.yml's ``pings``). ``environ``
    resolves ``env:`` references (default: the process environment); ``post`` sends one request and
    returns the HTTP status (default: requests), for tests and other transports.
    """

    def __init__(
        self,
        urls: Mapping[str, str | None],
        *,
        window: str | None = None,
        timeout: float = TIMEOUT,
        environ: Mapping[str, str] | None = None,
        post: Any = None,
    ) -> None:
        self.urls = dict(urls)
        self.window = window
        self.timeout = timeout
        self.environ = environ
        self.post = post or _post
        self.run_id: str | None = None

    def start(self, run_id: str) -> PingResult | None:
        """Send ``start`` for the run ``run_id``; None when there is no start URL."""
        self.run_id = run_id
        return self._send("start", {"run_id": run_id, "status": "running"})

    def finish(self, exit_code: int, *, status: str | None = None, error: str | None = None) -> PingResult | None:
        """Send ``success`` or ``fail`` for a run that ended with ``exit_code`` (see :func:`finish_event`).

        ``status`` is the run's final status, ``error`` the one-line message of a run that raised.
        Returns None when nothing is sent (the run did not start, or there is no such URL).
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
        reference = self.urls.get(event)
        if not reference:
            return None
        body = {**({"window": self.window} if self.window is not None else {}), "event": event, **details}
        return PingResult(self.window, event, ping(reference, body, self.timeout, self.environ, self.post))


class WindowPings(Pings):
    """The pings of ``window`` (its ``ping`` URLs) for one run."""

    def __init__(
        self,
        window: Window,
        *,
        timeout: float = TIMEOUT,
        environ: Mapping[str, str] | None = None,
        post: Any = None,
    ) -> None:
        ping = window.ping
        urls = {"start": ping.start, "success": ping.success, "fail": ping.fail}
        super().__init__(urls, window=window.name, timeout=timeout, environ=environ, post=post)


def run_pings(config: Config, **options: Any) -> Pings | None:
    """maint.yml's ``pings`` (sent for every run), or None when it sets no URL; ``options`` as for :class:`Pings`."""
    urls = config.data.get("pings") or {}
    if not any(urls.values()):
        return None
    return Pings(urls, **options)


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
    from maint.secrets import is_reference, mask

    try:
        url = resolve_url(reference, environ)
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


def resolve_url(reference: str, environ: Mapping[str, str] | None = None) -> str:
    """The URL ``reference`` gives: itself, or the value an env:/file: reference names (stripped); raises
    ValueError saying what is missing (never the value)."""
    from maint.secrets import is_reference, resolve

    return resolve(reference, environ).value.strip() if is_reference(reference) else reference


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

