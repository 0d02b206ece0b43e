"""The stand-in HTTP server: serves one provider, applies the control API and the scripted plan."""

from __future__ import annotations

import json
import selectors
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self, cast
from urllib.parse import parse_qsl, urlsplit

from emulators.standin_core import (
    Behaviour,
    Plan,
    Provider,
    Recorder,
    Reply,
    Request,
    json_reply,
    parse_behaviour,
)

if TYPE_CHECKING:
    from collections.abc import Callable

_MAX_BODY_BYTES = 2 * 1024 * 1024
# A truncated JSON document: it claims application/json, so a client must not trust the header.
_MALFORMED_BODY = b'{"standIn": "malformed response", "Messages": [{"Status": "succ'


class StandIn:
    """A running stand-in server: `.url`, `.stop()`; usable as a context manager."""

    def __init__(
        self,
        provider: Provider,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_sleep_s: float | None = None,
    ) -> None:
        self.provider = provider
        self.recorder = Recorder()
        self.behaviour = Behaviour()
        self.timeout_sleep_s = (
            provider.timeout_sleep_s if timeout_sleep_s is None else timeout_sleep_s
        )
        self._server = _Server((host, port))
        self._server.standin = self
        self.port = int(self._server.socket.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._server.serve_until_woken,
            name=f"standin-{provider.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Wake held requests, stop serving and close the socket; safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.behaviour.stop()
        self._server.wake()
        self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def dispatch(self, request: Request) -> Reply:
        if request.path.startswith("/__"):
            return self._control(request)
        record_id = self.recorder.add(request)
        plan = self.behaviour.take()
        reply = self._answer(plan, request)
        notes = {"responseStatus": reply.status, "behaviour": plan.mode, **reply.notes}
        self.recorder.annotate(record_id, notes)
        return reply

    def _answer(self, plan: Plan, request: Request) -> Reply:
        if plan.delay_ms:
            self.behaviour.sleep(plan.delay_ms / 1000)
        if plan.error_status is not None:
            return _with_retry_after(self.provider.simulated_error(plan.error_status))
        if plan.mode == "timeout":
            self.behaviour.sleep(self.timeout_sleep_s)
            return self.provider.simulated_error(504)
        if plan.mode == "malformed":
            return Reply(200, _MALFORMED_BODY)
        return self.provider.handle(request)

    def _control(self, request: Request) -> Reply:
        routes: dict[tuple[str, str], Callable[[Request], Reply]] = {
            ("GET", "/__requests"): lambda _: json_reply(200, self.recorder.snapshot()),
            ("DELETE", "/__requests"): lambda _: json_reply(
                200, {"cleared": self.recorder.clear()}
            ),
            ("GET", "/__behaviour"): lambda _: json_reply(200, self.behaviour.describe()),
            ("POST", "/__behaviour"): self._set_behaviour,
            ("DELETE", "/__behaviour"): self._reset_behaviour,
        }
        route = routes.get((request.method, request.path))
        reply = route(request) if route is not None else self.provider.control(request)
        if reply is None:
            message = f"no control endpoint {request.method} {request.path}"
            return json_reply(
                404, {"error": {"code": "unknown_control_endpoint", "message": message}}
            )
        return reply

    def _set_behaviour(self, request: Request) -> Reply:
        try:
            plan, times = parse_behaviour(request.body)
        except (TypeError, ValueError) as exc:
            return json_reply(400, {"error": {"code": "invalid_behaviour", "message": str(exc)}})
        self.behaviour.configure(plan, times)
        return json_reply(200, self.behaviour.describe())

    def _reset_behaviour(self, request: Request) -> Reply:
        del request  # the reset takes no parameters
        self.behaviour.reset()
        return json_reply(200, self.behaviour.describe())


def _with_retry_after(reply: Reply) -> Reply:
    # A 429 without Retry-After would leave a client's RateLimited(retry_after) untestable.
    if reply.status != 429 or "Retry-After" in reply.headers:
        return reply
    return Reply(
        reply.status, reply.body, reply.content_type, {**reply.headers, "Retry-After": "1"}
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandIn

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._wake_reader, self._wake_writer = socket.socketpair()

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall offline hosts.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def serve_until_woken(self) -> None:
        # serve_forever notices shutdown only every poll_interval; a wake-up socket stops at once,
        # which keeps per-test teardown of four servers near zero.
        self.socket.settimeout(0.0)  # non-blocking accept: see _accept_one
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_reader in ready:
                    return
                self._accept_one()

    def _accept_one(self) -> None:
        try:
            connection, client_address = self.get_request()
        except OSError:  # the listener is non-blocking: a client that gave up leaves nothing
            return
        try:
            self.process_request(connection, client_address)
        except Exception:
            self.handle_error(connection, client_address)
            self.shutdown_request(connection)

    def wake(self) -> None:
        self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes each connection after its answer, so stop() never waits on idle keep-alives.
    protocol_version = "HTTP/1.0"
    timeout = 10  # a client that connects but never sends must not pin a thread forever

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, *args: Any) -> None:
        del args  # the recording is the log; stderr chatter would drown test output

    def _serve(self) -> None:
        standin = cast("_Server", self.server).standin
        try:
            request = self._read(standin.url)
        except (OSError, ValueError):
            return  # the client vanished or sent garbage framing; there is no one to answer
        if request is None:
            self._send(json_reply(413, {"error": {"code": "payload_too_large"}}))
            return
        try:
            reply = standin.dispatch(request)
        except Exception as exc:  # a stand-in must survive any request and say what broke
            reply = json_reply(500, {"error": {"code": "standin_crash", "message": repr(exc)}})
        self._send(reply)

    def _read(self, base_url: str) -> Request | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            return None
        raw = self.rfile.read(length) if length > 0 else b""
        text = raw.decode("utf-8", errors="replace")
        try:
            body, is_json = (json.loads(text), True) if text.strip() else (None, False)
        except ValueError:
            body, is_json = text, False
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        parts = urlsplit(self.path)
        return Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            raw=raw,
            body=body,
            is_json=is_json,
            base_url=base_url,
        )

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (e.g. its timeout fired); nobody is left to answer
