"""One way for HTTP ticket backends to call a REST API and map failures to the outbox's two cases."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from typing import Any

import requests

from maint.tickets.backends import BackendRejected, BackendUnavailable

# The causes of a failed connection worth naming (the rest of requests' text quotes the URL).
CONNECTION_FAILURES = (
    "Connection refused", "Name or service not known", "No route to host", "Connection reset",
    "Temporary failure in name resolution", "certificate verify failed",
)  # fmt: skip
USER_AGENT = "maint (preventive maintenance; https://example.invalid/maint)"


def session(headers: dict[str, str] | None = None) -> requests.Session:
    """A requests session with maint's User-Agent and JSON accept header (and ``headers``)."""
    http = requests.Session()
    http.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    if headers:
        http.headers.update(headers)
    return http


def call(
    http: requests.Session,
    method: str,
    url: str,
    timeout: float,
    *,
    system: str,
    ok: Collection[int] = (200, 201, 202, 204),
    **kwargs: Any,
) -> requests.Response:
    """Send one request; return the response when its status is in ``ok``.

    Raises BackendUnavailable for a refused or timed-out connection, HTTP 5xx and 429 (try later),
    and BackendRejected for any other status (the message holds the start of the response body,
    which is where REST APIs explain what is wrong). ``system`` names the backend in messages.
    """
    try:
        response = http.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout:
        raise BackendUnavailable(f"{system}: no answer from {_where(url)} within {timeout:g}s") from None
    except requests.ConnectionError as error:
        raise BackendUnavailable(f"{system}: cannot connect to {_where(url)}: {reason(error)}") from None
    except requests.RequestException as error:
        raise BackendRejected(f"{system}: bad request to {_where(url)}: {error}") from None
    if response.status_code in ok:
        return response
    excerpt = " ".join(response.text.split())[:200]
    message = f"{system}: {method} {_where(url)} answered HTTP {response.status_code}: {excerpt}"
    if response.status_code >= 500 or response.status_code == 429:
        raise BackendUnavailable(message)
    raise BackendRejected(message)


def _where(url: str) -> str:
    # Never echo query strings: some APIs take tokens there.
    return url.split("?", 1)[0]


def reason(error: Exception) -> str:
    """A connection failure in a few words (``connection refused``), never the URL or a header."""
    text = str(error)
    for known in CONNECTION_FAILURES:
        if known in text:
            return known.lower()
    return type(error).__name__


@contextlib.contextmanager
def requests_errors(system: str, where: str, timeout: float, doing: str) -> Iterator[None]:
    """Map the requests exceptions a client library lets through to the outbox's two cases.

    For backends that call a vendor library built on requests: a timeout or a broken connection
    is BackendUnavailable, any other request problem BackendRejected; ``where`` is the host shown.
    """
    try:
        yield
    except requests.Timeout:
        raise BackendUnavailable(f"{system}: no answer from {where} within {timeout:g}s ({doing})") from None
    except requests.ConnectionError as error:
        raise BackendUnavailable(f"{system}: cannot connect to {where}: {reason(error)} ({doing})") from None
    except requests.RequestException as error:
        raise BackendRejected(f"{system}: bad request to {where} ({doing}): {type(error).__name__}") from None
