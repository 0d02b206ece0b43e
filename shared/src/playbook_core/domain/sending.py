"""Send rules (domain.md §7.7–7.9): idempotency keys, consent, per-customer dedup and caps.

The claim is a pure decision over the contact-state document; the store applies it in one
transaction, so two concurrent sends to one customer cannot both pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from playbook_core.domain import matching
from playbook_core.domain.ids import h

Channel = Literal["email", "sms"]
Outcome = Literal["send", "deduped", "frequency_capped"]
MAX_WINDOW = timedelta(hours=168)
# Events whose customer-facing sends lose their point when the event arrives late (§7.10
# `stale_event`): an abandoned-checkout or cart reminder days after the visit.
TIME_SENSITIVE_EVENTS = frozenset({"checkout.started", "cart.created"})


def idempotency_key(execution_id: str, step_index: int, recipient: str) -> str:
    return h(execution_id, step_index, recipient)


def delivery_id(key: str) -> str:
    return "dlv_" + key


def send_log_id(key: str) -> str:
    return "snd_" + key


def identity_key(customer: dict[str, Any] | None, recipient: str) -> str:
    """The customer's identity (matching.identity_key), else the normalised recipient itself."""
    customer = customer or {}
    found = matching.identity_key(
        dedupe_key=customer.get("dedupeKey"),
        customer_id=customer.get("id"),
        email=customer.get("email"),
        phone=customer.get("phone"),
    )
    return found or ("em:" if "@" in recipient else "ph:") + recipient


def contact_state_id(org_id: str, identity: str) -> str:
    return "cst_" + h(org_id, identity)


def consent_allows(
    channel: Channel, consent: dict[str, Any] | None, *, transactional: bool
) -> bool:
    """§7.9: SMS marketing needs an explicit yes; email is allowed unless explicitly refused."""
    value = (consent or {}).get(channel)
    if channel == "sms":
        return value is not False if transactional else value is True
    return transactional or value is not False


def too_late_for(event: dict[str, Any] | None) -> bool:
    """§7.10: the run's event is time-sensitive and arrived stale (`source.stale`, §6.4 rule 6)."""
    if not event or event.get("name") not in TIME_SENSITIVE_EVENTS:
        return False
    source = event.get("source")
    return isinstance(source, dict) and source.get("stale") is True


@dataclass(frozen=True)
class Cap:
    max: int
    window_hours: int


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    state: dict[str, Any]  # the contact state to write when outcome == "send"
    last_sent_at: datetime | None = None
    recent_count: int = 0


def decide(
    state: dict[str, Any] | None,
    *,
    playbook_id: str,
    execution_id: str,
    delivery: str,
    channel: Channel,
    transactional: bool,
    now: datetime,
    dedup_window: timedelta,
    cap: Cap | None,
) -> Claim:
    """Dedup per (customer, playbook) in a rolling window, then the per-channel cap."""
    state = dict(state or {})
    by_playbook = dict(state.get("lastByPlaybook") or {})
    recent = {key: list(value) for key, value in (state.get("recentSends") or {}).items()}
    previous = by_playbook.get(playbook_id)
    if (
        previous
        and previous.get("executionId") != execution_id
        and now - previous["at"] < dedup_window
    ):
        return Claim("deduped", state, last_sent_at=previous["at"])
    channel_sends = [s for s in recent.get(channel, []) if s.get("deliveryId") != delivery]
    if cap is not None and not transactional:
        window = timedelta(hours=cap.window_hours)
        inside = [s for s in channel_sends if now - s["at"] < window]
        if len(inside) >= cap.max:
            return Claim("frequency_capped", state, recent_count=len(inside))
    by_playbook[playbook_id] = {"at": now, "executionId": execution_id, "channel": channel}
    recent[channel] = [s for s in channel_sends if now - s["at"] < MAX_WINDOW] + [
        {"at": now, "deliveryId": delivery, "executionId": execution_id}
    ]
    return Claim("send", {**state, "lastByPlaybook": by_playbook, "recentSends": recent})


def release(state: dict[str, Any], *, execution_id: str) -> dict[str, Any]:
    """Remove this execution's claims after a final failure, rejection or expiry (§7.8 rule 5)."""
    by_playbook = {
        playbook: entry
        for playbook, entry in (state.get("lastByPlaybook") or {}).items()
        if entry.get("executionId") != execution_id
    }
    recent = {
        channel: [s for s in sends if s.get("executionId") != execution_id]
        for channel, sends in (state.get("recentSends") or {}).items()
    }
    return {**state, "lastByPlaybook": by_playbook, "recentSends": recent}
