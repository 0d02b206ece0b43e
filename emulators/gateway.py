"""One local process serving every manifest function at /<name>/..., like cloudfunctions.net."""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import functions_framework
from werkzeug.serving import make_server

from playbook_core import logging as json_logging
from playbook_core.logging import event
from playbook_core.runtime import bootstrap
from playbook_core.runtime.manifest import FirestoreTrigger, Manifest, load_manifest

if TYPE_CHECKING:
    from types import FrameType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAIN = Path(__file__).resolve().parents[1] / "functions" / "main.py"
HOST = "127.0.0.1"
# Where the Firestore emulator's --functions_emulator hook POSTs (operations.md §5).
TRIGGER_ROUTE = re.compile(
    r"^/functions/projects/(?P<project>[^/]+)/triggers/(?P=project):(?P<name>[a-z][a-z0-9_]*)/?$"
)
_TASK_HEADERS = {  # WSGI upper-cases header names; log them as Cloud Tasks spells them
    "HTTP_X_CLOUDTASKS_" + suffix.upper(): "X-CloudTasks-" + suffix
    for suffix in (
        "QueueName", "TaskName", "TaskRetryCount", "TaskExecutionCount", "TaskETA",
        "TaskPreviousResponse", "TaskRetryReason",
    )
}  # fmt: skip
_log = logging.getLogger("playbooks.gateway")


def build_apps(manifest: Manifest, source: Path = MAIN) -> dict[str, WSGIApplication]:
    """One functions-framework app per manifest entry, built exactly as Cloud Functions would."""
    return {
        f.name: functions_framework.create_app(f.name, str(source), f.signature)  # type: ignore[no-untyped-call]
        for f in manifest.functions
    }


class Gateway:
    """WSGI dispatcher: the first path segment picks the function; it sees only the rest."""

    def __init__(self, apps: Mapping[str, WSGIApplication], triggered: Iterable[str]) -> None:
        self._apps = dict(apps)
        self._triggered = frozenset(triggered)  # functions the Firestore hook may reach

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        trigger = TRIGGER_ROUTE.match(path)
        if trigger and trigger["name"] in self._triggered:
            name, prefix, rest = trigger["name"], path.rstrip("/"), "/"
        else:
            name, _, tail = path.lstrip("/").partition("/")
            prefix, rest = f"/{name}", f"/{tail}"
        app = self._apps.get(name)
        if app is None:
            return self._not_found(path, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = rest
        return self._logged(name, path, app, environ, start_response)

    def _logged(
        self,
        name: str,
        path: str,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        # Cloud Functions logs one request line per call; the X-CloudTasks-* headers are kept so
        # retries can be read back from the log (which attempt, what the previous one answered).
        seen: dict[str, str] = {}
        started = time.monotonic()

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen["status"] = status
            return start_response(status, headers, exc_info)

        try:
            return app(environ, recording)
        finally:
            tasks = {
                header: str(environ[key]) for key, header in _TASK_HEADERS.items() if key in environ
            }
            event(
                _log, logging.INFO, "gateway request",
                function=name, method=environ.get("REQUEST_METHOD"),
                path=path,
                status=int(seen.get("status", "500").split(" ", 1)[0]),
                durationMs=round((time.monotonic() - started) * 1000, 1),
                **({"cloudTasks": tasks} if tasks else {}),
            )  # fmt: skip

    def _not_found(self, path: str, start_response: StartResponse) -> Iterable[bytes]:
        body = json.dumps(
            {
                "type": "https://bakedbot.ai/problems/not-found",
                "title": "Not Found",
                "status": 404,
                "detail": f"no function serves {path}; the first path segment names one of: "
                + ", ".join(sorted(self._apps)),
            }
        ).encode()
        start_response(
            "404 NOT FOUND",
            [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))],
        )
        return [body]


def create_gateway(manifest: Manifest | None = None) -> Gateway:
    manifest = manifest or load_manifest()
    triggered = [f.name for f in manifest.functions if isinstance(f.trigger, FirestoreTrigger)]
    return Gateway(build_apps(manifest), triggered)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt  # werkzeug's serve_forever ends cleanly on it and closes the socket


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.gateway",
        description="Serve every function of functions/manifest.yaml at http://127.0.0.1:PORT/<name>/",
    )
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args(argv)
    json_logging.configure()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our request line replaces its own
    gateway = create_gateway()
    try:
        # Build the adapters now: a broken configuration fails the start, not the first request,
        # and the embedded bus subscribes its push targets before anything publishes.
        bootstrap.app()
    except Exception as exc:  # any start-up failure: one line on stderr, then exit
        reason = json_logging.redact(str(exc))  # a config error may quote a webhook URL
        print(
            f"gateway: the app could not be built: {type(exc).__name__}: {reason}", file=sys.stderr
        )
        return 1
    server = make_server(HOST, args.port, gateway, threaded=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(f"ready http://{HOST}:{server.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
