"""Stored playbook, its immutable versions and the status machine (domain.md §2.2, §3.10)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from playbook_core.domain.errors import Conflict
from playbook_core.domain.playbook import PlaybookDefinition

Status = Literal["draft", "active", "paused", "disabled", "archived"]
PausedReason = Literal["user", "tier", "system"]
SourceKind = Literal[
    "user", "agent_chat", "template", "tier_template", "registry", "duplicate", "import"
]
VersionReason = Literal[
    "create", "update", "rollback", "import", "duplicate", "registry", "template"
]
Operation = Literal[
    "toggle_on", "toggle_off", "tier_downgrade", "delete", "restore", "registry_activation"
]
RESTORE_WINDOW = timedelta(days=30)


class _Stored(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Provenance(_Stored):
    kind: SourceKind
    template_id: str | None = None
    registry_id: str | None = None
    playbook_id: str | None = None
    version: int | None = None


class Playbook(PlaybookDefinition):
    """The `playbooks` document: the current definition plus server-managed fields."""

    model_config = ConfigDict(strict=False)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
    org_id: str
    status: Status
    active: bool
    requires_approval: bool
    version: Annotated[int, Field(ge=1)]
    revision: Annotated[int, Field(ge=1)]
    definition_hash: str
    source: Provenance
    template_id: str | None = None
    is_custom: bool
    paused_reason: PausedReason | None = None
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    purge_after: datetime | None = None

    @model_validator(mode="after")
    def _derived_fields_agree(self) -> Playbook:
        if self.active != (self.status == "active"):
            raise ValueError("active must equal status == 'active'")
        if self.is_custom == (self.source.kind == "registry"):
            raise ValueError("isCustom is false exactly for registry playbooks")
        return self

    @property
    def etag(self) -> str:
        return f'"r{self.revision}"'

    def definition(self) -> PlaybookDefinition:
        fields = set(PlaybookDefinition.model_fields)
        return PlaybookDefinition.model_validate(
            self.model_dump(by_alias=True, include=fields, exclude_none=True)
        )


class PlaybookVersion(_Stored):
    """`playbooks/{id}/versions/{NNNNNN}`: never updated."""

    org_id: str
    playbook_id: str
    version: Annotated[int, Field(ge=1)]
    definition: dict[str, object]
    definition_hash: str
    requires_approval: bool
    reason: VersionReason
    rolled_back_from: int | None = None
    created_at: datetime
    created_by: str


def version_doc_id(version: int) -> str:
    return f"{version:06d}"


def initial_status(kind: SourceKind) -> Status:
    """Create / generate / clone → draft; duplicate / import → disabled; registry → active."""
    if kind in ("duplicate", "import"):
        return "disabled"
    if kind == "registry":
        return "active"
    return "draft"


def transition(
    status: Status,
    operation: Operation,
    *,
    has_triggers_and_steps: bool = True,
    archived_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[Status, PausedReason | None]:
    """The next (status, pausedReason), or Conflict when the operation does not apply."""
    if operation == "toggle_on" and status in ("draft", "paused", "disabled"):
        if not has_triggers_and_steps:
            raise Conflict(
                "a playbook needs a trigger and a step to be active", code="not-activatable"
            )
        return "active", None
    if operation == "registry_activation" and status != "archived":
        return "active", None
    if operation == "toggle_off" and status == "active":
        return "paused", "user"
    if operation == "tier_downgrade" and status == "active":
        return "paused", "tier"
    if operation == "delete" and status != "archived":
        return "archived", None
    if operation == "restore" and status == "archived":
        if archived_at is None or now is None or now - archived_at > RESTORE_WINDOW:
            raise Conflict(
                "a playbook can be restored within 30 days", code="restore-window-passed"
            )
        return "paused", "user"
    raise Conflict(f"cannot {operation} a playbook that is {status}", code="invalid-transition")
