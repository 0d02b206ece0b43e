"""Typed reads at the store boundary: the store answers dicts, these name what the dict holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from playbook_core.domain.collections import DELIVERIES, EXECUTIONS
from playbook_core.domain.records import DeliveryRecord, ExecutionRecord
from playbook_core.ports import DocumentStore, Transaction


def get_execution(reader: DocumentStore | Transaction, execution_id: str) -> ExecutionRecord | None:
    """The execution, or None; written only by domain/executions.new_execution and the engine."""
    return cast("ExecutionRecord | None", reader.get(EXECUTIONS, execution_id))


def as_execution(data: Mapping[str, Any]) -> ExecutionRecord:
    """A document a query returned from EXECUTIONS."""
    return cast("ExecutionRecord", data)


def with_changes(execution: ExecutionRecord, changes: Mapping[str, Any]) -> ExecutionRecord:
    """The execution as it is after `changes` were written to it."""
    return cast("ExecutionRecord", {**execution, **changes})


def get_delivery(reader: DocumentStore | Transaction, delivery_id: str) -> DeliveryRecord | None:
    """The delivery, or None; written by service/execution/deliveries.delivery_document."""
    return cast("DeliveryRecord | None", reader.get(DELIVERIES, delivery_id))
