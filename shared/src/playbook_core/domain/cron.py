"""Parses the strict 5-field cron dialect of domain.md §3.2 and finds matching wall minutes."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise

__all__ = ["CronError", "CronSpec", "parse_cron", "validate_cron"]

MIN_GAP_MINUTES = 15
MAX_MINUTE_VALUES = 4
# A 29 February schedule skips the non-leap year 2100, so matches can be 8 years apart.
_MAX_DAYS_BETWEEN_MATCHES = 9 * 366

_DIGITS = re.compile(r"[0-9]+")
_LAST_OR_WEEKDAY = re.compile(r"[0-9]*[LW]+[0-9]*")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Longest month length, with February at 29 so that leap days count as firing.
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class CronError(ValueError):
    """A cron expression outside the supported dialect; the message is one plain sentence."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}),
    _Field("day-of-week", 0, 7, {name: i for i, name in enumerate(_DAY_NAMES)}),
)


@dataclass(frozen=True)
class CronSpec:
    """An expanded cron expression; `day_or` is set when both day fields are restricted."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    day_or: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        # An unrestricted field holds every value, so AND reduces to the other field alone.
        return (in_days or in_weekdays) if self.day_or else (in_days and in_weekdays)

    def next_after(self, wall: datetime) -> datetime:
        """Return the first matching naive wall-clock minute strictly after `wall`."""
        start = wall.replace(second=0, microsecond=0, tzinfo=None, fold=0) + timedelta(minutes=1)
        day, hour, minute = start.date(), start.hour, start.minute
        for _ in range(_MAX_DAYS_BETWEEN_MATCHES):
            if self.matches_day(day):
                found = self._first_time_from(hour, minute)
                if found is not None:
                    return datetime.combine(day, found)
            day += timedelta(days=1)
            hour = minute = 0
        raise CronError("Cron expression does not fire within 8 years.")

    def _first_time_from(self, hour: int, minute: int) -> time | None:
        for h in self.hours[bisect_left(self.hours, hour) :]:
            i = bisect_left(self.minutes, minute if h == hour else 0)
            if i < len(self.minutes):
                return time(h, self.minutes[i])
        return None


def validate_cron(expr: str) -> str:
    """Return `expr` with its whitespace collapsed, or raise CronError if it breaks §3.2."""
    parse_cron(expr)
    return " ".join(expr.split())


@lru_cache(maxsize=1024)
def parse_cron(expr: str) -> CronSpec:
    """Expand a cron expression after checking it strictly; croniter accepts too much."""
    texts = expr.split()
    if not texts:
        raise CronError("Cron expression is empty.")
    if texts[0].startswith("@"):
        raise CronError("Cron macros such as @daily are not supported; write the 5 fields instead.")
    if len(texts) != len(_FIELDS):
        raise CronError(
            "Cron expression must have exactly 5 fields (minute hour day-of-month month "
            f"day-of-week), but it has {len(texts)}."
        )
    minutes, hours, days, months, raw_weekdays = (
        _expand(text, field) for text, field in zip(texts, _FIELDS, strict=True)
    )
    weekdays = frozenset(day % 7 for day in raw_weekdays)
    _check_frequency(minutes)
    days_restricted = days != frozenset(range(1, 32))
    weekdays_restricted = weekdays != frozenset(range(7))
    if days_restricted and not weekdays_restricted:
        _check_day_exists(days, months)
    return CronSpec(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=months,
        weekdays=weekdays,
        day_or=days_restricted and weekdays_restricted,
    )


def _expand(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = _step(step_text, field) if slash else 1
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, field), _value(last, field)
            if low > high:
                raise CronError(f"The {field.name} range '{base}' runs backwards.")
        elif slash:
            raise CronError(
                f"A {field.name} step must follow '*' or a range, as in '*/{step_text}'."
            )
        else:
            low = high = _value(base, field)
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _step(text: str, field: _Field) -> int:
    step = int(text) if _DIGITS.fullmatch(text) else 0
    if not 1 <= step <= field.high:
        raise CronError(
            f"The {field.name} step '{text}' must be a whole number from 1 to {field.high}."
        )
    return step


def _value(token: str, field: _Field) -> int:
    if _DIGITS.fullmatch(token):
        number = int(token)
        if not field.low <= number <= field.high:
            raise CronError(
                f"The {field.name} value {number} is outside {field.low} to {field.high}."
            )
        return number
    upper = token.upper()
    if upper in field.names:
        return field.names[upper]
    if "#" in token:
        raise CronError("The '#' (nth weekday of the month) modifier is not supported.")
    if "?" in token:
        raise CronError("The '?' placeholder is not supported; use '*' instead.")
    if _LAST_OR_WEEKDAY.fullmatch(upper):
        raise CronError("The 'L' and 'W' modifiers are not supported.")
    if not token:
        raise CronError(f"The {field.name} field has an empty list item or range end.")
    raise CronError(f"The {field.name} value '{token}' is not valid.")


def _check_frequency(minutes: frozenset[int]) -> None:
    ordered = sorted(minutes)
    # Cyclic: the last minute of one hour and the first of the next are also neighbours.
    gaps = [b - a for a, b in pairwise(ordered)]
    gaps.append(ordered[0] + 60 - ordered[-1])
    if len(ordered) > MAX_MINUTE_VALUES or min(gaps) < MIN_GAP_MINUTES:
        raise CronError("Cron expression fires more often than every 15 minutes.")


def _check_day_exists(days: frozenset[int], months: frozenset[int]) -> None:
    if not any(day <= _DAYS_IN_MONTH[month - 1] for month in months for day in days):
        raise CronError("Cron expression never fires because no chosen month has that day.")
