"""An org's own rules: parsed from settings, proved by their examples, never weaker than the packs."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from playbook_core import compliance_rules
from playbook_core.domain.compliance import (
    ConsentState,
    Message,
    OrgRules,
    Recipient,
    check,
    org_rules,
    parse_settings,
    run_example,
)
from tests.unit.domain.compliance.helpers import PROFILE

PACKS = compliance_rules.packs()
RANK = {"allow": 0, "warn": 1, "defer": 2, "block": 3}
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Phoenix",
    "America/Los_Angeles",
    "Pacific/Honolulu",
]
WORDS = ["new", "drops", "sale", "promo", "free", "gift", "kids", "weed", "deal", "vip", "Reply",
         "STOP", "to", "opt", "out", "Green", "Leaf"]  # fmt: skip


def test_settings_split_into_profile_and_org_rules():
    profile, extra = parse_settings(
        {"states": ["CA"], "licenses": {"CA": "C10-1"}, "legalName": "Green Leaf LLC",
         "forbiddenTerms": ["promo"], "frequency": {"max": 2, "windowHours": 48},
         "sendWindow": None}
    )  # fmt: skip
    assert profile.licenses == {"CA": "C10-1"}
    assert profile.unsubscribe_link is None
    assert extra.forbidden_terms == ["promo"]
    assert extra.frequency is not None
    assert extra.frequency.window_hours == 48
    assert parse_settings(None) == (parse_settings({})[0], OrgRules())


@pytest.mark.parametrize(
    "data",
    [{"sendWindow": {"start": "18:00", "end": "09:00"}}, {"frequency": {"max": 0, "windowHours": 1}},
     {"forbiddenTerms": ["  "]}, {"colour": "red"}, {"frequency": {"max": 1, "windowHours": 169}}],
)  # fmt: skip
def test_bad_org_rules_are_refused(data):
    with pytest.raises(ValidationError):
        OrgRules.model_validate(data)


def test_bad_profiles_are_refused():
    with pytest.raises(ValidationError):
        parse_settings({"states": ["XX"]})
    with pytest.raises(ValidationError):
        parse_settings({"licenses": {"California": "C10"}})


def test_org_rules_become_org_rules_that_prove_themselves():
    rules = org_rules(
        OrgRules.model_validate(
            {"forbiddenTerms": ["promo code"], "sendWindow": {"start": "10:00", "end": "18:00"},
             "frequency": {"max": 2, "windowHours": 1}}
        )
    )  # fmt: skip
    assert [rule.id for rule in rules] == [
        "org.forbidden-terms",
        "org.send-window",
        "org.frequency",
    ]
    for rule in rules:
        assert rule.jurisdiction == "ORG"
        for example in rule.examples.passing:
            assert not [f for f in run_example(rule, example).findings if f.rule_id == rule.id]
        for example in rule.examples.failing:
            assert [f for f in run_example(rule, example).findings if f.rule_id == rule.id]


def test_no_org_rules_means_no_rules():
    assert org_rules(OrgRules()) == []


clock = st.integers(0, 23 * 60 + 58).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")


@st.composite
def windows(draw):
    start = draw(clock)
    later = draw(st.integers(int(start[:2]) * 60 + int(start[3:]) + 1, 23 * 60 + 59))
    return {"start": start, "end": f"{later // 60:02d}:{later % 60:02d}"}


org_rule_data = st.fixed_dictionaries(
    {},
    optional={
        "forbiddenTerms": st.lists(st.sampled_from(WORDS), max_size=3, unique=True),
        "sendWindow": windows(),
        "frequency": st.fixed_dictionaries(
            {"max": st.integers(1, 5), "windowHours": st.integers(1, 168)}
        ),
    },
)
messages = st.builds(
    Message,
    channel=st.sampled_from(["email", "sms"]),
    body=st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
    subject=st.none() | st.sampled_from(["Hi", "Big sale"]),
    marketing=st.booleans(),
)
# Hypothesis takes naive bounds and attaches the zone itself.
instants = st.datetimes(
    min_value=datetime(2027, 1, 1),  # noqa: DTZ001
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def recipients(draw, send_at):
    hours_ago = draw(st.lists(st.floats(0.0, 200.0), max_size=6))
    return Recipient(
        state=draw(st.sampled_from([None, "CA", "FL", "NY", "OK", "TX", "WA"])),
        zone=draw(st.sampled_from(ZONES)),
        consent=draw(
            st.sampled_from([None, ConsentState("granted", "c"), ConsentState("revoked", "c")])
        ),
        age_verified=draw(st.sampled_from([True, False, None])),
        recent_sends=tuple(send_at - timedelta(hours=h) for h in hours_ago),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), extra=org_rule_data, message=messages, send_at=instants)
def test_org_rules_never_weaken_a_verdict(data, extra, message, send_at):
    recipient = data.draw(recipients(send_at))
    added = org_rules(OrgRules.model_validate(extra))
    without = check(message, recipient, profile=PROFILE, packs=PACKS, send_at=send_at)
    with_org = check(message, recipient, profile=PROFILE, packs=PACKS, extra_rules=added,
                     send_at=send_at)  # fmt: skip
    assert RANK[with_org.verdict] >= RANK[without.verdict]
    if without.verdict in ("block", "defer"):
        assert with_org.verdict in ("block", "defer")
    if without.verdict == with_org.verdict == "defer":
        assert with_org.defer_until >= without.defer_until
    # Every finding of the packs is still there.
    assert {f.rule_id for f in without.findings} <= {f.rule_id for f in with_org.findings}
