"""The deployed-shape router forwards a request to its function unchanged (emulators/function_router)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from emulators.function_router import RunningRouter


class Echo(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        data = json.dumps(
            {"path": self.path, "method": self.command, "body": body.decode(),
             "auth": self.headers.get("Authorization")}
        ).encode()  # fmt: skip
        self.send_response(207)
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def log_message(self, *args):
        """Quiet."""


@pytest.fixture(scope="module")
def router():
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = backend.server_address[1]
    running = RunningRouter({"fn": port, "other": port}, triggered=["fn"])
    yield running
    running.stop()
    backend.shutdown()
    backend.server_close()


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        ("/fn/a/b?x=1&y=%20", "/a/b?x=1&y=%20"),
        ("/fn/a%2Fb", "/a%2Fb"),
        ("/fn/a%3Fx=1", "/a%3Fx=1"),
        ("/fn/a%23frag?q=1", "/a%23frag?q=1"),
        ("/fn/caf%C3%A9", "/caf%C3%A9"),
        ("/fn", "/"),
    ],
)
def test_the_path_after_the_function_name_arrives_as_sent(router, sent, received):
    answer = httpx.get(router.url + sent, headers={"Authorization": "Bearer t"}, timeout=10)
    assert answer.status_code == 207
    assert answer.json()["path"] == received
    assert answer.json()["auth"] == "Bearer t"


def test_bodies_repeated_headers_and_trigger_routes(router):
    chunked = httpx.post(router.url + "/fn/x", content=iter([b"ab", b"cd"]), timeout=10)
    assert chunked.json()["body"] == "abcd"
    assert chunked.headers.get_list("set-cookie") == ["a=1", "b=2"]
    trigger = "/functions/projects/p/triggers/p:fn"
    assert httpx.post(router.url + trigger, content=b"{}", timeout=10).json()["path"] == "/"
    # The Firestore hook reaches only document-triggered functions; other paths name none.
    refused = httpx.post(router.url + "/functions/projects/p/triggers/p:other", timeout=10)
    assert refused.status_code == 404
    missing = httpx.get(router.url + "/nope/x", timeout=10)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "fn, other" in missing.json()["detail"]
