from playbook_core.domain.events import CANONICAL_EVENTS, canonical_name, listener_names


def test_there_are_24_canonical_events():
    assert len(set(CANONICAL_EVENTS)) == 24


def test_alias_is_canonicalised_and_unknown_is_none():
    assert canonical_name("customer.created") == "customer.signup"
    assert canonical_name("order.created") == "order.created"
    assert canonical_name("order.exploded") is None


def test_order_completed_fans_in_to_post_purchase_but_not_back():
    assert listener_names("order.completed") == ("order.completed", "order.post_purchase")
    assert listener_names("order.post_purchase") == ("order.post_purchase",)
