"""Turns schedule triggers into UTC slots in a local timezone, with DST as domain.md §8.2 says."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from playbook_core.domain.cron import CronError, parse_cron, validate_cron

__all__ = [
    "FREQUENCY_PRESETS",
    "CronError",
    "TimezoneError",
    "next_slot",
    "occurrences",
    "resolve_timezone",
    "slot_id",
    "slot_local",
    "validate_cron",
]

FREQUENCY_PRESETS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "daily": "0 7 * * *",
        "weekly": "0 9 * * 1",
        "monthly": "0 8 1 * *",
        "quarterly": "0 8 1 1,4,7,10 *",
    }
)

_MINUTE = timedelta(minutes=1)
_TIMEZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)+")
# The system tz database also holds these trees; they are not IANA names.
_NON_IANA_PREFIXES = ("posix/", "right/")


class TimezoneError(ValueError):
    """A timezone that is not `UTC` or a known IANA name with a `/`."""


def resolve_timezone(name: str) -> ZoneInfo:
    """Return the zone for an IANA name containing `/`, or exactly `UTC`."""
    message = f"'{name}' is not a known timezone; use an IANA name such as America/New_York."
    if name != "UTC" and (
        not _TIMEZONE_NAME.fullmatch(name) or name.startswith(_NON_IANA_PREFIXES)
    ):
        raise TimezoneError(message)
    try:
        return ZoneInfo(name)
    # ZoneInfoNotFoundError: no such zone; ValueError: bad key; OSError: a directory such as
    # America/Indiana.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise TimezoneError(message) from exc


def next_slot(cron: str, tz: ZoneInfo, after_utc: datetime) -> datetime:
    """Return the first slot strictly after `after_utc`, as an aware UTC datetime (§8.2).

    Local wall-clock minutes after `after_utc` are matched against the cron; a match in a DST gap
    runs at the first local minute after the gap, an ambiguous one at its earlier instant only,
    and a match that resolves to an instant not after `after_utc` is passed over.
    """
    _require_aware(after_utc, "after_utc")
    spec = parse_cron(cron)
    after = after_utc.astimezone(UTC)
    wall = after.astimezone(tz).replace(tzinfo=None)
    while True:
        wall = spec.next_after(wall)
        slot = _resolve(wall, tz)
        if slot > after:
            return slot


def occurrences(cron: str, tz: ZoneInfo, after_utc: datetime, count: int) -> list[datetime]:
    """Return the next `count` slots after `after_utc`, each from `next_slot` on the previous."""
    if count < 0:
        raise ValueError("count must not be negative.")
    slots: list[datetime] = []
    cursor = after_utc
    for _ in range(count):
        cursor = next_slot(cron, tz, cursor)
        slots.append(cursor)
    return slots


def slot_id(slot_utc: datetime) -> str:
    """Return the slot identity `YYYY-MM-DDTHH:MMZ` of an aware instant."""
    _require_aware(slot_utc, "slot_utc")
    return slot_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def slot_local(slot_utc: datetime, tz: ZoneInfo) -> str:
    """Return the local wall time `YYYY-MM-DDTHH:MM` of a slot (`nextRunLocal`, `slotLocal`)."""
    _require_aware(slot_utc, "slot_utc")
    return slot_utc.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    # fold=0 is the earlier instant of an ambiguous time, which is the one §8.2 keeps.
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    if _wall_at(instant, tz) == wall:
        return instant
    # In a gap, fold=1 applies the later offset (an instant before the jump) and fold=0 the
    # earlier one (an instant after it). Bisect for the jump: its local time is the first valid
    # minute after the gap. zoneinfo itself would move 02:30 to 03:30 instead of 03:00.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    after = instant
    while after - before > _MINUTE:
        middle = before + ((after - before) // _MINUTE // 2) * _MINUTE
        if _wall_at(middle, tz) > wall:
            after = middle
        else:
            before = middle
    return after


def _wall_at(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime.")
