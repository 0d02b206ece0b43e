"""Cron validation, timezones and DST-aware slots (domain.md §3.2 and §8.2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from playbook_core.domain.schedules import (
    FREQUENCY_PRESETS,
    CronError,
    TimezoneError,
    next_slot,
    occurrences,
    resolve_timezone,
    slot_id,
    slot_local,
    validate_cron,
)

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
HOUR = timedelta(hours=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- §8.2 test vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "tz", "after", "expected"),
    [
        ("0 7 * * *", NEW_YORK, "2026-03-07T12:00", "2026-03-08T11:00Z"),
        ("30 2 * * *", NEW_YORK, "2026-03-07T08:00", "2026-03-08T07:00Z"),
        ("30 1 * * *", NEW_YORK, "2026-10-31T06:00", "2026-11-01T05:30Z"),
        ("30 1 * * *", NEW_YORK, "2026-11-01T05:30", "2026-11-02T06:30Z"),
        ("0 * * * *", NEW_YORK, "2026-11-01T05:00", "2026-11-01T07:00Z"),
        ("0 * * * *", NEW_YORK, "2026-03-08T06:00", "2026-03-08T07:00Z"),
        ("0 9 * * 1", NEW_YORK, "2026-11-01T00:00", "2026-11-02T14:00Z"),
        ("0 8 1 1,4,7,10 *", NEW_YORK, "2026-07-01T12:00", "2026-10-01T12:00Z"),
        ("0 8 1 * *", LONDON, "2026-03-01T08:00", "2026-04-01T07:00Z"),
    ],
)
def test_next_slot_matches_the_spec_vectors(cron, tz, after, expected):
    # Arrange
    after_utc = utc(after)

    # Act
    slot = next_slot(cron, tz, after_utc)

    # Assert
    assert slot_id(slot) == expected
    assert slot.tzinfo is UTC


# --- DST transitions in New York and Los Angeles (both switch on 2026-03-08 and 2026-11-01) ----

# (zone, standard offset in hours, spring jump instant, autumn fall-back instant)
ZONES = [
    pytest.param(NEW_YORK, 5, utc("2026-03-08T07:00"), utc("2026-11-01T06:00"), id="new_york"),
    pytest.param(
        LOS_ANGELES, 8, utc("2026-03-08T10:00"), utc("2026-11-01T09:00"), id="los_angeles"
    ),
]


@pytest.mark.parametrize(("tz", "std", "spring", "autumn"), ZONES)
def test_a_minute_in_the_spring_gap_runs_at_the_end_of_the_gap(tz, std, spring, autumn):
    after = utc("2026-03-07T12:00")

    slots = occurrences("30 2 * * *", tz, after, 2)

    assert slots[0] == spring
    assert slot_local(slots[0], tz) == "2026-03-08T03:00"
    assert slots[1] == utc("2026-03-09T02:30") + (std - 1) * HOUR


@pytest.mark.parametrize(("tz", "std", "spring", "autumn"), ZONES)
def test_every_quarter_hour_inside_the_gap_collapses_to_one_run(tz, std, spring, autumn):
    after = utc("2026-03-07T12:00")

    slots = occurrences("*/15 2 * * *", tz, after, 5)

    assert slots == [spring] + [
        utc("2026-03-09T02:00") + (std - 1) * HOUR + k * 15 * timedelta(minutes=1) for k in range(4)
    ]


@pytest.mark.parametrize(("tz", "std", "spring", "autumn"), ZONES)
def test_a_repeated_minute_runs_once_at_its_first_instant(tz, std, spring, autumn):
    after = utc("2026-10-31T12:00")

    first, second = occurrences("30 1 * * *", tz, after, 2)

    assert first == autumn - 30 * timedelta(minutes=1)  # 01:30 daylight time
    assert second == utc("2026-11-02T01:30") + std * HOUR


@pytest.mark.parametrize(("tz", "std", "spring", "autumn"), ZONES)
def test_after_the_first_pass_the_repeated_minute_is_not_run_again(tz, std, spring, autumn):
    after = autumn + 10 * timedelta(minutes=1)  # 01:10 standard time, the second pass

    slot = next_slot("45 1 * * *", tz, after)

    assert slot == utc("2026-11-02T01:45") + std * HOUR


@pytest.mark.parametrize(("tz", "std", "spring", "autumn"), ZONES)
def test_hourly_on_the_spring_forward_day_runs_23_times(tz, std, spring, autumn):
    midnight = utc("2026-03-08T00:00") + std * HOUR
    before_midnight = midnight - timedelta(minutes=1)

    slots = occurrences("0 * * * *", tz, before_midnight, 24)

    assert slots[:23] == [midnight + k * HOUR for k in range(23)]
    assert slot_local(slots[2], tz) == "2026-03-08T03:00"
    assert slot_local(slots[23], tz) == "2026-03-09T00:00"


@pytest.mark.parametrize(("tz", "std", "spring", "autumn"), ZONES)
def test_hourly_on_the_fall_back_day_skips_the_repeated_hour(tz, std, spring, autumn):
    midnight = utc("2026-11-01T00:00") + (std - 1) * HOUR
    before_midnight = midnight - timedelta(minutes=1)

    slots = occurrences("0 * * * *", tz, before_midnight, 24)

    assert slots == [midnight, midnight + HOUR] + [midnight + k * HOUR for k in range(3, 25)]
    assert autumn not in slots  # 01:00 standard time
    assert [slot_local(s, tz)[11:] for s in slots] == [f"{h:02d}:00" for h in range(24)]


# --- frequency presets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        ("daily", "2026-01-10T12:00Z"),  # 07:00 EST
        ("weekly", "2026-01-12T14:00Z"),  # Monday 09:00 EST
        ("monthly", "2026-02-01T13:00Z"),  # 08:00 EST on the 1st
        ("quarterly", "2026-04-01T12:00Z"),  # 08:00 EDT on 1 April
    ],
)
def test_each_frequency_preset_is_a_valid_cron_with_its_next_slot(frequency, expected):
    cron = FREQUENCY_PRESETS[frequency]

    slot = next_slot(cron, NEW_YORK, utc("2026-01-10T00:00"))

    assert validate_cron(cron) == cron
    assert slot_id(slot) == expected


def test_frequency_presets_are_exactly_the_four_of_the_spec():
    assert dict(FREQUENCY_PRESETS) == {
        "daily": "0 7 * * *",
        "weekly": "0 9 * * 1",
        "monthly": "0 8 1 * *",
        "quarterly": "0 8 1 1,4,7,10 *",
    }


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    [
        "0 7 * * *",
        "*/15 * * * *",
        "0,15,30,45 * * * *",
        "5,50 * * * *",
        "*/20 */6 * * *",
        "0 8-18/2 * * *",
        "0 0 1-31/2 * *",
        "0 9 * * mon-fri",
        "0 9 * jan-MAR,Oct Sun",
        "0 9 * * 7",
        "0 9 * * 0,7",
        "0 9 * * 5-7",
        "0 0 29 2 *",
        "0 0 30 2 MON",
        "59 23 31 12 SAT",
    ],
)
def test_valid_crons_are_accepted(cron):
    assert validate_cron(cron) == cron


def test_validate_cron_collapses_whitespace():
    assert validate_cron("  0\t7  *  * \n * ") == "0 7 * * *"


@pytest.mark.parametrize(
    "cron",
    [
        "",
        "0 0 * *",
        "0 0 0 * * *",
        "0 0 12 * * ? 2026",
        "@daily",
        "@reboot",
        "0 0 L * *",
        "0 0 15W * *",
        "0 0 LW * *",
        "0 0 * * 5L",
        "0 0 * * MON#2",
        "0 0 ? * MON",
        "60 * * * *",
        "0 24 * * *",
        "0 0 0 * *",
        "0 0 32 * *",
        "0 0 * 0 *",
        "0 0 * 13 *",
        "0 0 * * 8",
        "0 0 5-1 * *",
        "0 0 */0 * *",
        "0 0 */x * *",
        "5/15 * * * *",
        "0 0 1,,2 * *",
        "0 0 * * MON-",
        "0 0 * * SUNDAY",
        "0 0 * JANUARY *",
        "0 0 * MON *",
        "0 0 * * JAN",
        "a b c d e",
        "\uff10 0 * * *",
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
    ],
)
def test_invalid_crons_are_refused_with_one_plain_sentence(cron):
    with pytest.raises(CronError) as caught:
        validate_cron(cron)

    message = str(caught.value)
    assert message[0].isupper()
    assert message.endswith(".")
    assert "\n" not in message
    assert message.count(". ") == 0


@pytest.mark.parametrize(
    "cron", ["*/5 * * * *", "0,10 * * * *", "0-4 * * * *", "0,50 * * * *", "*/14 * * * *"]
)
def test_minutes_closer_than_15_apart_are_too_frequent(cron):
    with pytest.raises(CronError, match="fires more often than every 15 minutes"):
        validate_cron(cron)


def test_a_cron_that_never_fires_is_refused():
    with pytest.raises(CronError, match="never fires"):
        validate_cron("0 0 30 2 *")


def test_cron_error_is_a_value_error_and_next_slot_validates():
    with pytest.raises(ValueError, match="more often"):
        next_slot("*/5 * * * *", NEW_YORK, utc("2026-01-01T00:00"))


def test_seven_and_zero_and_sun_all_mean_sunday():
    after = utc("2026-01-01T00:00")

    sevens = occurrences("0 9 * * 7", NEW_YORK, after, 5)
    zeros = occurrences("0 9 * * 0", NEW_YORK, after, 5)
    suns = occurrences("0 9 * * sun", NEW_YORK, after, 5)

    assert sevens == zeros == suns
    assert {s.astimezone(NEW_YORK).isoweekday() for s in sevens} == {7}


def test_day_of_month_and_day_of_week_fire_when_either_matches():
    after = utc("2026-02-01T00:00")

    slots = occurrences("0 9 13 * FRI", NEW_YORK, after, 6)

    local_days = [s.astimezone(NEW_YORK).date() for s in slots]
    assert local_days == [
        date(2026, 2, 6),
        date(2026, 2, 13),  # a Friday and the 13th: one run
        date(2026, 2, 20),
        date(2026, 2, 27),
        date(2026, 3, 6),
        date(2026, 3, 13),
    ]


def test_a_day_field_that_allows_every_day_does_not_restrict():
    after = utc("2026-02-01T00:00")

    slots = occurrences("0 9 1-31 * FRI", NEW_YORK, after, 3)

    assert {s.astimezone(NEW_YORK).isoweekday() for s in slots} == {5}


def test_29_february_skips_the_year_2100():
    slot = next_slot("0 0 29 2 *", NEW_YORK, utc("2096-03-01T00:00"))

    assert slot_id(slot) == "2104-02-29T05:00Z"


# --- timezones, slot ids and argument checks -----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["UTC", "America/New_York", "Europe/London", "America/Argentina/Buenos_Aires", "Etc/GMT+5"],
)
def test_iana_names_and_utc_are_accepted(name):
    assert resolve_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "utc",
        "EST",
        "GMT",
        "Mars/Olympus_Mons",
        "America/",
        "America/Indiana",
        "america/new_york",
        "America/New_York ",
        "/etc/passwd",
        "../America/New_York",
        "posix/America/New_York",
        "right/UTC",
    ],
)
def test_other_timezone_names_are_refused(name):
    with pytest.raises(TimezoneError):
        resolve_timezone(name)


def test_slot_id_is_the_utc_minute_of_an_aware_instant():
    slot = datetime(2026, 3, 8, 3, 0, 42, tzinfo=NEW_YORK)

    assert slot_id(slot) == "2026-03-08T07:00Z"
    assert slot_local(slot, NEW_YORK) == "2026-03-08T03:00"


NAIVE = datetime(2026, 1, 1)  # noqa: DTZ001 - the naive input under test


def test_next_slot_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_slot("0 7 * * *", NEW_YORK, NAIVE)


def test_slot_id_and_slot_local_refuse_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        slot_id(NAIVE)
    with pytest.raises(ValueError, match="timezone-aware"):
        slot_local(NAIVE, NEW_YORK)


def test_occurrences_refuses_a_negative_count():
    with pytest.raises(ValueError, match="negative"):
        occurrences("0 7 * * *", NEW_YORK, utc("2026-01-01T00:00"), -1)


def test_a_slot_is_strictly_after_an_instant_with_seconds():
    after = utc("2026-01-10T12:00") + timedelta(seconds=30)

    slot = next_slot("0 7 * * *", NEW_YORK, after)

    assert slot_id(slot) == "2026-01-11T12:00Z"


def test_occurrences_of_zero_is_empty():
    assert occurrences("0 7 * * *", NEW_YORK, utc("2026-01-01T00:00"), 0) == []


# --- a year of slots against an independent brute-force reference --------------------------------

MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
WEEKDAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


def reference_field(text, low, high, names=None):
    def number(token):
        return (names or {}).get(token.upper()) if not token.isdigit() else int(token)

    values = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = low, high
        else:
            first, _, last = span.partition("-")
            first = number(first)
            last = number(last) if last else first
        values |= set(range(first, last + 1, int(step or 1)))
    return values


def reference_instant(wall, tz):
    # The first existing wall minute at or after `wall`; of its instants, the earlier one.
    while (wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)).replace(tzinfo=None) != wall:
        wall += timedelta(minutes=1)
    return min(wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))


def reference_slots(cron, tz, start, end):
    minute, hour, dom, month, dow = cron.split()
    minutes, hours = reference_field(minute, 0, 59), reference_field(hour, 0, 23)
    days, months = reference_field(dom, 1, 31), reference_field(month, 1, 12, MONTHS)
    weekdays = {d % 7 for d in reference_field(dow, 0, 7, WEEKDAYS)}
    either = days != set(range(1, 32)) and weekdays != set(range(7))
    instants = set()
    day, last_day = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last_day:
        by_date, by_weekday = day.day in days, day.isoweekday() % 7 in weekdays
        if day.month in months and ((by_date or by_weekday) if either else by_date and by_weekday):
            for h in hours:
                for m in minutes:
                    wall = datetime(day.year, day.month, day.day, h, m)  # noqa: DTZ001 - wall time
                    instants.add(reference_instant(wall, tz))
        day += timedelta(days=1)
    return sorted(i for i in instants if start < i <= end)


def slots_until(cron, tz, start, end):
    slots, cursor = [], start
    while (cursor := next_slot(cron, tz, cursor)) <= end:
        slots.append(cursor)
    return slots


YEAR_CRONS = [
    "0 7 * * *",
    "0 9 * * 1",
    "0 8 1 * *",
    "0 8 1 1,4,7,10 *",
    "30 1 13 * FRI",
    "*/15 * * * *",
    "30 2 * * SUN",
    "15,45 1-3 * * *",
]


@pytest.mark.parametrize("tz", [NEW_YORK, LOS_ANGELES], ids=["new_york", "los_angeles"])
@pytest.mark.parametrize("cron", YEAR_CRONS)
def test_a_year_of_slots_matches_a_brute_force_reference(cron, tz):
    start, end = utc("2025-12-31T18:00"), utc("2027-01-01T06:00")

    slots = slots_until(cron, tz, start, end)

    assert slots == reference_slots(cron, tz, start, end)
    assert len(slots) >= 4


@pytest.mark.parametrize(
    "cron",
    ["0 7 * * *", "*/15 * * * *", "0 9 13 * FRI", "30 8-18/3 * JAN-MAR,oct mon-fri", "0 0 1 */2 7"],
)
def test_wall_clock_matching_agrees_with_croniter_in_utc(cron):
    start = datetime(2026, 1, 1, 0, 7)  # noqa: DTZ001 - croniter iterates naive wall times
    expected_iter = croniter(cron, start)
    expected = [expected_iter.get_next(datetime).replace(tzinfo=UTC) for _ in range(200)]

    slots = occurrences(cron, ZoneInfo("UTC"), start.replace(tzinfo=UTC), 200)

    assert slots == expected
