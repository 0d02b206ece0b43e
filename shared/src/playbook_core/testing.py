"""Helpers shipped for our own tests and the local stack: waiting on conditions, recording HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; raise AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200  # what the server answered
    at: float = 0.0  # arrival, wall clock (time.time()): comparable with schedule times

    def header(self, name: str) -> str | None:
        """The value of header `name`, matched regardless of case as HTTP does; None if absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass
class RecordingServer:
    """An HTTP server on 127.0.0.1 that records every request and answers `status`.

    `script` holds statuses to answer first, one a request in order (two 503s, then `status`).
    """

    status: int = 200
    script: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None  # noqa: S101 - started before use by construction
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def for_path(self, path: str) -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def with_header(self, name: str, value: str) -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.header(name) == value]

    def start(self) -> RecordingServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner._lock:
                    status = owner.script.pop(0) if owner.script else owner.status
                    headers = dict(self.headers.items())
                    recorded = Recorded(self.command, self.path, headers, body, status, time.time())
                    owner.requests.append(recorded)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = do_DELETE = _record  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet: tests read `requests`, not stderr."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval: shutdown() waits for one poll, and many tests stop a server.
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class FrozenClock:
    """A Clock that stands still until a test moves it."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current
