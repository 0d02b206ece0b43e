"""Where a WooCommerce catch-up pass reads next, on the answers the stand-in cannot give.

The paging itself (an order changed mid-pass skips none) is held by the property tests against
the stand-in in tests/integration/test_store_api_standins.py.
"""

from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.adapters.store_apis import _WooPosition
from playbook_core.ports import OrdersPage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def order(order_id, second):
    stamp = (T0 + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
    return {"id": order_id, "date_modified_gmt": stamp}


def test_an_empty_page_that_promises_more_moves_on_by_page_number():
    """WooCommerce counts orders the key may not read, then leaves them out of the page."""
    at = _WooPosition(after=T0)
    following = at.following(OrdersPage(orders=[], next_cursor="2"))
    assert following == _WooPosition(after=T0, page=2)


def test_a_crowded_second_without_ids_moves_on_by_page_number():
    at = _WooPosition(after=T0, read=(1, 2), one_second=True)
    following = at.following(OrdersPage(orders=[{"date_modified_gmt": "x"}], next_cursor="2"))
    assert following == _WooPosition(after=T0, read=(1, 2), one_second=True, page=2)


def test_a_page_moves_to_its_last_second_less_the_ids_read_in_it():
    at = _WooPosition(after=T0)
    page = OrdersPage(orders=[order(7, 1), order(3, 4), order(9, 4)], next_cursor="2")
    assert at.following(page) == _WooPosition(after=T0 + timedelta(seconds=3), read=(3, 9))


def test_a_page_all_in_one_second_reads_that_second_alone():
    at = _WooPosition(after=T0)
    page = OrdersPage(orders=[order(4, 1), order(2, 1)], next_cursor="2")
    assert at.following(page) == _WooPosition(after=T0, read=(4, 2), one_second=True)


def test_the_last_page_ends_the_pass_and_a_read_second_hands_back():
    assert (
        _WooPosition(after=T0).following(OrdersPage(orders=[order(1, 1)], next_cursor=None)) is None
    )
    crowded = _WooPosition(after=T0, read=(1,), one_second=True)
    done = crowded.following(OrdersPage(orders=[order(2, 1)], next_cursor=None))
    assert done == _WooPosition(after=T0 + timedelta(seconds=1))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "2",
        "[]",
        '["x", [], false, 1]',
        '["2026-03-01T12:00:00Z", ["a"], false, 1]',
        '["2026-03-01T12:00:00Z", [], false, 0]',
        "null",
    ],
)
def test_a_cursor_this_adapter_did_not_write_is_refused(cursor):
    with pytest.raises(ValueError, match="not a WooCommerce cursor"):
        _WooPosition.decode(cursor)


def test_a_position_survives_its_cursor():
    at = _WooPosition(after=T0 + timedelta(seconds=5), read=(3, 9), one_second=True, page=2)
    assert _WooPosition.decode(at.encode()) == at
