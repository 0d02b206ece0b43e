"""Send-time freshness, the pure rule: which product a guard names, and is it in stock."""

import pytest

from playbook_core.domain.stock import availability, product_id_of, stored_forms

ORG = "org_a"


def level(qty, *, product="p1", org=ORG, field="quantity", **extra):
    return {"orgId": org, "productId": product, field: qty, **extra}


def judge(docs, *, product="p1", complete=True):
    return availability(docs.items(), org_id=ORG, product_id=product, complete=complete)


# --- what the guard names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ("p1", "p1"),
        ("  sku-9 ", "sku-9"),
        (8123456, "8123456"),  # a whole-value placeholder keeps the event's number
        (0, "0"),
        ("", None),
        ("   ", None),
        (True, None),
        (1.5, None),
        ({"id": "p1"}, None),
        (["p1"], None),
        (None, None),
        ("x" * 257, None),
    ],
)
def test_a_guard_names_a_product_only_with_text_or_a_whole_number(rendered, expected):
    assert product_id_of(rendered) == expected


@pytest.mark.parametrize(
    ("product", "forms"),
    [
        ("123", ["123", 123]),
        ("0", ["0", 0]),
        ("0123", ["0123"]),  # 123 would be another id
        ("sku-1", ["sku-1"]),
        ("1" * 19, ["1" * 19]),  # no int64 holds it, so no sync stored it as a number
    ],
)
def test_numeric_ids_are_also_looked_up_as_numbers(product, forms):
    assert stored_forms(product) == forms


# --- in stock, sold out, unknown -------------------------------------------------------------


def test_any_variant_or_location_in_stock_makes_the_product_available():
    docs = {
        "i1": level(0, locationId="north"),
        "i2": level(3, locationId="south", variantId="v2"),
    }
    assert judge(docs) == "available"


def test_every_level_at_zero_or_below_is_unavailable():
    docs = {"i1": level(0), "i2": level(-2, variantId="v2")}  # oversold counts as none
    assert judge(docs) == "unavailable"


def test_a_read_cut_short_never_proves_a_product_sold_out():
    assert judge({"i1": level(0)}, complete=False) == "unknown"
    assert judge({"i1": level(2)}, complete=False) == "available"


def test_no_level_at_all_is_unknown():
    assert judge({}) == "unknown"
    assert judge({"i1": {"orgId": ORG, "productId": "p1", "name": "Gummies"}}) == "unknown"


def test_a_doc_without_a_quantity_says_nothing_beside_ones_that_do():
    docs = {"i1": level(0), "i2": {"orgId": ORG, "productId": "p1", "status": "active"}}
    assert judge(docs) == "unavailable"


@pytest.mark.parametrize("field", ["quantity", "available", "stockQuantity", "stock"])
def test_each_quantity_field_a_sync_may_use_counts(field):
    assert judge({"i1": level(4, field=field)}) == "available"
    assert judge({"i1": level(0, field=field)}) == "unavailable"


def test_numeric_strings_from_pos_syncs_count_and_non_numbers_do_not():
    assert judge({"i1": level("2")}) == "available"
    assert judge({"i1": level("0")}) == "unavailable"
    assert judge({"i1": level("NaN")}) == "unknown"
    assert judge({"i1": level("many")}) == "unknown"


def test_another_orgs_stock_does_not_count():
    docs = {"i1": level(0), "i2": level(50, org="org_b")}
    assert judge(docs) == "unavailable"


def test_the_org_may_be_named_by_brand_or_retailer():
    assert judge({"i1": {"brandId": ORG, "productId": "p1", "quantity": 1}}) == "available"
    assert judge({"i1": {"retailerId": ORG, "productId": "p1", "quantity": 0}}) == "unavailable"


def test_a_pos_doc_belongs_to_its_brand_only():
    pos = {"brandId": "brand_1", "retailerId": ORG, "productId": "p1", "quantity": 9}
    assert judge({"alleaves_1": pos}) == "unknown"


def test_another_products_level_does_not_count():
    docs = {"i1": level(0), "i2": level(7, product="p2")}
    assert judge(docs) == "unavailable"


def test_a_doc_without_a_product_id_stands_for_the_product_by_its_own_id():
    assert judge({"p1": {"orgId": ORG, "quantity": 2}}) == "available"
    assert judge({"other": {"orgId": ORG, "quantity": 2}}) == "unknown"


def test_a_numeric_product_id_field_matches_the_guards_text():
    assert judge({"i1": level(0, product=123)}, product="123") == "unavailable"
