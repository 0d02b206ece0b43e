"""Turn Pub/Sub and Firestore CloudEvents into plain typed values (operations.md §5–6).

Firestore bodies arrive as raw DocumentEventData protobuf (deployed Eventarc) or as the same bytes
base64-encoded (the emulator); the path comes from the `document`/`subject` attributes because the
emulator's `source` is malformed; changed fields are diffed because `update_mask` is empty locally.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.events.cloud.firestore_v1.types import Document, DocumentEventData, Value
from google.protobuf.message import DecodeError

from playbook_core.domain.errors import BadRequest


@dataclass(frozen=True)
class DocumentChange:
    event_id: str
    event_type: str
    path: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: frozenset[str]

    @property
    def collection(self) -> str:
        return self.path.split("/")[-2]

    @property
    def document_id(self) -> str:
        return self.path.split("/")[-1]

    @property
    def kind(self) -> str:
        if self.before is None:
            return "created"
        return "deleted" if self.after is None else "updated"


@dataclass(frozen=True)
class PubsubMessage:
    message_id: str
    attributes: dict[str, str]
    data: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest("the Pub/Sub message data is not JSON") from exc


def parse_document_event(body: bytes) -> DocumentEventData:
    try:
        event: DocumentEventData = DocumentEventData.deserialize(body)
    except DecodeError:
        try:
            raw = base64.b64decode(body, validate=True)
            event = DocumentEventData.deserialize(raw)
        except (binascii.Error, DecodeError) as exc:
            raise BadRequest("the Firestore event body is not DocumentEventData") from exc
    return event


def plain_value(value: Value) -> Any:
    """One Firestore Value as plain Python (timestamps aware UTC, maps and arrays recursive)."""
    pb = Value.pb(value)
    kind = pb.WhichOneof("value_type")
    if kind is None or kind == "null_value":
        return None
    if kind == "map_value":
        return {key: plain_value(item) for key, item in value.map_value.fields.items()}
    if kind == "array_value":
        return [plain_value(item) for item in value.array_value.values]
    if kind == "timestamp_value":
        stamp: datetime = value.timestamp_value
        return stamp.astimezone(UTC)
    if kind == "geo_point_value":
        return {"latitude": pb.geo_point_value.latitude, "longitude": pb.geo_point_value.longitude}
    return getattr(value, kind)


def _document(doc: Document) -> dict[str, Any] | None:
    if not Document.pb(doc).name:
        return None
    return {key: plain_value(item) for key, item in doc.fields.items()}


def _path(attributes: Mapping[str, Any]) -> str:
    document = attributes.get("document")
    if document:
        return str(document)
    subject = str(attributes.get("subject") or "")
    if subject.startswith("documents/"):
        return subject.removeprefix("documents/")
    raise BadRequest("the Firestore event has no document or subject attribute")


def decode_firestore_change(attributes: Mapping[str, Any], data: bytes | str) -> DocumentChange:
    body = data.encode("ascii") if isinstance(data, str) else data
    event = parse_document_event(body)
    before, after = _document(event.old_value), _document(event.value)
    keys = set(before or {}) | set(after or {})
    changed = frozenset(k for k in keys if (before or {}).get(k) != (after or {}).get(k))
    return DocumentChange(
        event_id=str(attributes.get("id", "")),
        event_type=str(attributes.get("type", "")),
        path=_path(attributes),
        before=before,
        after=after,
        changed=changed,
    )


def decode_pubsub(data: Mapping[str, Any]) -> PubsubMessage:
    """The `{message: {data, attributes, messageId}}` wrapper functions-framework hands over."""
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise BadRequest("the CloudEvent carries no Pub/Sub message")
    try:
        payload = base64.b64decode(message.get("data") or "", validate=True)
    except binascii.Error as exc:
        raise BadRequest("the Pub/Sub message data is not base64") from exc
    attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
    message_id = str(message.get("messageId") or message.get("message_id") or "")
    return PubsubMessage(message_id=message_id, attributes=attributes, data=payload)
