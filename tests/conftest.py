"""Shared fixtures and helpers: environment isolation, emulator detection, HTTP targets, processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from emulators import official, processes
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.testing import RecordingServer

ROOT = Path(__file__).parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-emulators",
        action="store_true",
        default=False,
        help="fail instead of skipping when the Firestore/Pub/Sub emulators cannot be used",
    )


REAPED = pytest.StashKey[list[int]]()


def pytest_configure(config: pytest.Config) -> None:
    """Stop what killed runs left behind, then own (and on a signal stop) all this run starts."""
    config.stash[REAPED] = processes.reap_dead_runs()
    run = processes.claim_run()

    def stop_and_die(signum: int, frame: FrameType | None) -> None:
        del frame
        for each in (signal.SIGTERM, signal.SIGINT):
            signal.signal(each, signal.SIG_IGN)  # a second Ctrl-C must not cut the stopping short
        try:
            stopped = processes.stop_run(run)
            capture = config.pluginmanager.getplugin("capturemanager")
            with contextlib.suppress(Exception):  # to the terminal, not into a test's output
                capture.suspend_global_capture()
            name = signal.Signals(signum).name
            sys.stderr.write(f"\n{name}: stopped {len(stopped)} processes this test run started\n")
            sys.stderr.flush()
        finally:
            # Die of the signal itself: the caller sees the conventional status (128 + N).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            os._exit(128 + signum)  # only if the signal did not end the process

    signal.signal(signal.SIGTERM, stop_and_die)
    signal.signal(signal.SIGINT, stop_and_die)


def pytest_report_header(config: pytest.Config) -> str | None:
    reaped = config.stash.get(REAPED, [])
    if not reaped:
        return None
    return f"stopped {len(reaped)} processes a killed test run left running (pids {reaped})"


def require_official_emulators(request: pytest.FixtureRequest) -> official.Availability:
    """The official emulators' files; without them the test is skipped with the reason, or fails
    under --require-emulators."""
    found = official.installed()
    if not found.present:
        reason = f"official emulators unavailable: missing {found.missing}"
        if request.config.getoption("--require-emulators"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


# The two backends a whole stack runs on, for fixtures that start one per backend.
STACK_BACKENDS = [pytest.param("emulators", marks=pytest.mark.emulator), "embedded"]


def stack_backend(request: pytest.FixtureRequest) -> str:
    """The backend of a fixture parametrised with STACK_BACKENDS; `emulators` needs the official
    emulators (see require_official_emulators)."""
    backend = str(request.param)
    if backend == "emulators":
        require_official_emulators(request)
    return backend


def assert_serves_until_sigterm(module: str, *args: str, use: Callable[[str], None]) -> None:
    """`python -m <module> --port 0 ARGS` prints `ready 127.0.0.1:<port>` first, serves while
    `use(address)` talks to it, then exits 0 on SIGTERM."""
    command = [sys.executable, "-m", module, "--port", "0", *args]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603  # our own module
    try:
        ready = proc.stdout.readline()  # the first line, or "" if the process died
        assert ready.startswith("ready 127.0.0.1:")
        use(ready.split()[1])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    """An HTTP target that records what reaches it (pushes, tasks, jobs); stopped after the test."""
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcp_emulators(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The official Firestore and Pub/Sub emulators, once per session, with a trigger sink.

    Missing Java or JARs: skipped with the reason, or a failure under --require-emulators.
    """
    found = require_official_emulators(request)
    sink = RecordingServer().start()
    logs = tmp_path_factory.mktemp("emulator-logs")
    sink_address = sink.url.removeprefix("http://")
    firestore = official.start_firestore(found, logs, functions_emulator=sink_address)
    pubsub = official.start_pubsub(found, logs)
    try:
        firestore.wait_ready()
        pubsub.wait_ready()
        yield {"firestore": firestore, "pubsub": pubsub, "trigger_sink": sink}
    finally:
        firestore.stop()
        pubsub.stop()
        sink.stop()


@pytest.fixture
def emulator_env(gcp_emulators) -> dict:
    """Point the official Google clients at the session emulators (restored after the test)."""
    os.environ["FIRESTORE_EMULATOR_HOST"] = gcp_emulators["firestore"].host
    os.environ["PUBSUB_EMULATOR_HOST"] = gcp_emulators["pubsub"].host
    os.environ["GOOGLE_CLOUD_PROJECT"] = "demo-playbooks"
    return gcp_emulators


@pytest.fixture(params=["embedded", pytest.param("firestore", marks=pytest.mark.emulator)])
def new_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """A factory of empty stores of each backend: on Firestore, each one a database of its own."""
    made: list[Any] = []

    def make() -> Any:
        if request.param == "embedded":
            store: Any = EmbeddedStore(":memory:")
        else:
            request.getfixturevalue("emulator_env")
            from playbook_core.adapters.firestore import FirestoreStore

            store = FirestoreStore(f"demo-{uuid.uuid4().hex[:12]}")
        made.append(store)
        return store

    yield make
    for store in made:
        if isinstance(store, EmbeddedStore):
            store.close()
