"""domain.md §9.2 and §12 F10: the last-touch rule, the even split and the adjustments, pure."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain import attribution as rules
from playbook_core.domain.attribution import Touch, decide, even_split, rank

ORDER_AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SEVEN_DAYS = timedelta(days=7)


def touch(delivery_id, sent_at, playbook_id="pb_a", channel="email"):
    return Touch(delivery_id, playbook_id, f"ev_{delivery_id}", channel, sent_at)


def decided(*touches, order_at=ORDER_AT, days=7, total=10_000, currency="USD", org="USD"):
    return decide(
        touches, order_at=order_at, window_days=days, total_minor=total, currency=currency,
        org_currency=org,
    )  # fmt: skip


# --- F10: the window, both ends inclusive, anchored on orderAt -------------------------------


def test_a_delivery_exactly_seven_days_before_the_order_is_included():
    result = decided(touch("dlv_edge", ORDER_AT - SEVEN_DAYS))
    assert result.status == "attributed"
    assert result.last_touch.delivery_id == "dlv_edge"


def test_a_delivery_seven_days_and_one_second_before_is_excluded():
    result = decided(touch("dlv_old", ORDER_AT - SEVEN_DAYS - timedelta(seconds=1)))
    assert result.status == "unattributed"
    assert result.last_touch is None


def test_a_delivery_at_the_order_time_is_included_and_one_after_it_is_not():
    assert decided(touch("dlv_same", ORDER_AT)).status == "attributed"
    after = decided(touch("dlv_after", ORDER_AT + timedelta(seconds=1)))
    assert after.status == "unattributed"


def test_the_latest_delivery_wins():
    result = decided(
        touch("dlv_1", ORDER_AT - timedelta(days=5), "pb_old"),
        touch("dlv_2", ORDER_AT - timedelta(hours=2), "pb_new", "sms"),
        touch("dlv_3", ORDER_AT - timedelta(days=1), "pb_mid"),
    )
    assert result.last_touch.playbook_id == "pb_new"
    assert result.last_touch.channel == "sms"
    assert [t.delivery_id for t in result.touches] == ["dlv_2", "dlv_3", "dlv_1"]


def test_ties_on_sent_at_break_by_delivery_id_ascending():
    at = ORDER_AT - timedelta(hours=1)
    result = decided(touch("dlv_b", at, "pb_b"), touch("dlv_a", at, "pb_a"))
    assert result.last_touch.delivery_id == "dlv_a"


def test_the_window_follows_the_order_timestamp_not_processing_time():
    # An order placed 3 days after the email but processed (say) 10 days later still counts:
    # nothing in the rule reads a clock.
    sent = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert decided(touch("dlv_1", sent), order_at=sent + timedelta(days=3)).status == "attributed"
    assert decided(touch("dlv_1", sent), order_at=sent + timedelta(days=8)).status == (
        "unattributed"
    )


def test_the_window_is_configurable():
    sent = ORDER_AT - timedelta(days=10)
    assert decided(touch("dlv_1", sent), days=7).status == "unattributed"
    assert decided(touch("dlv_1", sent), days=14).status == "attributed"
    assert rules.window(ORDER_AT, 14) == (ORDER_AT - timedelta(days=14), ORDER_AT)


def test_the_same_delivery_found_by_two_identities_counts_once_and_at_most_ten_share():
    at = [ORDER_AT - timedelta(minutes=m) for m in range(15)]
    touches = [touch(f"dlv_{i:02d}", at[i]) for i in range(15)]
    ranked = rank([*touches, *touches[:5]], ORDER_AT, 7)
    assert len(ranked) == rules.MAX_TOUCHES
    assert [t.delivery_id for t in ranked] == [f"dlv_{i:02d}" for i in range(10)]


@pytest.mark.parametrize(
    "data",
    [
        {"attributable": False},
        {"status": "failed"},
        {"status": "skipped"},
        {"dryRun": True},
        {"customerFacing": False},
        {"sentAt": None},
    ],
)
def test_dry_run_internal_failed_and_skipped_deliveries_are_never_candidates(data):
    sent = {
        "attributable": True, "status": "sent", "dryRun": False, "customerFacing": True,
        "sentAt": ORDER_AT, "playbookId": "pb_a", "executionId": "ev_dlv_1", "channel": "email",
    }  # fmt: skip
    assert rules.touch_from("dlv_1", sent) == touch("dlv_1", ORDER_AT)
    assert rules.touch_from("dlv_1", {**sent, **data}) is None


# --- even split ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "parts", "shares"),
    [
        (10_000, 3, [3334, 3333, 3333]),
        (10_001, 3, [3334, 3334, 3333]),
        (5, 10, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
        (999, 1, [999]),
        (0, 2, [0, 0]),
        (-100, 3, [-34, -33, -33]),
    ],
)
def test_even_split_gives_remainder_cents_to_the_most_recent_first(amount, parts, shares):
    assert even_split(amount, parts) == shares
    assert sum(shares) == amount


def test_even_split_shares_follow_the_ranked_order():
    result = decided(
        touch("dlv_old", ORDER_AT - timedelta(days=2), "pb_old"),
        touch("dlv_new", ORDER_AT - timedelta(days=1), "pb_new"),
        total=101,
    )
    assert result.fields()["evenSplit"] == [
        {"playbookId": "pb_new", "deliveryId": "dlv_new", "shareMinor": 51},
        {"playbookId": "pb_old", "deliveryId": "dlv_old", "shareMinor": 50},
    ]


# --- credit, replay, cancel and refunds -----------------------------------------------------------


def attributed_doc(total=10_000, **extra):
    result = decided(
        touch("dlv_2", ORDER_AT - timedelta(hours=1), "pb_last"),
        touch("dlv_1", ORDER_AT - timedelta(days=1), "pb_first"),
        total=total,
    )
    return {**result.fields(), "totalMinor": total, "refunds": {}, **extra}


def test_credit_counts_the_order_for_the_last_touch_and_splits_revenue():
    assert rules.credit(attributed_doc()) == {
        "pb_last": {
            "attributedOrders": 1, "attributedRevenueMinor": 10_000,
            "evenSplitRevenueMinor": 5_000,
        },
        "pb_first": {"evenSplitRevenueMinor": 5_000},
    }  # fmt: skip


def test_a_currency_mismatch_is_attributed_but_adds_no_revenue():
    result = decided(touch("dlv_1", ORDER_AT), currency="CAD", org="USD")
    assert result.status == "attributed"
    assert result.currency_mismatch is True
    doc = {**result.fields(), "totalMinor": 10_000}
    assert rules.credit(doc) == {"pb_a": {"attributedOrders": 1}}


def test_unattributed_and_void_documents_credit_nothing():
    assert rules.credit({**attributed_doc(), "status": "unattributed"}) == {}
    assert rules.credit({**attributed_doc(), "status": "void"}) == {}


def test_a_replayed_cancel_is_a_no_op_after_the_first_voids_and_reverses():
    doc = attributed_doc()
    first = rules.cancel(doc, "cancelled")
    assert first.outcome == "voided"
    assert first.changes == {"status": "void", "voidReason": "cancelled"}
    assert first.counters == rules.negate(rules.credit(doc))
    replay = rules.cancel({**doc, **first.changes}, "cancelled")
    assert (replay.outcome, replay.counters) == ("duplicate", {})


def test_a_partial_refund_reduces_revenue_once_per_refund_id():
    doc = attributed_doc(total=10_000)
    first = rules.refund(doc, "r1", 2_001)
    assert first.outcome == "refunded"
    assert first.changes == {"refunds": {"r1": 2_001}, "refundedMinor": 2_001}
    assert first.counters == {
        "pb_last": {"attributedRevenueMinor": -2_001, "evenSplitRevenueMinor": -1_001},
        "pb_first": {"evenSplitRevenueMinor": -1_000},
    }
    after = {**doc, **first.changes}
    assert rules.refund(after, "r1", 2_001).outcome == "duplicate"
    second = rules.refund(after, "r2", 1_000)
    assert second.counters["pb_last"]["attributedRevenueMinor"] == -1_000
    # Voiding later reverses only what is still credited, so the sums end at zero.
    final = {**after, **second.changes}
    total = rules.credit(doc)
    for step in (first.counters, second.counters, rules.cancel(final, "cancelled").counters):
        for playbook_id, deltas in step.items():
            for name, delta in deltas.items():
                total[playbook_id][name] += delta
    assert all(value == 0 for deltas in total.values() for value in deltas.values())


def test_a_refund_of_the_whole_total_or_without_an_id_voids():
    doc = attributed_doc(total=10_000)
    assert rules.refund(doc, "r1", 10_000).outcome == "voided"
    assert rules.refund(doc, None, None).outcome == "voided"
    partly = {**doc, "refunds": {"r1": 6_000}}
    assert rules.refund(partly, "r2", 4_000).changes["status"] == "void"


def test_a_refund_before_the_order_is_known_is_only_recorded():
    placeholder = {"status": "unattributed", "totalMinor": None, "refunds": {}}
    change = rules.refund(placeholder, "r1", 500)
    assert (change.outcome, change.counters) == ("refunded", {})
    assert change.changes["refunds"] == {"r1": 500}


def test_a_replay_of_a_settled_order_is_a_no_op():
    from playbook_core.service.reporting.attribution import settled

    for doc in (
        {"status": "attributed"},
        {"status": "void"},
        {"status": "unattributed", "finalAt": ORDER_AT},
    ):
        assert settled(doc)
    assert not settled(None)
    assert not settled({"status": "unattributed", "finalAt": None})  # re-evaluated until final


def test_attribution_ids_separate_orgs_and_sources():
    ids = {
        rules.attribution_id("org_a", "woocommerce", "42"),
        rules.attribution_id("org_b", "woocommerce", "42"),
        rules.attribution_id("org_a", "shopify", "42"),
    }
    assert len(ids) == 3
    assert all(i.startswith("att_") and len(i) == 36 for i in ids)


def test_order_from_reads_event_data_and_normalises_identities():
    order = rules.order_from(
        "org_a", {"orderId": 1001, "orderSource": "shopify", "orderAt": "2026-11-20T10:00:00-05:00",
                  "total": "12.34", "currency": "usd"},
        {"email": " Ann@Example.COM ", "phone": "(415) 555-0100"}, default_source="api",
        fallback_at=None,
    )  # fmt: skip
    assert order.order_id == "1001"
    assert order.order_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert (order.total_minor, order.currency) == (1234, "USD")
    assert (order.email, order.phone) == ("ann@example.com", "+14155550100")
    assert rules.order_from("org_a", {}, None, default_source="api", fallback_at=None) is None


# --- the batch core agrees with the per-order rule ------------------------------------------------


def test_the_batch_core_picks_the_same_last_touch_as_the_rule():
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    base = ORDER_AT.timestamp()
    deliveries = []
    for n in range(400):
        sent = base - rng.randrange(0, 12 * 86_400)
        sent -= sent % 3600  # whole hours, so ties on sentAt happen
        identities = [f"em:{rng.randrange(30)}"] + ([f"cid:{rng.randrange(30)}"] if n % 2 else [])
        deliveries.append((f"dlv_{n:04d}", sent, f"pb_{n % 4}", identities))
    index = rules.timeline(deliveries)
    for n in range(200):
        at = base - rng.randrange(0, 86_400)
        identities = [f"em:{n % 30}", f"cid:{(n * 7) % 30}"]
        found = rules.last_touch_at(index, identities, at, 7 * 86_400)
        moment = datetime.fromtimestamp(at, UTC)
        touches = [
            touch(d, datetime.fromtimestamp(s, UTC), pb)
            for d, s, pb, ids in deliveries
            if set(ids) & set(identities)
        ]
        expected = decided(*touches, order_at=moment).last_touch
        if expected is None:
            assert found is None
        else:
            assert found[1] == expected.delivery_id
