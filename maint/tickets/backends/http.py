"""One way for HTTP ticket backends to call a REST API and map failures to the outbox's two cases."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import requests

from maint.tickets.backends import BackendRejected, BackendUnavailable

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
        raise BackendUnavailable(f"{system}: cannot connect to {_where(url)}: {_reason(error)}") from None
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


def _reason(error: requests.ConnectionError) -> str:
    text = str(error)
    for known in ("Connection refused", "Name or service not known", "No route to host", "Connection reset"):
        if known in text:
            return known.lower()
    return type(error).__name__
