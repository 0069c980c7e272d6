"""A small real HTTP server on loopback for tests of HTTP backends.

It is a real server (a socket, HTTP/1.1 parsing by the standard library), so clients, timeouts and
refused connections behave as they do against the real service. Routes are functions from a
:class:`Request` to a ``(status, body)`` pair; the server records every request it receives. The
vendor fakes built on it follow the vendors' documented request and response shapes.

Faults: ``server.fault = "error"`` answers HTTP 503 to everything, ``"hang"`` holds each request
for ``hang_seconds`` (or until ``stop()``) before answering, and ``stop()`` closes the port (connection
refused). ``wait_for(count)`` waits until that many requests arrived, for senders in other threads.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


Handler = Callable[[Request], tuple[int, Any]]


class FakeHTTPServer:
    """A threaded HTTP server on 127.0.0.1 with regex routes, a request log and faults."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self.fault: str | None = None
        self.hang_seconds = 30.0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` and a path regex (named groups land in ``match``)."""

        def register(handler: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))
            return handler

        return register

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self._host}:{self._port}"

    def start(self) -> FakeHTTPServer:
        """Listen (on the same port again after a stop) and serve in a background thread."""
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                with fake._lock:
                    fake.requests.append(request)
                    fake._arrived.notify_all()
                if fake.fault == "hang":
                    fake._released.wait(fake.hang_seconds)
                if fake.fault == "error":
                    self._send(503, {"error": "service unavailable (test fault)"})
                    return
                for method, pattern, handler in fake.routes:
                    found = pattern.match(parts.path)
                    if method == self.command and found:
                        request.match = found.groupdict()
                        with fake._lock:
                            status, payload = handler(request)
                        self._send(status, payload)
                        return
                self._send(404, {"error": f"no route for {self.command} {parts.path}"})

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._released.clear()
        server = ThreadingHTTPServer((self._host, self._port), RequestHandler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-http", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listening socket (and answer the requests held by a hang): new connections are refused
        until :meth:`start`."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """The recorded requests once there are at least ``count``; raises TimeoutError when fewer arrive
        within ``timeout`` seconds."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} request(s) arrived, expected {count}")
            return list(self.requests)

    def requests_to(self, method: str, path_pattern: str) -> list[Request]:
        """The recorded requests with this method whose path matches the regex."""
        pattern = re.compile(path_pattern + r"\Z")
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and pattern.match(r.path)]
