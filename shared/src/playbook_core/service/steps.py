"""The step handler's entry checks (domain.md §7.3 steps 1–2): which task deliveries are acked."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from playbook_core.domain.errors import Unavailable
from playbook_core.logging import event
from playbook_core.ports import DocumentStore

EXECUTIONS = "playbook_executions"
TERMINAL = frozenset({"completed", "failed", "cancelled", "rejected", "expired"})
_log = logging.getLogger("playbooks.steps")


class StepTask(BaseModel):
    """The Cloud Tasks payload `{executionId, stepIndex, attempt, orgId}`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    execution_id: Annotated[str, Field(alias="executionId", pattern=r"^[A-Za-z0-9_.:-]{1,256}$")]
    step_index: Annotated[int, Field(alias="stepIndex", ge=0, le=49)]
    attempt: Annotated[int, Field(ge=1, le=11)]
    org_id: Annotated[str, Field(alias="orgId", min_length=1, max_length=128)]


def run_step(task: StepTask, *, store: DocumentStore, retry_count: int) -> dict[str, Any]:
    """Ack what must never run; storage failures propagate so the queue redelivers."""
    execution = store.get(EXECUTIONS, task.execution_id)
    fields = {"executionId": task.execution_id, "stepIndex": task.step_index, "retry": retry_count}
    if execution is None:
        event(_log, logging.WARNING, "task for a missing execution acknowledged", **fields)
        return {"acknowledged": True, "outcome": "missing_execution"}
    if execution.get("orgId") != task.org_id:
        event(_log, logging.ERROR, "task orgId differs from the execution", **fields)
        return {"acknowledged": True, "outcome": "tenant_mismatch"}
    if execution.get("status") in TERMINAL:
        return {"acknowledged": True, "outcome": "execution_terminal"}
    # Running steps arrives with the execution engine; until then the queue keeps the task.
    raise Unavailable("the step engine is not deployed yet")
