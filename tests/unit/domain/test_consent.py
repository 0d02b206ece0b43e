"""Consent records (consent.md §1, §5): the document, its retention, the record in force."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain.consent import (
    consent_record,
    customer_of,
    derived_record_id,
    disclosure_hash,
    latest,
    retained_until,
)
from playbook_core.domain.errors import BadRequest

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def record(**changes):
    fields = {
        "record_id": "cns_1", "org_id": "org_a", "identity_key": "cid:cus_1",
        "customer_id": "cus_1", "channel": "sms", "state": "revoked", "at": AT,
        "source": "keyword", "method": "STOP keyword",
    }  # fmt: skip
    return consent_record(**{**fields, **changes})


def test_a_record_carries_every_field_and_its_retention():
    made = record(disclosure="Reply STOP to opt out.", ip="203.0.113.9", user_agent="curl/8")
    assert made == {
        "id": "cns_1", "orgId": "org_a", "identityKey": "cid:cus_1", "customerId": "cus_1",
        "channel": "sms", "state": "revoked", "at": AT, "source": "keyword",
        "method": "STOP keyword", "disclosure": "Reply STOP to opt out.",
        "disclosureHash": disclosure_hash("Reply STOP to opt out."), "ip": "203.0.113.9",
        "userAgent": "curl/8", "expiresAt": datetime(2030, 12, 24, 12, 0, tzinfo=UTC),
    }  # fmt: skip
    bare = record()
    assert (bare["disclosure"], bare["disclosureHash"], bare["ip"], bare["userAgent"]) == (
        None, None, None, None,
    )  # fmt: skip


def test_the_disclosure_hash_is_sha256_of_the_utf8_text():
    # printf '%s' 'I agree ✓' | sha256sum
    assert disclosure_hash("I agree ✓") == (
        "272e2a9e45edf4b3892525a69c30efcc6c31fea03bdf46954b06564cd2358ab1"
    )


@pytest.mark.parametrize(
    ("at", "until"),
    [
        (AT, datetime(2030, 12, 24, 12, 0, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), datetime(2032, 3, 30, tzinfo=UTC)),  # leap to leap
        (datetime(2096, 2, 29, tzinfo=UTC), datetime(2100, 3, 30, tzinfo=UTC)),  # 2100: no 29th
    ],
)
def test_records_are_kept_four_years_and_thirty_days(at, until):
    assert retained_until(at) == until


# Hypothesis takes naive bounds and attaches the zone itself.
INSTANTS = st.datetimes(
    datetime(2000, 1, 1),  # noqa: DTZ001
    datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(INSTANTS)
def test_retention_is_never_shorter_than_four_years_and_thirty_days(at):
    until = retained_until(at)
    assert until >= at + timedelta(days=4 * 365 + 30)  # four years hold at least 4 × 365 days
    assert (until - timedelta(days=30)).year == at.year + 4


@pytest.mark.parametrize(
    "changes",
    [{"channel": "push"}, {"state": "maybe"}, {"source": "guess"}, {"record_id": "a/b"},
     {"org_id": ""}, {"identity_key": ""}, {"identity_key": "x" * 301}, {"customer_id": "a b"},
     {"method": "  "}, {"method": "x" * 201}, {"at": datetime(2026, 1, 1)},  # noqa: DTZ001 - naive: refused
     {"disclosure": "x" * 10_001}, {"ip": "x" * 65}, {"user_agent": "x" * 513}],
)  # fmt: skip
def test_a_value_no_record_may_hold_is_refused(changes):
    with pytest.raises(BadRequest):
        record(**changes)


def test_the_record_in_force_is_the_latest_then_the_greater_id():
    older = {"id": "cns_9", "at": AT, "state": "granted"}
    newer = {"id": "cns_1", "at": AT + timedelta(seconds=1), "state": "revoked"}
    tied = {"id": "cns_2", "at": AT + timedelta(seconds=1), "state": "granted"}
    assert latest([older, newer]) == newer
    assert latest([newer, older, tied]) == tied
    assert latest([]) is None
    assert latest([{"id": "x", "at": "not a time"}]) is None


def test_identity_keys_name_customers_only_by_cid():
    assert customer_of("cid:cus_1") == "cus_1"
    assert customer_of("em:ada@example.com") is None
    assert customer_of("cid:") is None
    assert customer_of("cid:a/b") is None


def test_derived_ids_are_stable_and_distinct():
    assert derived_record_id("a", 1) == derived_record_id("a", 1)
    assert derived_record_id("a", 1) != derived_record_id("a", 2)
    assert derived_record_id("a").startswith("cns_")


def test_a_recipients_identities_run_from_the_most_specific_and_never_repeat():
    from playbook_core.domain.consent import identities

    customer = {"dedupeKey": "k1", "id": "cus_1"}
    assert identities(customer, "a@example.com") == ["dk:k1", "cid:cus_1", "em:a@example.com"]
    assert identities(None, "+14155550100") == ["ph:+14155550100"]
    assert identities({"id": "cus_1"}, "") == ["cid:cus_1"]
