"""Record what Firestore triggers and Pub/Sub deliver, so nothing arrives unseen.

The event pipeline issue turns these into canonical events and executions.
"""

from __future__ import annotations

import logging
from typing import Any

from playbook_core.logging import event

_log = logging.getLogger("playbooks.intake")


def document_changed(
    *, function: str, path: str, kind: str, changed: frozenset[str], event_id: str
) -> dict[str, Any]:
    summary = {
        "function": function,
        "document": path,
        "kind": kind,
        "changed": sorted(changed),
        "ceId": event_id,
    }
    event(_log, logging.INFO, "document change received", **summary)
    return summary


def event_published(*, message_id: str, attributes: dict[str, str]) -> dict[str, Any]:
    summary = {
        "messageId": message_id,
        "eventId": attributes.get("eventId"),
        "eventName": attributes.get("name"),
        "orgId": attributes.get("orgId"),
    }
    event(_log, logging.INFO, "event message received", **summary)
    return summary
