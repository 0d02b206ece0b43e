"""How the Google adapters build their gRPC clients and bound their calls' retries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc  # type: ignore[import-untyped]  # grpcio ships no stubs
from google.api_core import retry as gretry

C = TypeVar("C")


def retry_on(*transient: type[Exception], timeout: float) -> gretry.Retry:
    """Retry only `transient` failures, backing off from 50 ms to 1 s, within `timeout` seconds."""
    return gretry.Retry(
        predicate=gretry.if_exception_type(*transient),
        initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout,
    )  # fmt: skip


class LazyClient(Generic[C]):
    """A client built on first use, so importing an adapter needs no credentials.

    The official Cloud Tasks and Cloud Scheduler clients ignore emulator variables, so with
    `emulator_host` (host:port) the client gets an explicit insecure gRPC channel to it.
    """

    def __init__(
        self,
        client_class: Callable[..., C],
        transport_class: Callable[..., Any],
        emulator_host: str | None,
    ) -> None:
        self._client_class, self._transport_class = client_class, transport_class
        self._emulator_host = emulator_host
        self._lock = threading.Lock()
        self._client: C | None = None

    def get(self) -> C:
        with self._lock:
            if self._client is None:
                if self._emulator_host:
                    channel = grpc.insecure_channel(self._emulator_host)
                    transport = self._transport_class(channel=channel)
                    self._client = self._client_class(transport=transport)
                else:
                    self._client = self._client_class()
            return self._client
