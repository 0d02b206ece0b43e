"""The canonical event (domain.md §5.3): what every producer publishes and dispatch consumes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_ENVELOPE_BYTES = 256 * 1024
MAX_LINE_ITEMS = 100
SourceKind = Literal["shopify", "woocommerce", "firestore", "api", "system", "playbook"]


class _Wire(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True,
        serialize_by_alias=True,
    )  # fmt: skip


class Consent(_Wire):
    email: bool | None = None
    sms: bool | None = None


class Customer(_Wire):
    id: str | None = None
    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    consent: Consent | None = None
    # Where messages land for the compliance rules (compliance.md): a US state code.
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    age_verified: bool | None = None  # 21+ checked by the org (ingest API, customer documents)


class Source(_Wire):
    kind: SourceKind
    ref: str
    topic: str | None = None
    delivery_id: str | None = None
    triggered_at: str | None = None
    stale: bool | None = None
    age_seconds: Annotated[int, Field(ge=0)] | None = None  # receivedAt − triggeredAt, when stale


class Causation(_Wire):
    chain: list[str] = []
    depth: Annotated[int, Field(ge=0)] = 0


class EventEnvelope(_Wire):
    spec_version: Literal["1"] = "1"
    event_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_:.-]{1,128}$")]
    org_id: Annotated[str, Field(min_length=1, max_length=128)]
    name: str
    original_name: str | None = None
    occurred_at: datetime
    received_at: datetime
    source: Source
    customer: Customer | None = None
    dedupe_key: Annotated[str, Field(max_length=200)] | None = None
    data: dict[str, Any] = {}
    causation: Causation | None = None

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes: what handlers need without decoding (push loses the topic)."""
        return {"orgId": self.org_id, "name": self.name, "eventId": self.event_id}

    def encode(self) -> bytes:
        """UTF-8 JSON, ≤256 KiB: line items cut to 100 (`data.truncated`) when too large."""
        document = self.model_dump(mode="json", exclude_none=True)
        raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        if len(raw) <= MAX_ENVELOPE_BYTES:
            return raw
        data = dict(document.get("data", {}))
        if isinstance(data.get("lineItems"), list):
            data["lineItems"] = data["lineItems"][:MAX_LINE_ITEMS]
        data["truncated"] = True
        document["data"] = data
        raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        if len(raw) > MAX_ENVELOPE_BYTES:
            document["data"] = {
                "truncated": True,
                **{k: data[k] for k in ("orderId", "productId") if k in data},
            }
            raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return raw

    @classmethod
    def decode(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate_json(raw)
