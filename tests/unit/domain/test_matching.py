from datetime import UTC, datetime, timedelta, timezone

import pytest

from playbook_core.domain.envelope import EventEnvelope, Source
from playbook_core.domain.loading import load_data
from playbook_core.domain.matching import (
    MISSING,
    evaluate,
    filter_context,
    identity_key,
    loop_blocked,
    matching_trigger,
    resolve,
)
from playbook_core.domain.playbook import Predicate

CONTEXT = {
    "data": {
        "total": "20.00",
        "count": 3,
        "ratio": 0.1,
        "flag": True,
        "name": "Blue Dream",
        "tags": ["vip", "new", 7],
        "nothing": None,
        "at": "2026-03-07T12:00:00Z",
        "lineItems": [{"sku": "A1"}, {"sku": "B2"}],
        "nested": {"0": "zero-key"},
    },
    "customer": {"email": "a@b.com", "consent": {"sms": True, "email": False}},
}


def p(path, op, *value):
    return {"path": path, "op": op, **({"value": value[0]} if value else {})}


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.total", "20.00"),
        ("data.lineItems.1.sku", "B2"),
        ("data.nested.0", "zero-key"),
        ("customer.consent.sms", True),
        ("data.nothing", None),
    ],
)
def test_paths_resolve_through_maps_and_list_indexes(path, expected):
    assert resolve(CONTEXT, path) == expected


@pytest.mark.parametrize(
    "path", ["data.missing", "data.lineItems.5.sku", "data.lineItems.x", "data.total.more", "nope"]
)
def test_unresolvable_paths_are_missing(path):
    assert resolve(CONTEXT, path) is MISSING


# --- eq / ne -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        (p("data.total", "eq", 20), True),  # numeric string vs number: numeric
        (p("data.total", "eq", 20.0), True),
        (p("data.total", "eq", "20"), False),  # two strings: type-strict text
        (p("data.total", "eq", "20.00"), True),
        (p("data.count", "eq", 3.0), True),
        (p("data.count", "eq", "3"), True),
        (p("data.count", "eq", "3.5"), False),
        (p("data.ratio", "eq", "0.1"), True),  # floats compare by their text, not binary
        (p("data.flag", "eq", True), True),  # noqa: FBT003
        (p("data.flag", "eq", 1), False),  # bool is not a number
        (p("data.flag", "eq", "true"), False),
        (p("data.count", "eq", True), False),  # noqa: FBT003
        (p("data.name", "eq", "Blue Dream"), True),
        (p("data.name", "eq", "blue dream"), False),  # case-sensitive
        (p("data.nothing", "eq", None), True),
        (p("data.total", "eq", "abc"), False),
        (p("data.name", "eq", 5), False),  # non-numeric string vs number
        (p("data.total", "ne", 20), False),
        (p("data.total", "ne", 21), True),
        (p("data.name", "ne", "blue dream"), True),
        (p("data.flag", "ne", 1), True),
    ],
)
def test_equality_is_numeric_across_numbers_and_numeric_strings_and_strict_otherwise(
    predicate, expected
):
    assert evaluate(predicate, CONTEXT) is expected


# --- ordering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        (p("data.total", "gte", 20), True),
        (p("data.total", "gt", 20), False),
        (p("data.total", "gt", "19.99"), True),  # both numeric strings: parsed
        (p("data.total", "lt", 100), True),  # "20.00" < 100, not "20.00" < "100" as text
        (p("data.count", "lte", 3), True),
        (p("data.count", "lt", 3), False),
        (p("data.at", "gt", "2026-03-07T11:59:59Z"), True),
        (p("data.at", "gte", "2026-03-07T13:00:00+01:00"), True),  # same instant, other offset
        (p("data.at", "lt", "2026-03-07T13:00:00+01:00"), False),
        (p("data.at", "lt", "2026-03-08T00:00:00z"), True),
        (p("data.at", "gt", 5), False),  # instant vs number
        (p("data.count", "gt", "2026-03-07T11:59:59Z"), False),
        (p("data.name", "gt", "A"), False),  # plain strings do not order
        (p("data.flag", "gt", 0), False),  # bools do not order
        (p("data.at", "gt", "2026-03-07"), False),  # a date is not an instant
        (p("data.nothing", "lt", 5), False),
        (p("data.tags", "gt", 1), False),
    ],
)
def test_comparisons_need_two_numbers_or_two_instants(predicate, expected):
    assert evaluate(predicate, CONTEXT) is expected


