from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain.sending import Cap, consent_allows, decide, identity_key, release

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def claim(
    state,
    *,
    playbook="pb_1",
    execution="ev_1",
    delivery="dlv_1",
    channel="email",
    now=NOW,
    cap=None,
    transactional=False,
):
    return decide(
        state, playbook_id=playbook, execution_id=execution, delivery=delivery, channel=channel,
        transactional=transactional, now=now, dedup_window=DAY, cap=cap,
    )  # fmt: skip


def test_same_customer_and_playbook_within_24h_is_deduped():
    first = claim(None)
    assert first.outcome == "send"
    second = claim(
        first.state, execution="ev_2", delivery="dlv_2", now=NOW + DAY - timedelta(seconds=1)
    )
    assert second.outcome == "deduped"
    assert second.last_sent_at == NOW


def test_after_24h_and_one_second_it_sends_again():
    first = claim(None)
    assert (
        claim(
            first.state, execution="ev_2", delivery="dlv_2", now=NOW + DAY + timedelta(seconds=1)
        ).outcome
        == "send"
    )


def test_another_playbook_is_not_deduped():
    first = claim(None)
    assert claim(first.state, playbook="pb_2", execution="ev_2", delivery="dlv_2").outcome == "send"


def test_two_sends_in_one_execution_never_dedupe_each_other():
    first = claim(None)
    assert claim(first.state, delivery="dlv_2").outcome == "send"


def test_a_retried_claim_of_the_same_delivery_is_not_counted_twice():
    first = claim(None, cap=Cap(max=1, window_hours=24))
    again = claim(first.state, cap=Cap(max=1, window_hours=24))
    assert again.outcome == "send"
    assert len(again.state["recentSends"]["email"]) == 1


def test_frequency_cap_spans_playbooks_but_not_transactional_sends():
    cap = Cap(max=1, window_hours=16)
    first = claim(None, cap=cap)
    capped = claim(first.state, playbook="pb_2", execution="ev_2", delivery="dlv_2", cap=cap)
    assert capped.outcome == "frequency_capped"
    assert capped.recent_count == 1
    assert (
        claim(
            first.state,
            playbook="pb_2",
            execution="ev_2",
            delivery="dlv_2",
            cap=cap,
            transactional=True,
        ).outcome
        == "send"
    )
    assert (
        claim(
            first.state, playbook="pb_2", execution="ev_2", delivery="dlv_2", cap=cap, channel="sms"
        ).outcome
        == "send"
    )


def test_transactional_still_dedupes_per_playbook():
    first = claim(None)
    assert (
        claim(first.state, execution="ev_2", delivery="dlv_2", transactional=True).outcome
        == "deduped"
    )


def test_release_removes_only_that_executions_claims():
    state = claim(claim(None).state, playbook="pb_2", execution="ev_2", delivery="dlv_2").state
    released = release(state, execution_id="ev_1")
    assert set(released["lastByPlaybook"]) == {"pb_2"}
    assert [s["deliveryId"] for s in released["recentSends"]["email"]] == ["dlv_2"]
    assert claim(released, execution="ev_3", delivery="dlv_3").outcome == "send"


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        (
            {"dedupeKey": "order-1", "id": "c1", "email": "a@b.co", "phone": "+15555555555"},
            "dk:order-1",
        ),
        ({"id": "c1", "email": "a@b.co", "phone": "+15555555555"}, "cid:c1"),
        ({"email": "a@b.co", "phone": "+15555555555"}, "em:a@b.co"),
        ({"phone": "+15555555555"}, "ph:+15555555555"),
        (None, "em:x@y.co"),
    ],
)
def test_identity_precedence(customer, expected):
    assert identity_key(customer, "x@y.co") == expected


@pytest.mark.parametrize(
    ("channel", "consent", "transactional", "allowed"),
    [
        ("sms", {"sms": True}, False, True),
        ("sms", {}, False, False),
        ("sms", None, True, True),
        ("sms", {"sms": False}, True, False),
        ("email", {}, False, True),
        ("email", {"email": False}, False, False),
        ("email", {"email": False}, True, True),
    ],
)
def test_consent_rules(channel, consent, transactional, allowed):
    assert consent_allows(channel, consent, transactional=transactional) is allowed
