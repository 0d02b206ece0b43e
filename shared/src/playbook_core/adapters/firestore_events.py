"""Firestore-trigger CloudEvents for the embedded store, byte for byte what the emulator sends.

Used as `EmbeddedStore(on_commit=...)`: the gateway's trigger route and the functions behind it
then cannot tell the embedded backend from the emulator (operations.md §5). Delivery is
fire-and-forget like the emulator's, on one background thread so a write never waits for the
handler (which may itself write) and events keep their commit order.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from google.events.cloud.firestore_v1.types import (
    ArrayValue,
    Document,
    DocumentEventData,
    MapValue,
    Value,
)

_NULL = 0  # google.protobuf.NullValue.NULL_VALUE
_SCALARS: tuple[tuple[type, str], ...] = (
    (bool, "boolean_value"),  # before int: bool is an int subclass
    (int, "integer_value"),
    (float, "double_value"),
    (str, "string_value"),
    (bytes, "bytes_value"),
)
_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/"
    "firestore/v1/data.proto"
)
_log = logging.getLogger(__name__)


def to_value(value: Any) -> Value:
    """One plain value as a Firestore Value: the inverse of runtime.cloudevents.plain_value."""
    if value is None:
        return Value(null_value=_NULL)
    for kind, field in _SCALARS:
        if isinstance(value, kind):
            return Value(**{field: value})
    if isinstance(value, datetime):
        return Value(timestamp_value=value.astimezone(UTC))
    if isinstance(value, list | tuple):
        return Value(array_value=ArrayValue(values=[to_value(item) for item in value]))
    if isinstance(value, Mapping):
        return Value(map_value=MapValue(fields=to_fields(value)))
    raise TypeError(f"no Firestore value for {type(value).__name__}")


def to_fields(data: Mapping[str, Any]) -> dict[str, Value]:
    return {key: to_value(item) for key, item in data.items()}


def document_event(
    name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, now: datetime
) -> DocumentEventData:
    """`old_value` unset on create and `value` unset on delete; empty update_mask, as locally."""
    event = DocumentEventData()
    for target, data in (("old_value", before), ("value", after)):
        if data is not None:
            # Our store keeps no create time; the write time stands in (decoders ignore both).
            doc = Document(name=name, fields=to_fields(data), create_time=now, update_time=now)
            setattr(event, target, doc)
    return event


class FirestoreTriggerPoster:
    def __init__(
        self,
        url_for: Callable[[str], str | None],
        *,
        project: str = "demo-playbooks",
        database: str = "(default)",
        timeout_s: float = 10.0,
    ) -> None:
        self._url_for, self._project, self._database = url_for, project, database
        self._http = httpx.Client(trust_env=False, timeout=timeout_s)  # local: never a proxy
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="firestore-triggers")
        self._lock = threading.Lock()
        self._last: Future[None] | None = None
        self._closed = False

    def __call__(
        self,
        collection: str,
        doc_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        path = f"{collection}/{doc_id}"
        url = self._url_for(path)
        if url is None:
            return
        now = datetime.now(UTC)
        name = f"projects/{self._project}/databases/{self._database}/documents/{path}"
        body = base64.b64encode(
            DocumentEventData.serialize(document_event(name, before, after, now))
        )
        headers = self._headers(path, now)
        with self._lock:
            if self._closed:
                _log.warning("firestore trigger for %s dropped: poster closed", path)
                return
            self._last = self._sender.submit(self._send, url, body, headers)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every event handed over so far has been posted (or dropped)."""
        with self._lock:
            last = self._last
        if last is not None:
            last.result(timeout)  # one sender thread: the last one done means all are

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._sender.shutdown(wait=True)
        self._http.close()

    def _headers(self, path: str, now: datetime) -> dict[str, str]:
        return {
            "ce-specversion": "1.0",
            "ce-type": "google.cloud.firestore.document.v1.written",
            # "projects" doubled, exactly as the emulator writes it; decoders read ce-document.
            "ce-source": (
                f"//firestore.googleapis.com/projects/projects/{self._project}"
                f"/databases/{self._database}"
            ),
            "ce-id": str(uuid.uuid4()),
            "ce-subject": f"documents/{path}",
            "ce-time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ce-datacontenttype": "application/protobuf",
            "ce-dataschema": _SCHEMA,
            "ce-location": "us-central1",
            "ce-project": self._project,
            "ce-database": self._database,
            "ce-namespace": "(default)",
            "ce-document": path,
            "Content-Type": "application/protobuf",
        }

    def _send(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            _log.warning("firestore trigger %s for %s lost: %s", url, headers["ce-document"], exc)
            return
        if response.status_code >= 300:  # the emulator logs and moves on; so do we
            _log.warning(
                "firestore trigger %s for %s answered %s",
                url,
                headers["ce-document"],
                response.status_code,
            )
