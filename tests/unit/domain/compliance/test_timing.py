"""Send windows across DST, frequency caps, and both together: when a deferred message may go."""

from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from playbook_core import compliance_rules
from playbook_core.domain.compliance import ConsentState, Message, Recipient, check, org_rules
from playbook_core.domain.compliance.org import OrgRules
from tests.unit.domain.compliance.helpers import PROFILE, at, pack, rule, utc

TEXT = Message("sms", "Green Leaf: new drops. Reply STOP to opt out")
NY = Recipient(state="NY", zone="America/New_York", consent=ConsentState("granted", "c"),
               age_verified=True)  # fmt: skip


def run(recipient, send_at, packs, extra=()):
    return check(TEXT, recipient, profile=PROFILE, packs=packs, extra_rules=extra, send_at=send_at)


US_ONLY = [compliance_rules.pack("US")]


@pytest.mark.parametrize(
    ("zone", "send", "expected"),
    [
        # Spring forward 2027-03-14: the night before is EST, the morning EDT (a 9-hour night).
        ("America/New_York", "2027-03-13T22:00", "2027-03-14T12:00"),
        ("America/New_York", "2027-03-14T01:59", "2027-03-14T12:00"),
        # Fall back 2027-11-07: the night before is EDT, the morning EST (an 11-hour night).
        ("America/New_York", "2027-11-06T22:00", "2027-11-07T13:00"),
        ("America/Los_Angeles", "2027-03-13T21:00", "2027-03-14T15:00"),
        ("America/Los_Angeles", "2027-11-06T21:30", "2027-11-07T16:00"),
        # Arizona keeps MST all year: 08:00 is 15:00 UTC on both transition days.
        ("America/Phoenix", "2027-03-14T07:00", "2027-03-14T15:00"),
        ("America/Phoenix", "2027-11-07T06:00", "2027-11-07T15:00"),
    ],
)
def test_quiet_hours_defer_to_the_next_8am_in_the_recipients_zone(zone, send, expected):
    result = run(replace(NY, state=None, zone=zone), at(zone, send), packs=US_ONLY)
    assert result.verdict == "defer"
    assert result.defer_until == utc(expected)
    assert [f.rule_id for f in result.findings] == ["us.tcpa-quiet-hours"]


@pytest.mark.parametrize(
    ("send", "verdict"),
    [("2027-06-15T20:59:59", "allow"), ("2027-06-15T21:00:00", "defer"),
     ("2027-06-15T07:59:59", "defer"), ("2027-06-15T08:00:00", "allow")],
)  # fmt: skip
def test_the_window_includes_its_start_and_excludes_its_end(send, verdict):
    result = run(replace(NY, state=None), at("America/New_York", send), packs=US_ONLY)
    assert result.verdict == verdict


def test_an_opening_time_that_does_not_exist_opens_at_the_jump():
    early = pack(rule("send_window", id="us.early", start="02:30", end="05:00", channels=["sms"]))
    result = run(NY, at("America/New_York", "2027-03-14T01:00"), packs=[early])
    assert result.defer_until == utc("2027-03-14T07:00")
    assert result.defer_until.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "03:00"


def test_a_window_inside_the_gap_opens_the_next_day():
    lost = pack(rule("send_window", id="us.lost", start="02:00", end="02:45", channels=["sms"]))
    result = run(NY, at("America/New_York", "2027-03-14T01:00"), packs=[lost])
    assert result.defer_until == utc("2027-03-15T06:00")  # 02:00 EDT on the 15th


def test_an_ambiguous_opening_time_opens_at_its_first_occurrence():
    night = pack(rule("send_window", id="us.night", start="01:30", end="03:00", channels=["sms"]))
    result = run(NY, at("America/New_York", "2027-11-07T00:30"), packs=[night])
    assert result.defer_until == utc("2027-11-07T05:30")  # 01:30 EDT


def test_between_the_two_occurrences_it_opens_again_at_the_second():
    night = pack(rule("send_window", id="us.night", start="01:30", end="03:00", channels=["sms"]))
    # 01:10 EST (after the clocks went back) reads as before 01:30 again.
    result = run(NY, at("America/New_York", "2027-11-07T01:10", fold=1), packs=[night])
    assert result.defer_until == utc("2027-11-07T06:30")  # 01:30 EST


FL = replace(NY, state="FL")
FL_ONLY = [compliance_rules.pack("US"), compliance_rules.pack("FL")]


def test_a_cap_defers_until_the_oldest_counted_send_leaves_the_window():
    sends = tuple(at("America/New_York", f"2027-06-15T{h}:00") for h in ("09", "10", "11"))
    result = run(replace(FL, recent_sends=sends), at("America/New_York", "2027-06-15T12:00"),
                 packs=FL_ONLY)  # fmt: skip
    assert result.verdict == "defer"
    assert result.defer_until == sends[0] + timedelta(hours=24)
    assert [f.rule_id for f in result.findings] == ["fl.telephone-solicitation-frequency"]


def test_a_send_exactly_one_window_ago_no_longer_counts():
    sends = (at("America/New_York", "2027-06-14T12:00"), at("America/New_York", "2027-06-15T09:00"),
             at("America/New_York", "2027-06-15T10:00"))  # fmt: skip
    result = run(replace(FL, recent_sends=sends), at("America/New_York", "2027-06-15T12:00"),
                 packs=FL_ONLY)  # fmt: skip
    assert result.verdict == "allow"


def test_a_cap_that_ends_outside_the_window_waits_for_the_window():
    # The cap lifts at 20:30, after Florida's 8 p.m. close: the next opening is 08:00 next day.
    sends = (at("America/New_York", "2027-06-14T20:30"), at("America/New_York", "2027-06-15T09:00"),
             at("America/New_York", "2027-06-15T10:00"))  # fmt: skip
    result = run(replace(FL, recent_sends=sends), at("America/New_York", "2027-06-15T12:00"),
                 packs=FL_ONLY)  # fmt: skip
    assert result.defer_until == at("America/New_York", "2027-06-16T08:00")


def test_a_window_that_opens_under_the_cap_waits_for_the_cap():
    # At 08:00 three sends of the last 24 h still count; the oldest leaves at 08:30.
    sends = tuple(at("America/New_York", f"2027-06-15T{t}") for t in ("08:30", "09:00", "10:00"))
    result = run(replace(FL, recent_sends=sends), at("America/New_York", "2027-06-15T22:00"),
                 packs=FL_ONLY)  # fmt: skip
    assert result.defer_until == at("America/New_York", "2027-06-16T08:30")
    assert {f.rule_id for f in result.findings} == {
        "us.tcpa-quiet-hours",
        "fl.telephone-solicitation-hours",
        "fl.telephone-solicitation-frequency",
    }


def test_windows_that_never_overlap_block():
    late_only = org_rules(
        OrgRules.model_validate({"sendWindow": {"start": "21:30", "end": "22:30"}})
    )
    result = run(NY, at("America/New_York", "2027-06-15T12:00"), packs=US_ONLY, extra=late_only)
    assert result.verdict == "block"
    assert result.defer_until is None
    assert "never allow" in result.findings[-1].message


def test_an_org_window_narrows_the_pack_window():
    narrow = org_rules(OrgRules.model_validate({"sendWindow": {"start": "10:00", "end": "18:00"}}))
    result = run(NY, at("America/New_York", "2027-06-15T09:00"), packs=US_ONLY, extra=narrow)
    assert result.verdict == "defer"
    assert result.defer_until == at("America/New_York", "2027-06-15T10:00")
