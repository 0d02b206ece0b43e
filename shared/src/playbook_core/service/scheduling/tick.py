"""`cron_playbooks` (domain.md §8.3): at-least-once ticks still run each (playbook, slot) once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playbook_core.domain.collections import EXECUTIONS, PLAYBOOKS, SCHEDULES
from playbook_core.domain.documents import definition_of
from playbook_core.domain.errors import NotFound
from playbook_core.domain.executions import new_execution, schedule_execution_id
from playbook_core.domain.ids import h
from playbook_core.domain.records import ExecutionRecord
from playbook_core.domain.schedules import next_slot, resolve_timezone, slot_id, slot_local
from playbook_core.logging import event
from playbook_core.ports import (
    DocumentStore,
    OrderBy,
    TaskQueue,
    TaskRequest,
    Transaction,
    Where,
)
from playbook_core.service.execution import approvals
from playbook_core.service.execution.reaper import reap
from playbook_core.service.execution.run_start import Runs, StepTarget, enqueue_first_step
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.records import read_execution
from playbook_core.service.reporting import counters
from playbook_core.service.scheduling.calendar_sweeps import sweep

PAGE = 500
BUDGET_S = 50.0
STALE = timedelta(hours=24)  # a latest slot older than this is missed too (§8.3 step 2)
FAST_FORWARD = timedelta(hours=48)
TICK_PATHS = frozenset({"/tick", "/daily", "/weekly"})  # the existing app's cron routes forward
_log = logging.getLogger("playbooks.schedules")


@dataclass(frozen=True)
class Plan:
    """What one due schedule does now: run `slot` (if any), then wait for `next_run`."""

    slot: datetime | None
    missed: datetime | None
    next_run: datetime


def plan(cron: str, tz: ZoneInfo, first_due: datetime, now: datetime) -> Plan:
    """The latest due slot runs; older due slots, and a latest one older than 24 h, are missed."""
    start = first_due
    if first_due < now - FAST_FORWARD:
        # Far behind (an outage): walking every 15-minute slot since then would be slow. With two
        # slots inside the window the one before the latest is still known, so skip to it.
        ahead = next_slot(cron, tz, now - FAST_FORWARD)
        if ahead <= now and next_slot(cron, tz, ahead) <= now:
            start = ahead
    latest, previous = start, (first_due if start != first_due else None)
    while (following := next_slot(cron, tz, latest)) <= now:
        previous, latest = latest, following
    if latest < now - STALE:
        return Plan(slot=None, missed=latest, next_run=following)
    return Plan(slot=latest, missed=previous, next_run=following)


@dataclass(frozen=True)
class Fired:
    outcome: str  # not_due | started | duplicate | missed_only | skipped | swept
    schedule: dict[str, Any]
    plan: Plan | None = None
    execution: ExecutionRecord | None = None


def sweep_url(target: StepTarget) -> str:
    """`…/execute_step/` → `…/cron_playbooks/sweep`: same base, locally and deployed."""
    base = target.url.rstrip("/").removesuffix("/execute_step")
    return f"{base}/cron_playbooks/sweep"


def handle_cron(
    path: str, body: dict[str, Any], *, runs: Runs, publishing: Publishing
) -> dict[str, Any]:
    if path in TICK_PATHS:
        summary: dict[str, Any] = tick(runs=runs)
        summary["approvalsExpired"] = approvals.expire_due(store=runs.store, clock=runs.clock)
        if runs.clock.now().minute % 5 == 0:  # the reaper runs on every 5th minute's tick (§7.1)
            summary |= reap(runs=runs)
        return summary
    if path == "/attribution":
        from playbook_core.service.scheduling import daily_jobs  # noqa: PLC0415

        return daily_jobs.hourly(publishing=publishing)
    if path == "/sweep":
        return sweep(body, runs=runs)
    raise NotFound(f"cron_playbooks has no route {path}")


def tick(*, runs: Runs) -> dict[str, Any]:
    """Fire every due schedule (pages of 500, ≤50 s); the next tick picks up any rest."""
    store, queue, target, clock = runs.store, runs.queue, runs.target, runs.clock
    now = clock.now()
    deadline = time.monotonic() + BUDGET_S
    summary = {
        "due": 0,
        "started": 0,
        "duplicates": 0,
        "missed": 0,
        "sweeps": 0,
        "skipped": 0,
        "invalid": 0,
    }
    seen: set[str] = set()
    while time.monotonic() < deadline:
        page = store.query(
            SCHEDULES,
            [Where("status", "==", "active"), Where("nextRunAt", "<=", now)],
            [OrderBy("nextRunAt")],
            limit=PAGE,
        )
        fresh = [doc for doc in page.docs if doc.id not in seen]
        if not fresh:  # nothing left, or only documents this tick could not advance
            break
        for doc in fresh:
            seen.add(doc.id)
            summary["due"] += 1
            try:
                fired = _fire(doc.id, store=store, now=now)
            except (ValueError, KeyError, TypeError) as exc:  # a corrupt doc must not stop the rest
                summary["invalid"] += 1
                event(_log, logging.ERROR, "schedule invalid", scheduleId=doc.id, error=str(exc))
                continue
            _after_commit(doc.id, fired, summary, store=store, queue=queue, target=target, now=now)
    event(_log, logging.INFO, "schedule tick", **summary)
    return summary


def _fire(schedule_id: str, *, store: DocumentStore, now: datetime) -> Fired:
    """Re-decide inside a transaction: a second or overlapping tick finds the slot not due.

    The execution is created in the same transaction that advances `nextRunAt`, so a slot is
    never advanced without its run nor run without being advanced; its id comes from the slot, so
    two triggers of one playbook firing on the same minute share one run.
    """

    def work(tx: Transaction) -> Fired:
        schedule = tx.get(SCHEDULES, schedule_id)
        if schedule is None or schedule.get("status") != "active" or schedule["nextRunAt"] > now:
            return Fired("not_due", schedule or {})
        tz = resolve_timezone(schedule["timezone"])
        chosen = plan(schedule["cron"], tz, schedule["nextRunAt"], now)
        playbook = tx.get(PLAYBOOKS, schedule["playbookId"])
        runnable = (
            chosen.slot is not None
            and playbook is not None
            and playbook.get("status") == "active"
            and playbook.get("orgId") == schedule["orgId"]
        )
        execution_id: str | None = None
        existing: ExecutionRecord | None = None
        if runnable and schedule.get("kind") == "schedule" and chosen.slot is not None:
            execution_id = schedule_execution_id(schedule["playbookId"], slot_id(chosen.slot))
            existing = read_execution(tx, execution_id)
        changes: dict[str, Any] = {
            "nextRunAt": chosen.next_run,
            "nextRunLocal": slot_local(chosen.next_run, tz),
            "updatedAt": now,
        }
        if chosen.missed is not None:
            changes["lastMissedSlot"] = slot_id(chosen.missed)
        if chosen.slot is not None and runnable:
            changes["lastSlot"] = slot_id(chosen.slot)
        outcome, execution = ("missed_only" if chosen.slot is None else "skipped"), None
        if runnable and schedule.get("kind") == "calendar":
            outcome = "swept"  # a calendar trigger: the sweep task starts the runs
        elif execution_id is not None and playbook is not None and chosen.slot is not None:
            changes["lastExecutionId"] = execution_id
            if existing is None:
                trigger = {
                    "type": "schedule", "triggerId": schedule["triggerId"],
                    "slotUtc": slot_id(chosen.slot), "slotLocal": slot_local(chosen.slot, tz),
                    "timezone": schedule["timezone"],
                }  # fmt: skip
                execution = new_execution(
                    execution_id=execution_id, playbook=playbook,
                    definition=definition_of(playbook), trigger=trigger, customer=None,
                    event=None, causation=None, user_id="system", dry_run=False, now=now,
                )  # fmt: skip
                tx.create(EXECUTIONS, execution_id, execution)
                outcome = "started"
            else:  # the same slot already ran for another trigger of this playbook
                execution, outcome = existing, "duplicate"
        tx.update(SCHEDULES, schedule_id, changes)
        return Fired(outcome, schedule, chosen, execution)

    return store.transaction(work)


def _after_commit(
    schedule_id: str,
    fired: Fired,
    summary: dict[str, int],
    *,
    store: DocumentStore,
    queue: TaskQueue,
    target: StepTarget,
    now: datetime,
) -> None:
    """Side effects only once the transaction has committed (it may have run more than once)."""
    schedule, chosen = fired.schedule, fired.plan
    fields = {"scheduleId": schedule_id, "playbookId": schedule.get("playbookId")}
    if chosen is not None and chosen.missed is not None:
        summary["missed"] += 1
        event(_log, logging.WARNING, "missed_slot", **fields, slot=slot_id(chosen.missed))
    execution = fired.execution
    if fired.outcome in ("started", "duplicate") and execution is not None:
        summary["started" if fired.outcome == "started" else "duplicates"] += 1
        if fired.outcome == "started":
            counters.record_execution(store, execution, at=now, counters={"executions": 1})
        # A lost enqueue (crash after commit) is healed here on a duplicate, or by the reaper.
        if execution.get("status") == "queued" and not execution.get("firstTaskEnqueuedAt"):
            enqueue_first_step(queue, target, store, execution, now)
    elif fired.outcome == "swept" and chosen is not None and chosen.slot is not None:
        local_date = chosen.slot.astimezone(resolve_timezone(schedule["timezone"])).date()
        queue.enqueue(
            TaskRequest(
                queue=target.queue,
                name=h(schedule["playbookId"], local_date.isoformat()),
                url=sweep_url(target),
                body={
                    "orgId": schedule["orgId"], "playbookId": schedule["playbookId"],
                    "localDate": local_date.isoformat(), "triggerId": schedule["triggerId"],
                    "timezone": schedule["timezone"],
                },
            )
        )  # fmt: skip
        summary["sweeps"] += 1
    elif fired.outcome == "skipped":
        summary["skipped"] += 1
        event(_log, logging.WARNING, "schedule slot skipped: playbook not runnable", **fields)
