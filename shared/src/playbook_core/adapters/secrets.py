"""Secrets behind the Secrets port: Secret Manager when deployed, a private collection locally."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from playbook_core.domain.collections import SECRETS
from playbook_core.domain.errors import NotFound, Unavailable
from playbook_core.domain.ids import h
from playbook_core.ports import DocumentStore

if TYPE_CHECKING:  # imported on first use: it loads grpc, which not every function needs
    from playbook_core.adapters.grpc_clients import LazyClient

CACHE_SECONDS = 300
CALL_TIMEOUT_S = 5.0  # the whole call, retries included: a webhook's ack may be waiting on it


class StoreSecrets:
    """Local stack: one document per version, referenced as `local:<name>@<version>`.

    Versions, like Secret Manager's, keep a rotated-out secret readable while a source still
    lists it as the previous one.
    """

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def put(self, name: str, value: str) -> str:
        # Same value, same version: registering a store again with its secret changes nothing.
        version = f"{name}@{h(name, value)[:16]}"
        self.store.set(SECRETS, version, {"orgId": "_system", "value": value})
        return f"local:{version}"

    def get(self, reference: str) -> str:
        document = self.store.get(SECRETS, reference.removeprefix("local:"))
        if document is None:
            raise NotFound("secret reference not found")
        return str(document["value"])

    def discard(self, reference: str) -> None:
        self.store.delete(SECRETS, reference.removeprefix("local:"))


class SecretManagerSecrets:
    """Google Secret Manager, or our emulator when `emulator_host` (host:port) is given.

    Values are cached for at most 5 minutes in memory (domain.md §6.1). The official client ignores
    emulator variables, so the emulator gets an explicit insecure gRPC channel (`LazyClient`).
    """

    def __init__(
        self,
        project: str,
        emulator_host: str | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.project = project
        self._timeout_s = timeout_s
        self._emulator_host = emulator_host
        self._monotonic = monotonic  # the cache's clock; tests step it past CACHE_SECONDS
        self._client: LazyClient[Any] | None = None
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                # Imported on first use, like the client is built: not every function reads secrets.
                from google.cloud import secretmanager  # noqa: PLC0415
                from google.cloud.secretmanager_v1.services.secret_manager_service import (  # noqa: PLC0415
                    transports,
                )

                from playbook_core.adapters.grpc_clients import LazyClient  # noqa: PLC0415

                self._client = LazyClient(
                    secretmanager.SecretManagerServiceClient,
                    transports.SecretManagerServiceGrpcTransport,
                    self._emulator_host,
                )
        return self._client.get()

    def put(self, name: str, value: str) -> str:
        from google.api_core import exceptions  # noqa: PLC0415

        client = self.client()
        parent = f"projects/{self.project}"
        try:
            client.create_secret(
                request={
                    "parent": parent,
                    "secret_id": name,
                    "secret": {"replication": {"automatic": {}}},
                },
                timeout=self._timeout_s,
            )
        except exceptions.AlreadyExists:
            pass
        except exceptions.GoogleAPIError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
        try:
            version = client.add_secret_version(
                request={"parent": f"{parent}/secrets/{name}", "payload": {"data": value.encode()}},
                timeout=self._timeout_s,
            )
        except exceptions.GoogleAPIError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
        return str(version.name)

    def get(self, reference: str) -> str:
        from google.api_core import exceptions  # noqa: PLC0415

        with self._lock:
            cached = self._cache.get(reference)
            if cached is not None and self._monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
        try:
            response = self.client().access_secret_version(
                request={"name": reference}, timeout=self._timeout_s
            )
        except (
            exceptions.NotFound,
            exceptions.FailedPrecondition,
            exceptions.InvalidArgument,
        ) as exc:
            # FailedPrecondition: the version is disabled or destroyed, so its value is gone too;
            # InvalidArgument: the reference names no secret at all.
            raise NotFound("secret reference not found") from exc
        except exceptions.GoogleAPIError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
        value = response.payload.data.decode()
        with self._lock:
            self._cache[reference] = (self._monotonic(), value)
        return str(value)

    def discard(self, reference: str) -> None:
        from google.api_core import exceptions  # noqa: PLC0415

        with self._lock:
            self._cache.pop(reference, None)
        try:
            self.client().destroy_secret_version(
                request={"name": reference}, timeout=self._timeout_s
            )
        except (exceptions.NotFound, exceptions.FailedPrecondition, exceptions.InvalidArgument):
            pass  # already gone, or no version of ours at all: nothing to destroy
        except exceptions.GoogleAPIError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
