"""`on_event_dead_lettered` (domain.md §5.5 step 9): what Pub/Sub gave up on, logged and alerted.

A subscription of `playbook-events` dead-letters a message after its 10th failed delivery (an
outage, or pushes refused for their token). This function receives each such message from the
dead-letter topic: it records the outcome `dead_lettered` for the message's event, and alerts ops
at most once an hour. The message itself stays on the hold subscription for replay
(operations.md §15.5).

Storage errors propagate: the function fails and Pub/Sub redelivers.
"""

from __future__ import annotations

import logging
from typing import Any

from playbook_core.domain.events import canonical_name
from playbook_core.logging import bound, event
from playbook_core.ports import Clock, DocumentStore
from playbook_core.service.dispatch.dispatcher import (
    PushedMessage,
    decode_envelope,
    message_ids,
    record_unreadable,
    with_canonical_name,
)
from playbook_core.service.execution.provider_alerts import Alerter
from playbook_core.service.ingress.event_log import record_first_outcome

# Attributes Pub/Sub adds when it dead-letters a message.
SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
ALERT_SUBJECT = "dead_lettered_events"
_log = logging.getLogger("playbooks.dispatch")


def record_dead_letter(
    message: PushedMessage, *, store: DocumentStore, clock: Clock, alerts: Alerter
) -> dict[str, Any]:
    """Log `dead_lettered` for the message's event, then alert ops (throttled).

    The entry is created only when the event has none: every subscription of the topic
    dead-letters to the same topic, and the attribution copy of an event that was dispatched
    must not hide its dispatch outcome. An undecodable message is filed as invalid envelopes are
    (the attributes' org and event id, else `msg_`+h(messageId)).
    """
    envelope = decode_envelope(message)
    ids = message_ids(message, envelope)
    source = {
        "subscription": message.attributes.get(SOURCE_SUBSCRIPTION),
        "deliveryAttempts": message.attributes.get(DELIVERY_COUNT),
    }
    event(_log, logging.WARNING, "event message dead-lettered", **ids, **source)
    with bound(eventId=ids["eventId"], orgId=ids["orgId"]):
        if envelope is None:
            recorded = record_unreadable(
                message, "dead_lettered", store=store, clock=clock, keep_existing=True
            )
        else:
            name = canonical_name(envelope.name)
            if name is not None:
                envelope = with_canonical_name(envelope, name)
            recorded = record_first_outcome(store=store, envelope=envelope, outcome="dead_lettered")
        alerted = alerts.ops_alert(
            subject=ALERT_SUBJECT,
            text=(
                f"[Playbooks] events are being dead-lettered: {ids['eventName']} {ids['eventId']} "
                f"of org {ids['orgId']} from {source['subscription']} after "
                f"{source['deliveryAttempts']} attempts; later ones this hour are not alerted "
                "(runbook: operations.md §15.5)"
            ),
            now=clock.now(),
            **ids,
            **source,
        )
    return {**ids, "outcome": "dead_lettered", "recorded": recorded, "alerted": alerted}
