"""Secrets behind the Secrets port: Secret Manager when deployed, a private collection locally."""

from __future__ import annotations

import threading
import time
from typing import Any

from playbook_core.domain.collections import SECRETS
from playbook_core.domain.errors import NotFound, Unavailable
from playbook_core.domain.ids import h
from playbook_core.ports import DocumentStore

CACHE_SECONDS = 300


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
    """Google Secret Manager; values cached for at most 5 minutes in memory (domain.md §6.1)."""

    def __init__(self, project: str) -> None:
        self.project = project
        self._client: Any = None
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _secret_manager(self) -> Any:
        if self._client is None:
            from google.cloud import secretmanager  # noqa: PLC0415 - built on first use

            self._client = secretmanager.SecretManagerServiceClient()
        return self._client

    def put(self, name: str, value: str) -> str:
        from google.api_core import exceptions  # noqa: PLC0415

        client = self._secret_manager()
        parent = f"projects/{self.project}"
        try:
            client.create_secret(
                request={
                    "parent": parent,
                    "secret_id": name,
                    "secret": {"replication": {"automatic": {}}},
                }
            )
        except exceptions.AlreadyExists:
            pass
        except exceptions.GoogleAPICallError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
        try:
            version = client.add_secret_version(
                request={"parent": f"{parent}/secrets/{name}", "payload": {"data": value.encode()}}
            )
        except exceptions.GoogleAPICallError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
        return str(version.name)

    def get(self, reference: str) -> str:
        from google.api_core import exceptions  # noqa: PLC0415

        with self._lock:
            cached = self._cache.get(reference)
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
        try:
            response = self._secret_manager().access_secret_version(request={"name": reference})
        except exceptions.NotFound as exc:
            raise NotFound("secret reference not found") from exc
        except exceptions.GoogleAPICallError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
        value = response.payload.data.decode()
        with self._lock:
            self._cache[reference] = (time.monotonic(), value)
        return str(value)

    def discard(self, reference: str) -> None:
        from google.api_core import exceptions  # noqa: PLC0415

        with self._lock:
            self._cache.pop(reference, None)
        try:
            self._secret_manager().destroy_secret_version(request={"name": reference})
        except exceptions.NotFound:
            pass
        except exceptions.GoogleAPICallError as exc:
            raise Unavailable("Secret Manager is unavailable") from exc
