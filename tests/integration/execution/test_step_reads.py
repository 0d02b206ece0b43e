"""What a step keeps from its claim (service/execution/step_reads.py): answers, then forgets."""

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.domain.loading import load_text
from playbook_core.service.execution.step_reads import PinnedVersion, Prefetched, VersionCache
from tests.bench.counting import CountingStore

DEFINITION = load_text(
    "name: P\nagent: craig\nsteps:\n  - action: notify\n"
    '    params: {channel: dashboard, to: "role:admin", message: "hi"}\n'
).definition


def _stores():
    counting = CountingStore(EmbeddedStore(":memory:"))
    counting.set("things", "a", {"n": 1})
    return counting, Prefetched(counting, {("things", "a"): {"n": 1}, ("things", "gone"): None})


def test_known_documents_are_answered_without_asking_the_store():
    counting, store = _stores()
    with counting.measure() as counts:
        assert store.get("things", "a") == {"n": 1}
        assert store.get("things", "gone") is None  # known to be missing
    assert counts.calls == 0


def test_a_caller_that_changes_its_answer_does_not_change_the_next_one():
    _, store = _stores()
    store.get("things", "a")["n"] = 99
    assert store.get("things", "a") == {"n": 1}


def test_a_document_written_through_it_is_read_from_the_store_again():
    counting, store = _stores()
    store.update("things", "a", {"n": 2})
    with counting.measure() as counts:
        assert store.get("things", "a") == {"n": 2}
    assert counts.calls == 1


def test_a_document_written_in_a_transaction_is_read_from_the_store_again():
    _, store = _stores()
    store.transaction(lambda tx: tx.set("things", "gone", {"n": 3}))
    assert store.get("things", "gone") == {"n": 3}


def test_the_version_cache_keeps_the_most_recently_used_versions():
    cache = VersionCache(size=2)
    pinned = PinnedVersion("org_a", DEFINITION)
    cache.put("pb_1", 1, pinned)
    cache.put("pb_1", 2, pinned)
    assert cache.get("pb_1", 1) is pinned  # now the most recently used
    cache.put("pb_2", 1, pinned)
    assert cache.get("pb_1", 2) is None
    assert cache.get("pb_1", 1) is pinned
    assert cache.get("pb_2", 1) is pinned
