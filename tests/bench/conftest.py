"""The stores the benchmarks measure on: the official Firestore emulator, else the embedded one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from emulators import official
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.firestore import FirestoreStore


def _bench(request: pytest.FixtureRequest) -> str:
    return str(request.module.__name__).rsplit(".", 1)[-1]  # bench_engine


@pytest.fixture(scope="module")
def firestore_emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[official.Emulator]:
    """The module's own official Firestore emulator; without it the benchmark is skipped, loudly."""
    found = official.installed()
    if not found.present:
        reason = f"{_bench(request)} skipped: official emulators unavailable ({found.missing})"
        print(f"\n!!! {reason}")
        pytest.skip(reason)
    emulator = official.start_firestore(found, tmp_path_factory.mktemp(_bench(request)))
    try:
        emulator.wait_ready()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def measured_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Any]]:
    """(label, store): the Firestore emulator (its own, no triggers wired) when available and
    PLAYBOOKS_BACKEND is not `embedded`, else an embedded store."""
    found = official.installed()
    folder = tmp_path_factory.mktemp(_bench(request))
    if not found.present or os.environ.get("PLAYBOOKS_BACKEND") == "embedded":
        print(
            f"\n[{_bench(request)} store: embedded; official emulators: {found.missing or 'not used'}]"
        )
        store = EmbeddedStore(str(folder / "bench.sqlite3"))
        try:
            yield "embedded store", store
        finally:
            store.close()
        return
    emulator = official.start_firestore(found, folder)
    try:
        emulator.wait_ready()
        saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        firestore_store = FirestoreStore(official.PROJECT)
        firestore_store.client()  # the client reads the emulator address once, now
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST")
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved
        yield "Firestore emulator", firestore_store
    finally:
        emulator.stop()
