"""The Cloud Tasks payload of one step (domain.md §7.1): strict, so a malformed task is refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class StepTask(BaseModel):
    """`{executionId, stepIndex, attempt, orgId}`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    execution_id: Annotated[str, Field(alias="executionId", pattern=r"^[A-Za-z0-9_.:-]{1,256}$")]
    step_index: Annotated[int, Field(alias="stepIndex", ge=0, le=49)]
    attempt: Annotated[int, Field(ge=1, le=11)]
    org_id: Annotated[str, Field(alias="orgId", min_length=1, max_length=128)]
