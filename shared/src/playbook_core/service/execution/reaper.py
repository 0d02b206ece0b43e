"""The reaper (domain.md §7.16): runs that stopped making progress are re-enqueued, then failed."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from playbook_core.domain.collections import EXECUTIONS
from playbook_core.domain.engine import closed_run_changes
from playbook_core.domain.executions import PROGRESS_DEADLINE
from playbook_core.domain.records import ExecutionRecord
from playbook_core.ports import OrderBy, Transaction, Where
from playbook_core.service.execution.run_start import Runs, enqueue_step
from playbook_core.service.records import as_execution, read_execution, read_step, with_changes
from playbook_core.service.reporting import counters

MAX_RECOVERIES = 3
BATCH = 200


def reap(*, runs: Runs) -> dict[str, int]:
    store, queue, target, clock = runs.store, runs.queue, runs.target, runs.clock
    now = clock.now()
    stuck = store.query(
        EXECUTIONS,
        [Where("status", "in", ["queued", "running"]), Where("expectedProgressBy", "<", now)],
        [OrderBy("expectedProgressBy")],
        limit=BATCH,
    ).docs
    recovered = failed = 0
    for doc in stuck:
        execution = as_execution(doc.data)
        recoveries = int(execution.get("reaperRecoveries", 0))
        if recoveries >= MAX_RECOVERIES:
            given_up = store.transaction(partial(_give_up, execution_id=doc.id, now=now))
            if given_up is not None:
                counters.record_finish(store, given_up, "failed", at=now)
                failed += 1
            continue
        index = int(execution.get("currentStepIndex", 0))
        step = read_step(store, doc.id, index)
        # A new task name for the same attempt: the lost task's name may still be taken.
        enqueue_step(
            queue,
            target,
            execution,
            index,
            step["attempt"] if step is not None else 1,
            nonce=f"reaper{recoveries + 1}",
        )
        store.update(
            EXECUTIONS,
            doc.id,
            {
                "reaperRecoveries": recoveries + 1,
                "expectedProgressBy": now + PROGRESS_DEADLINE,
                "updatedAt": now,
            },
        )
        recovered += 1
    return {"recovered": recovered, "failedStuck": failed}


def _give_up(tx: Transaction, *, execution_id: str, now: datetime) -> ExecutionRecord | None:
    """Fail the run unless it moved on since the query (a step that just finished, say)."""
    execution = read_execution(tx, execution_id)
    if execution is None or execution["status"] not in ("queued", "running"):
        return None
    deadline = execution.get("expectedProgressBy")
    if deadline is None or deadline >= now:
        return None
    changes = {
        **closed_run_changes(execution, "failed", "stuck", now),
        "error": {"code": "stuck", "message": "the run stopped making progress"},
    }
    tx.update(EXECUTIONS, execution_id, changes)
    return with_changes(execution, changes)
