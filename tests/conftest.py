"""Shared fixtures: environment isolation and emulator detection."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
