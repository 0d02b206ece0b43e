"""What a playbook's triggers imply in storage: listener and schedule documents (domain.md §2.2).

Toggle, update, delete and activation rewrite exactly these in the same transaction as the
playbook, so dispatch and the tick only ever read listeners and schedules.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from playbook_core.domain.playbook import (
    CalendarTrigger,
    EventTrigger,
    PlaybookDefinition,
    ScheduleTrigger,
)
from playbook_core.domain.schedules import FREQUENCY_PRESETS, next_slot, slot_local
from playbook_core.domain.timezones import DEFAULT_TIMEZONE

_UNSAFE = re.compile(r"[/\\?#\[\]]|\s+")


def listener_id(playbook_id: str, event_name: str) -> str:
    return _UNSAFE.sub("_", f"{playbook_id}__{event_name}")


def schedule_id(playbook_id: str, trigger_id: str) -> str:
    return _UNSAFE.sub("_", f"{playbook_id}__{trigger_id}")


def listener_docs(
    *, org_id: str, playbook_id: str, definition: PlaybookDefinition, active: bool, now: datetime
) -> dict[str, dict[str, Any]]:
    """One listener per (playbook, canonical event), with the trigger ids that listen to it."""
    by_event: dict[str, list[str]] = {}
    for trigger in definition.triggers:
        if isinstance(trigger, EventTrigger) and trigger.id is not None:
            by_event.setdefault(trigger.event_name, []).append(trigger.id)
    return {
        listener_id(playbook_id, name): {
            "orgId": org_id,
            "playbookId": playbook_id,
            "eventName": name,
            "triggerIds": trigger_ids,
            "status": "active" if active else "paused",
            "createdAt": now,
            "updatedAt": now,
        }
        for name, trigger_ids in by_event.items()
    }


def schedule_docs(
    *,
    org_id: str,
    playbook_id: str,
    version: int,
    definition: PlaybookDefinition,
    active: bool,
    org_timezone: str | None,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """Schedule and calendar triggers with their next slot after `now`; no back-fill of misses."""
    docs: dict[str, dict[str, Any]] = {}
    for trigger in definition.triggers:
        if not isinstance(trigger, (ScheduleTrigger, CalendarTrigger)) or trigger.id is None:
            continue
        inherited = trigger.timezone is None
        timezone = trigger.timezone or org_timezone or DEFAULT_TIMEZONE
        if isinstance(trigger, ScheduleTrigger):
            kind = "schedule"
            cron = trigger.cron or FREQUENCY_PRESETS[trigger.frequency or "daily"]
            calendar = None
        else:
            kind = "calendar"
            hour, minute = trigger.at.split(":")
            cron = f"{int(minute)} {int(hour)} * * *"
            calendar = {
                "dateField": trigger.date_field,
                "offsetDays": trigger.offset_days,
                "at": trigger.at,
            }
        slot = next_slot(cron, ZoneInfo(timezone), now)
        doc: dict[str, Any] = {
            "orgId": org_id,
            "playbookId": playbook_id,
            "triggerId": trigger.id,
            "kind": kind,
            "cron": cron,
            "timezone": timezone,
            "timezoneInherited": inherited,
            "status": "active" if active else "paused",
            "nextRunAt": slot,
            "nextRunLocal": slot_local(slot, ZoneInfo(timezone)),
            "playbookVersion": version,
            "updatedAt": now,
        }
        if calendar is not None:
            doc["calendar"] = calendar
        docs[schedule_id(playbook_id, trigger.id)] = doc
    return docs
