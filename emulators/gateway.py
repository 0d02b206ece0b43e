"""Every manifest function at http://127.0.0.1:PORT/<name>/..., like cloudfunctions.net.

On the emulators backend each function runs in a process of its own (`--function NAME`, serving
it at its root), as Cloud Functions gives each its own instances, and this process only routes
(`function_router.FunctionRouter`): a burst of webhooks is not served by the interpreter that runs
steps. The embedded backend keeps every function in this one process, since its bus, task queue
and triggers live in the process (runtime/bootstrap.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import functions_framework
from werkzeug.serving import make_server

from emulators import processes
from emulators.function_router import TRIGGER_ROUTE, FunctionRouter, not_found
from playbook_core import logging as json_logging
from playbook_core.config import load_settings
from playbook_core.logging import event
from playbook_core.runtime import bootstrap
from playbook_core.runtime.manifest import Manifest, load_manifest

if TYPE_CHECKING:
    from types import FrameType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAIN = Path(__file__).resolve().parents[1] / "functions" / "main.py"
HOST = "127.0.0.1"
_TASK_HEADERS = {  # WSGI upper-cases header names; log them as Cloud Tasks spells them
    "HTTP_X_CLOUDTASKS_" + suffix.upper(): "X-CloudTasks-" + suffix
    for suffix in (
        "QueueName", "TaskName", "TaskRetryCount", "TaskExecutionCount", "TaskETA",
        "TaskPreviousResponse", "TaskRetryReason",
    )
}  # fmt: skip
WORKERS_READY_S = 90.0  # every function's process imports and builds its app at once
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
            return not_found(path, self._apps, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = rest
        return logged(name, path, app, environ, start_response)


def logged(
    name: str,
    path: str,
    app: WSGIApplication,
    environ: WSGIEnvironment,
    start_response: StartResponse,
) -> Iterable[bytes]:
    """One request line per call, as Cloud Functions logs.

    The X-CloudTasks-* headers are kept so retries can be read back from the log (which attempt,
    what the previous one answered).
    """
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


class OneFunction:
    """WSGI: one function at the root, as its own service; the path is logged as the router's."""

    def __init__(self, name: str, app: WSGIApplication) -> None:
        self._name, self._app = name, app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = f"/{self._name}{environ.get('PATH_INFO') or '/'}"
        return logged(self._name, path, self._app, environ, start_response)


def create_gateway(manifest: Manifest | None = None) -> Gateway:
    manifest = manifest or load_manifest()
    return Gateway(build_apps(manifest), manifest.document_triggered())


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt  # werkzeug's serve_forever ends cleanly on it and closes the socket


def _start_workers(manifest: Manifest) -> tuple[dict[str, int], list[subprocess.Popen[bytes]]]:
    """One process per function on a port of its own; their output goes where ours does."""
    ports = {f.name: processes.free_port() for f in manifest.functions}
    workers = [
        subprocess.Popen(
            processes.python_module("emulators.gateway", "--port", str(port), "--function", name)
        )
        for name, port in ports.items()
    ]
    try:
        _wait_listening(ports, workers)
    except BaseException:
        _stop(workers)
        raise
    return ports, workers


def _wait_listening(ports: dict[str, int], workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + WORKERS_READY_S
    waiting = dict(ports)
    while waiting:
        if dead := [name for name, w in zip(ports, workers, strict=True) if w.poll() is not None]:
            raise RuntimeError(f"the process of {dead[0]} ended at start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not serving after {WORKERS_READY_S:.0f} s: {sorted(waiting)}")
        waiting = {name: port for name, port in waiting.items() if not _listening(port)}
        time.sleep(0.1)


def _listening(port: int) -> bool:
    """A worker listens only once its app is built, so a connection means it is ready."""
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.kill()


def _serve(app: WSGIApplication, port: int, *, announce: bool = True) -> None:
    """`announce`: the `ready <url>` line the stack waits for (a function's process is quiet)."""
    server = make_server(HOST, port, app, threaded=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if announce:
        print(f"ready http://{HOST}:{server.port}", flush=True)
    server.serve_forever()


def _route(port: int, manifest: Manifest) -> int:
    """This process routes; every function runs in its own (the emulators backend)."""
    try:
        ports, workers = _start_workers(manifest)
    except RuntimeError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    router = FunctionRouter(ports, manifest.document_triggered())
    try:
        _serve(router, port)  # returns on SIGTERM (werkzeug ends serve_forever on the interrupt)
    finally:
        router.close()
        _stop(workers)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.gateway",
        description="Serve every function of functions/manifest.yaml at http://127.0.0.1:PORT/<name>/",
    )
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--function", help="serve only this function, at the root (a worker)")
    args = parser.parse_args(argv)
    json_logging.configure()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our request line replaces its own
    manifest = load_manifest()
    try:
        # Build the adapters now: a broken configuration fails the start, not the first request,
        # and the embedded bus subscribes its push targets before anything publishes. On the
        # emulators backend this process only routes, and each function's process builds its own.
        if args.function is None and load_settings().backend == "emulators":
            return _route(args.port, manifest)
        bootstrap.app()
    except Exception as exc:  # any start-up failure: one line on stderr, then exit
        reason = json_logging.redact(str(exc))  # a config error may quote a webhook URL
        print(
            f"gateway: the app could not be built: {type(exc).__name__}: {reason}", file=sys.stderr
        )
        return 1
    gateway: WSGIApplication
    if args.function is None:
        gateway = create_gateway(manifest)
    else:
        (function,) = [f for f in manifest.functions if f.name == args.function]
        only = manifest.model_copy(update={"functions": [function]})
        gateway = OneFunction(function.name, build_apps(only)[function.name])
    _serve(gateway, args.port, announce=args.function is None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
