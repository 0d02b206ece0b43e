"""When a deferred message may go: send windows in the recipient's wall time, frequency caps.

Each rule answers "the earliest instant at or after t when I allow a send"; `earliest` iterates
all of them to a common fixed point. Each answer is monotone in t, so adding a rule can only
move the result later (org rules never weaken a pack).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from playbook_core.domain.compliance.rules import FrequencyRule, SendWindowRule, clock
from playbook_core.domain.schedules import _resolve

MAX_ROUNDS = 64
# Past this the windows cannot overlap (a cap moves a send at most 168 h, a window a day).
HORIZON = timedelta(days=9)


def in_window(instant: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    wall = instant.astimezone(zone).time()
    return start <= wall < end


def openings(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instants at which the local wall time `wall` begins, in order.

    In a DST gap that is the instant of the jump (02:30 on a spring-forward day opens at 03:00);
    an ambiguous wall time (fall-back day) happens twice and both instants are returned.
    """
    first = _resolve(wall, zone)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    repeated = second != first and second.astimezone(zone).replace(tzinfo=None) == wall
    return [first, second] if repeated else [first]


def window_opens(rule: SendWindowRule, instant: datetime, zone: ZoneInfo) -> datetime:
    """`instant` if inside the window, else the next instant the window opens after it."""
    start, end = clock(rule.start), clock(rule.end)
    if in_window(instant, zone, start, end):
        return instant
    day = instant.astimezone(zone).date()
    for offset in range(3):
        wall = datetime.combine(day + timedelta(days=offset), start)
        for opening in openings(wall, zone):
            if opening > instant:
                return opening
    raise AssertionError("a daily window opens within two days")  # pragma: no cover


def cap_allows(rule: FrequencyRule, instant: datetime, sends: Sequence[datetime]) -> datetime:
    """`instant` if under the cap, else when enough of the recent sends have left the window."""
    window = timedelta(hours=rule.window_hours)
    inside = sorted(sent for sent in sends if instant - window < sent <= instant)
    if len(inside) < rule.max:
        return instant
    # At oldest-that-must-leave + window that send no longer counts (the window is half-open).
    return inside[len(inside) - rule.max] + window


def earliest(
    instant: datetime,
    rules: Sequence[SendWindowRule | FrequencyRule],
    zone: ZoneInfo,
    sends: Sequence[datetime],
) -> datetime | None:
    """The first instant at or after `instant` every rule allows; None when none within reach."""
    current = instant
    for _ in range(MAX_ROUNDS):
        later = max(
            (
                window_opens(rule, current, zone)
                if isinstance(rule, SendWindowRule)
                else cap_allows(rule, current, sends)
                for rule in rules
            ),
            default=current,
        )
        if later == current:
            return current
        if later - instant > HORIZON:
            return None
        current = later
    return None
