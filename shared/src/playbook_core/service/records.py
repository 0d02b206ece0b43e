"""Typed reads at the store boundary: the store answers dicts, these name what the dict holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from playbook_core.domain.collections import (
    DELIVERIES,
    EXECUTIONS,
    PLAYBOOKS,
    SETTINGS,
    WEBHOOK_SOURCES,
    step_doc_id,
    steps_path,
)
from playbook_core.domain.records import (
    DeliveryRecord,
    ExecutionRecord,
    PlaybookRecord,
    SettingsRecord,
    SourceRecord,
    StepRecord,
)
from playbook_core.ports import DocumentStore, Transaction

R = TypeVar("R", ExecutionRecord, DeliveryRecord, PlaybookRecord, SourceRecord, StepRecord)


def read_execution(
    reader: DocumentStore | Transaction, execution_id: str
) -> ExecutionRecord | None:
    """The execution, or None; written only by domain/executions.new_execution and the engine."""
    return cast("ExecutionRecord | None", reader.get(EXECUTIONS, execution_id))


def as_execution(data: Mapping[str, Any]) -> ExecutionRecord:
    """A document a query returned from EXECUTIONS."""
    return cast("ExecutionRecord", data)


def with_changes(record: R, changes: Mapping[str, Any]) -> R:
    """The document as it is after `changes` were written to it."""
    return cast("R", {**record, **changes})


def read_delivery(reader: DocumentStore | Transaction, delivery_id: str) -> DeliveryRecord | None:
    """The delivery, or None; written by service/execution/deliveries.delivery_document."""
    return cast("DeliveryRecord | None", reader.get(DELIVERIES, delivery_id))


def read_playbook(reader: DocumentStore | Transaction, playbook_id: str) -> PlaybookRecord | None:
    """The playbook, or None, whatever its org: callers check it (authoring/playbooks.py)."""
    return cast("PlaybookRecord | None", reader.get(PLAYBOOKS, playbook_id))


def read_source(reader: DocumentStore | Transaction, source_id: str) -> SourceRecord | None:
    """The webhook source, or None, whatever its org: callers check it (ingress/sources.py)."""
    return cast("SourceRecord | None", reader.get(WEBHOOK_SOURCES, source_id))


def read_step(
    reader: DocumentStore | Transaction, execution_id: str, index: int
) -> StepRecord | None:
    """The step's latest attempt, or None before its first claim (execution/step_handler.py)."""
    return cast("StepRecord | None", reader.get(steps_path(execution_id), step_doc_id(index)))


def read_settings(reader: DocumentStore | Transaction, org_id: str) -> SettingsRecord:
    """The org's stored settings; empty when it never saved any (every field then defaults)."""
    return cast("SettingsRecord", reader.get(SETTINGS, org_id) or {})