def test_aware_datetimes_in_the_context_are_instants_and_naive_ones_are_not():
    context = {
        "aware": datetime(2026, 3, 7, 12, tzinfo=UTC),
        "naive": datetime(2026, 3, 7, 12),  # noqa: DTZ001 - the case under test
        "paris": datetime(2026, 3, 7, 13, tzinfo=timezone(timedelta(hours=1))),
    }
    assert evaluate(p("aware", "gte", "2026-03-07T12:00:00Z"), context)
    assert evaluate(p("paris", "eq", "x"), context) is False
    assert evaluate(p("aware", "lte", "2026-03-07T13:00:00+01:00"), context)
    assert evaluate(p("naive", "gte", "2000-01-01T00:00:00Z"), context) is False


def test_non_finite_floats_are_not_numbers():
    context = {"nan": float("nan"), "inf": float("inf")}
    assert evaluate(p("nan", "eq", "nan"), context) is False
    assert evaluate(p("inf", "gt", 1), context) is False
    assert evaluate(p("inf", "eq", float("inf")), context) is False


# --- in / not_in / contains ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        (p("data.total", "in", [10, 20]), True),  # eq semantics: "20.00" in [20]
        (p("data.total", "in", ["20"]), False),
        (p("data.name", "in", ["Blue Dream", "OG"]), True),
        (p("data.name", "in", []), False),
        (p("data.flag", "in", [1]), False),
        (p("data.total", "not_in", [10, 20]), False),
        (p("data.name", "not_in", ["OG"]), True),
        (p("data.name", "contains", "Dream"), True),
        (p("data.name", "contains", "dream"), False),
        (p("data.tags", "contains", "vip"), True),
        (p("data.tags", "contains", "7"), True),  # list elements use eq semantics
        (p("data.tags", "contains", "old"), False),
        (p("data.count", "contains", 3), False),  # neither a string nor a list
        (p("data.name", "contains", 5), False),
        (p("data.nested", "contains", "0"), False),
    ],
)
def test_membership_and_contains(predicate, expected):
    assert evaluate(predicate, CONTEXT) is expected


# --- exists and missing paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        (p("customer.email", "exists"), True),
        (p("customer.phone", "exists"), False),
        (p("data.nothing", "exists"), False),  # null is not a value
        (p("customer.phone", "not_exists"), True),
        (p("data.nothing", "not_exists"), True),
        (p("customer.email", "not_exists"), False),
    ],
)
def test_exists_means_a_non_null_value(predicate, expected):
    assert evaluate(predicate, CONTEXT) is expected


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("eq", 1), ("ne", 1), ("gt", 1), ("gte", 1), ("lt", 1), ("lte", 1), ("in", [1]),
        ("not_in", [1]), ("contains", "x"),
    ],
)  # fmt: skip
def test_a_missing_path_makes_every_op_false_except_not_exists(op, value):
    assert evaluate(p("data.absent", op, value), CONTEXT) is False
    assert evaluate(p("data.absent", "not_exists"), CONTEXT) is True


# --- lists, models, errors ----------------------------------------------------------------------


def test_a_list_of_predicates_must_all_hold_and_an_empty_list_holds():
    both = [p("customer.email", "exists"), p("customer.consent.sms", "eq", True)]  # noqa: FBT003
    one_fails = [*both, p("customer.consent.email", "eq", True)]  # noqa: FBT003
    assert evaluate(both, CONTEXT) is True
    assert evaluate(one_fails, CONTEXT) is False
    assert evaluate([], CONTEXT) is True


def test_validated_predicate_models_evaluate_like_maps():
    model = Predicate.model_validate({"path": "data.total", "op": "gte", "value": 20})
    assert evaluate(model, CONTEXT) is True
    assert evaluate([model, Predicate.model_validate(p("data.count", "lt", 3))], CONTEXT) is False


def test_an_unknown_op_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown predicate op"):
        evaluate(p("data.total", "matches", ".*"), CONTEXT)


