"""Manual runs (domain.md §3.10 Run): an editor starts an active playbook now, once per key."""

from __future__ import annotations

import logging
import re
from typing import Any

from playbook_core.domain.collections import EXECUTIONS
from playbook_core.domain.documents import definition_of
from playbook_core.domain.errors import AlreadyExists, BadRequest, Conflict
from playbook_core.domain.executions import manual_execution_id, new_execution
from playbook_core.domain.ids import is_plain_id
from playbook_core.domain.normal_forms import normalise_email, normalise_phone
from playbook_core.domain.playbook import ManualTrigger
from playbook_core.domain.records import ExecutionRecord
from playbook_core.domain.tagged_values import unstorable
from playbook_core.logging import event
from playbook_core.ports import Clock, DocumentStore, IdFactory, TaskQueue
from playbook_core.service.authoring.playbooks import load_playbook
from playbook_core.service.execution.run_start import Runs, StepTarget, enqueue_first_step
from playbook_core.service.records import read_execution, read_settings
from playbook_core.service.reporting import counters

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as HTTP header values are
_NAMES = ("firstName", "lastName")
_log = logging.getLogger("playbooks.manual")


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not _KEY.match(key):
        raise BadRequest("Idempotency-Key is 1-255 printable ASCII characters")
    return key


def _storable_input(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadRequest("input is an object")
    if (problem := unstorable(payload)) is not None:  # stored on the execution: a 400 here
        raise BadRequest(f"input: {problem}")
    return payload


def run_input(body: Any, country: str = "US") -> tuple[dict[str, Any], dict[str, Any] | None]:
    """`{input?, customer?}` → (input map, customer context); anything else is a 400."""
    if not isinstance(body, dict) or set(body) - {"input", "customer"}:
        raise BadRequest('send {"input"?: {...}, "customer"?: {...}}')
    payload = _storable_input(body.get("input") or {})
    raw = body.get("customer")
    if raw is None:
        return payload, None
    if not isinstance(raw, dict) or set(raw) - {"id", "email", "phone", *_NAMES}:
        raise BadRequest("customer is {id?, email?, phone?, firstName?, lastName?}")
    customer: dict[str, Any] = {}
    if raw.get("id") is not None:
        if not is_plain_id(raw["id"]):
            raise BadRequest("customer.id is a document id")
        customer["id"] = raw["id"]
    for name, normalise in (
        ("email", normalise_email),
        ("phone", lambda v: normalise_phone(v, country)),  # national numbers: the org's country
    ):
        if raw.get(name) is not None:
            value = normalise(raw[name])
            if value is None:
                raise BadRequest(f"customer.{name} is not a valid {name}")
            customer[name] = value
    customer |= {
        n: raw[n].strip() for n in _NAMES if isinstance(raw.get(n), str) and raw[n].strip()
    }
    return payload, customer or None


def run_manually(
    *,
    runs: Runs,
    org_id: str,
    playbook_id: str,
    user_id: str,
    body: Any,
    raw_key: str | None,
    ids: IdFactory,
) -> str:
    """Create the `man_` execution and enqueue step 0; a repeated key returns the first run's id.

    Another org's playbook is a 404 before anything about the request body is said.
    """
    store, queue, target, clock = runs.store, runs.queue, runs.target, runs.clock
    playbook = load_playbook(store, org_id, playbook_id)
    country = read_settings(store, org_id).get("defaultCountry") or "US"
    payload, customer = run_input(body, str(country))
    key = idempotency_key(raw_key)
    execution_id = manual_execution_id(playbook_id, key) if key else ids.random("man_")
    if key and (existing := read_execution(store, execution_id)) is not None:
        _heal(existing, store=store, queue=queue, target=target, clock=clock)
        return execution_id  # a retried request: the run it started, not a second one
    if playbook.get("status") != "active":
        raise Conflict("only an active playbook can be run; enable it first", code="not_active")
    definition = definition_of(playbook)
    manual = next((t for t in definition.triggers if isinstance(t, ManualTrigger)), None)
    execution = new_execution(
        execution_id=execution_id, playbook=playbook, definition=definition,
        trigger={"type": "manual", "triggerId": manual.id if manual else "manual"},
        customer=customer, event=None, causation=None, user_id=user_id, dry_run=False,
        now=clock.now(),
    )  # fmt: skip
    # `input` is the run's own data; `userId` names the caller (`current_user` in templates).
    execution["input"] = payload
    try:
        store.create(EXECUTIONS, execution_id, execution)
    except AlreadyExists:  # two requests with one key at the same moment: one run between them
        existing = read_execution(store, execution_id) or execution
        _heal(existing, store=store, queue=queue, target=target, clock=clock)
        return execution_id
    enqueue_first_step(queue, target, store, execution, clock.now())
    counters.record_execution(
        store, execution, at=execution["createdAt"], counters={"executions": 1}
    )
    event(_log, logging.INFO, "manual run started", executionId=execution_id, orgId=org_id)
    return execution_id


def _heal(
    execution: ExecutionRecord,
    *,
    store: DocumentStore,
    queue: TaskQueue,
    target: StepTarget,
    clock: Clock,
) -> None:
    """The first request may have died between create and enqueue; the task name dedups."""
    if execution.get("status") == "queued" and not execution.get("firstTaskEnqueuedAt"):
        enqueue_first_step(queue, target, store, execution, clock.now())
