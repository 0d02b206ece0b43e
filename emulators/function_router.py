"""One URL per deployed function, each served by its own process: `<base>/<name>/…` → its server.

Cloud Functions gives every function its own URL (`https://<region>-<project>.cloudfunctions.net/
<name>`) and its own instances. The deployed-shape tests run each function from the deploy
artifact in its own functions-framework process; this proxy plays the shared host name, so task,
push and link URLs have production's shape. It forwards the request unchanged (method, path after
the name, query, headers, body) and answers with the function's own answer. The Firestore
emulator's trigger hook (`/functions/projects/…/triggers/<project>:<name>`) reaches a function's
root, as Eventarc would.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import httpx
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HOST = "127.0.0.1"
# Where the Firestore emulator's --functions_emulator hook POSTs (operations.md §5).
TRIGGER_ROUTE = re.compile(
    r"^/functions/projects/(?P<project>[^/]+)/triggers/(?P=project):(?P<name>[a-z][a-z0-9_]*)/?$"
)
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
     "content-length", "proxy-authorization", "proxy-connection"}
)  # fmt: skip
_TIMEOUT_S = 600.0  # a function's own deadline ends a call, not the proxy


def not_found(path: str, names: Iterable[str], start_response: StartResponse) -> Iterable[bytes]:
    """A path that names no function: 404 problem+json, as every refusal of ours."""
    body = json.dumps(
        {
            "type": "https://bakedbot.ai/problems/not-found",
            "title": "Not Found",
            "status": 404,
            "detail": f"no function serves {path}; the first path segment names one of: "
            + ", ".join(sorted(names)),
        }
    ).encode()
    start_response(
        "404 NOT FOUND",
        [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))],
    )
    return [body]


class FunctionRouter:
    """WSGI: the first path segment names the function; `ports` says where each one listens."""

    def __init__(self, ports: Mapping[str, int], triggered: Iterable[str]) -> None:
        self._ports = dict(ports)
        self._triggered = frozenset(triggered)  # functions the Firestore hook may reach
        self._http = httpx.Client(timeout=_TIMEOUT_S, trust_env=False)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # The path as it came on the wire (werkzeug's RAW_URI): %2F, %3F and non-ASCII stay as
        # the client encoded them, so the function parses exactly what it would be sent.
        raw = str(environ.get("RAW_URI") or environ.get("PATH_INFO") or "/")
        path, mark, query = raw.partition("?")
        trigger = TRIGGER_ROUTE.match(path)
        if trigger and trigger["name"] in self._triggered:
            name, rest = trigger["name"], "/"
        else:
            name, _, tail = path.lstrip("/").partition("/")
            rest = f"/{tail}"
        port = self._ports.get(name)
        if port is None:
            return not_found(path, self._ports, start_response)
        url = httpx.URL(f"http://{HOST}:{port}").copy_with(
            raw_path=(rest + mark + query).encode("latin-1")
        )
        request = Request(environ)
        headers = [
            (key, value) for key, value in request.headers.items()
            if key.lower() not in _HOP_BY_HOP
        ]  # fmt: skip
        body = request.get_data(cache=False)  # also a chunked body, which has no Content-Length
        try:
            answer = self._http.request(
                environ["REQUEST_METHOD"], url, headers=headers, content=body
            )
        except httpx.HTTPError:
            start_response("502 Bad Gateway", [("Content-Length", "0")])
            return [b""]
        # httpx has decoded the body already: its Content-Encoding no longer holds. Repeated
        # headers (Set-Cookie) stay separate.
        kept = [
            (key, value)
            for key, value in answer.headers.multi_items()
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-encoding"
        ]
        kept.append(("Content-Length", str(len(answer.content))))
        start_response(f"{answer.status_code} {answer.reason_phrase}", kept)
        return [answer.content]

    def close(self) -> None:
        self._http.close()


class RunningRouter:
    def __init__(self, ports: Mapping[str, int], triggered: Iterable[str], port: int = 0) -> None:
        self._router = FunctionRouter(ports, triggered)
        self._server = make_server(HOST, port, self._router, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._router.close()
