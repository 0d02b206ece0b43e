from playbook_core.domain.ids import definition_hash, h, next_copy_id


def test_hash_test_vector_from_domain_md():
    assert h("a", "b") == "f04cdced9736a69da6103f08a4daaf8c"


def test_hash_separates_parts():
    assert h("ab", "c") != h("a", "bc")


def test_definition_hash_ignores_key_order():
    assert definition_hash({"a": 1, "b": [1, 2]}) == definition_hash({"b": [1, 2], "a": 1})
    assert definition_hash({"a": 1}) != definition_hash({"a": 2})


def test_copy_id_takes_smallest_free_number():
    assert next_copy_id("pb_x", set()) == "pb_x_copy_1"
    assert next_copy_id("pb_x", {"pb_x_copy_1", "pb_x_copy_3"}) == "pb_x_copy_2"
