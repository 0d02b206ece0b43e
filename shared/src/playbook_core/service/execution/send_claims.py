"""Claims before a send (domain.md §7.8): the per-customer dedup lock and the channel cap."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from playbook_core.domain.collections import COMMUNICATIONS, DELIVERIES
from playbook_core.domain.errors import AlreadyExists
from playbook_core.domain.ids import h
from playbook_core.domain.records import DeliveryRecord, ExecutionRecord
from playbook_core.domain.sending import Cap, contact_state_id, decide, release
from playbook_core.ports import DocumentStore, Transaction
from playbook_core.service.records import read_delivery

if TYPE_CHECKING:
    from playbook_core.service.execution.actions import ActionContext
    from playbook_core.service.execution.deliveries import Message

LEASE = timedelta(minutes=2)  # a send that crashed mid-call is retried after this


def claim(
    *,
    store: DocumentStore,
    ctx: ActionContext,
    message: Message,
    document: DeliveryRecord,
    dedup_window: timedelta,
    cap: Cap | None,
    now: datetime,
) -> Literal["send", "deduped", "frequency_capped", "done"]:
    """The dedup lock, then one transaction: the cap claim and the delivery → sending."""
    execution = ctx.execution
    identity = document["identityKey"]
    state_id = contact_state_id(execution["orgId"], identity)
    if message.customer_facing and not _take_dedup_lock(
        store,
        execution=execution,
        identity=identity,
        delivery=document["id"],
        window=dedup_window,
        now=now,
    ):
        return "deduped"

    def work(tx: Transaction) -> Literal["send", "deduped", "frequency_capped", "done"]:
        current = read_delivery(tx, document["id"])
        state = tx.get(COMMUNICATIONS, state_id)
        if current is not None and current.get("status") in ("sent", "skipped"):
            return "done"
        if (
            current is not None
            and current.get("status") == "sending"
            and (lease := current.get("leaseUntil")) is not None
            and lease > now
        ):
            return "done"
        if message.customer_facing:
            decision = decide(
                state,
                playbook_id=execution["playbookId"],
                execution_id=execution["id"],
                delivery=document["id"],
                channel=message.channel,
                transactional=message.transactional,
                now=now,
                dedup_window=dedup_window,
                cap=cap,
            )
            if decision.outcome != "send":
                return decision.outcome
            tx.set(
                COMMUNICATIONS,
                state_id,
                {
                    **decision.state,
                    "orgId": execution["orgId"],
                    "kind": "contact_state",
                    "identityKey": identity,
                    "identityType": identity.split(":", 1)[0],
                    "updatedAt": now,
                },
            )
        tx.set(
            DELIVERIES,
            document["id"],
            {
                **(current or document),
                "status": "sending",
                "leaseUntil": now + LEASE,
                "updatedAt": now,
            },
        )
        return "send"

    return store.transaction(work)


def dedup_lock_id(execution: ExecutionRecord, identity: str) -> str:
    return "lck_" + h(execution["orgId"], identity, execution["playbookId"])


def _take_dedup_lock(
    store: DocumentStore,
    *,
    execution: ExecutionRecord,
    identity: str,
    delivery: str,
    window: timedelta,
    now: datetime,
) -> bool:
    """Per (customer, playbook): a `create()` of one deterministic document decides the race.

    Concurrent runs for one customer fail fast with ALREADY_EXISTS instead of contending in
    a transaction; only a lock older than the window is replaced, transactionally.
    """
    lock_id = dedup_lock_id(execution, identity)
    lock = {
        "orgId": execution["orgId"],
        "kind": "dedup_lock",
        "identityKey": identity,
        "playbookId": execution["playbookId"],
        "executionId": execution["id"],
        "deliveryId": delivery,
        "at": now,
        "expiresAt": now + window,
    }
    try:
        store.create(COMMUNICATIONS, lock_id, lock)
    except AlreadyExists:
        pass
    else:
        return True

    def replace_if_stale(tx: Transaction) -> bool:
        current = tx.get(COMMUNICATIONS, lock_id)
        if current is not None and current.get("executionId") == execution["id"]:
            return True
        if current is not None and now - current["at"] < window:
            return False
        tx.set(COMMUNICATIONS, lock_id, lock)
        return True

    return store.transaction(replace_if_stale)


def release_claim(store: DocumentStore, execution: ExecutionRecord, identity: str) -> None:
    """After a final failure, rejection or expiry: a later event may send again (§7.8 rule 5)."""
    state_id = contact_state_id(execution["orgId"], identity)
    lock_id = dedup_lock_id(execution, identity)

    def work(tx: Transaction) -> None:
        state = tx.get(COMMUNICATIONS, state_id)
        lock = tx.get(COMMUNICATIONS, lock_id)
        if state is not None:
            tx.set(COMMUNICATIONS, state_id, release(state, execution_id=execution["id"]))
        if lock is not None and lock.get("executionId") == execution["id"]:
            tx.delete(COMMUNICATIONS, lock_id)

    store.transaction(work)
