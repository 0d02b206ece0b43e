"""Shared fixtures: environment isolation and emulator detection."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from emulators import official
from playbook_core.testing import RecordingServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-emulators",
        action="store_true",
        default=False,
        help="fail instead of skipping when the Firestore/Pub/Sub emulators cannot be used",
    )


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def gcp_emulators(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The official Firestore and Pub/Sub emulators, once per session, with a trigger sink.

    Missing Java or JARs: skipped with the reason, or a failure under --require-emulators.
    """
    found = official.detect(os.environ.get("PLAYBOOKS_GCLOUD_ROOT", official.DEFAULT_ROOT))
    if not found.present:
        reason = f"official emulators unavailable: missing {found.missing}"
        if request.config.getoption("--require-emulators"):
            pytest.fail(reason)
        pytest.skip(reason)
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
