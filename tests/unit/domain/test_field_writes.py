"""`copied`: what a buffer hands out is the caller's own, however deep the maps and arrays go."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain.field_writes import copied

_LEAVES = (
    st.none() | st.integers() | st.text(max_size=3) | st.just(datetime(2026, 1, 1, tzinfo=UTC))
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=10,
)


def _containers(value, found):
    if isinstance(value, dict | list | tuple):
        found.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, found)
    return found


@given(_TREES)
def test_a_copy_equals_its_original_and_shares_no_map_or_array(tree):
    copy = copied(tree)
    assert copy == tree
    mutable = {id(c) for c in _containers(tree, []) if isinstance(c, dict | list)}
    # Tuples may be shared only as far as nothing inside them can change.
    assert [
        c for c in _containers(copy, []) if isinstance(c, dict | list) and id(c) in mutable
    ] == []