# --- event triggers ------------------------------------------------------------------------------

DEFINITION = load_data(
    {
        "name": "Big orders",
        "agent": "craig",
        "triggers": [
            {"id": "manual_one", "type": "manual"},
            {
                "id": "big",
                "type": "event",
                "eventName": "order.completed",
                "filters": [{"path": "data.total", "op": "gte", "value": 100}],
            },
            {
                "id": "shopify_mid",
                "type": "event",
                "eventName": "order.post_purchase",
                "filters": [
                    {"path": "data.total", "op": "gte", "value": 20},
                    {"path": "source.kind", "op": "eq", "value": "shopify"},
                ],
            },
            {"id": "signup", "type": "event", "eventName": "customer.created"},
        ],
        "steps": [{"action": "notify", "params": {"channel": "dashboard", "to": "role:admin",
                                                  "message": "hi"}}],
    }
).definition  # fmt: skip


def envelope(total, kind="shopify", **extra):
    return EventEnvelope(
        event_id="e1", org_id="org_a", name="order.completed",
        occurred_at=datetime(2026, 3, 7, tzinfo=UTC), received_at=datetime(2026, 3, 7, tzinfo=UTC),
        source=Source(kind=kind, ref="shop.example.com"), data={"total": total}, **extra,
    )  # fmt: skip


NAMES = ("order.completed", "order.post_purchase")


def test_first_event_trigger_whose_filters_pass_wins():
    assert matching_trigger(DEFINITION, NAMES, filter_context(envelope("150.00"), None)) == "big"
    assert (
        matching_trigger(DEFINITION, NAMES, filter_context(envelope("25.00"), None))
        == "shopify_mid"
    )


def test_no_trigger_matches_when_filters_fail_or_names_differ():
    assert matching_trigger(DEFINITION, NAMES, filter_context(envelope("5"), None)) is None
    woo = filter_context(envelope("25.00", kind="woocommerce"), None)
    assert matching_trigger(DEFINITION, NAMES, woo) is None
    big_woo = filter_context(envelope("150", kind="woocommerce"), None)
    assert matching_trigger(DEFINITION, ("order.post_purchase",), big_woo) is None
    assert matching_trigger(DEFINITION, ("order.created",), big_woo) is None


def test_alias_triggers_are_stored_canonical_and_have_no_filters():
    context = filter_context(envelope("0"), {"email": "a@b.com"})
    assert matching_trigger(DEFINITION, ("customer.signup",), context) == "signup"


def test_filter_context_roots_are_data_customer_and_source():
    context = filter_context(envelope("1"), {"id": "cus_1", "consent": {"sms": True}})
    assert set(context) == {"data", "customer", "source"}
    assert evaluate(p("customer.consent.sms", "eq", True), context)  # noqa: FBT003
    assert evaluate(p("source.ref", "eq", "shop.example.com"), context)
    assert evaluate(p("customer.id", "exists"), filter_context(envelope("1"), None)) is False


# --- identity and loop guard ---------------------------------------------------------------------


def test_identity_key_precedence_is_dedupe_key_then_id_then_email_then_phone():
    full = {"dedupe_key": "k1", "customer_id": "cus_1", "email": "a@b.com", "phone": "+14155550100"}
    assert identity_key(**full) == "dk:k1"
    assert identity_key(**{**full, "dedupe_key": None}) == "cid:cus_1"
    assert identity_key(**{**full, "dedupe_key": None, "customer_id": ""}) == "em:a@b.com"
    assert identity_key(phone="+14155550100") == "ph:+14155550100"
    assert identity_key() is None


@pytest.mark.parametrize(
    ("chain", "depth", "blocked"),
    [
        ([], 0, False),
        (["pb_other"], 1, False),
        (["pb_other", "pb_x"], 2, False),
        (["pb_1"], 1, True),  # would re-enter itself
        (["pb_a", "pb_1", "pb_b"], 2, True),
        (["pb_a", "pb_b", "pb_c"], 3, True),  # too deep, whoever it is
        ([], 7, True),
    ],
)
def test_loop_guard(chain, depth, blocked):
    assert loop_blocked("pb_1", chain, depth) is blocked
