"""The playbooks list page (domain.md §10.1, §12 P1; api.md §5) through playbooks_api.

Reads are counted through the DocumentStore port, the way Firestore bills them: one per document
a query returns, one per id asked of get/get_many (found or not). A page must cost the same in an
org of 60 playbooks as in one of 600, and grow with the page size only.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from playbook_core.domain.collections import (
    ORGANIZATIONS,
    PLAYBOOKS,
    SETTINGS,
    STATS,
    SUMMARIES,
)
from playbook_core.domain.loading import load_data
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.reporting import counters

ORG = "org_a"
BASE = f"/v1/orgs/{ORG}/playbooks"


class CountingTransaction:
    def __init__(self, inner, counts):
        self._inner, self._counts = inner, counts

    def get(self, collection, doc_id):
        self._counts[collection] += 1
        return self._inner.get(collection, doc_id)

    def create(self, collection, doc_id, data):
        self._inner.create(collection, doc_id, data)

    def set(self, collection, doc_id, data):
        self._inner.set(collection, doc_id, data)

    def update(self, collection, doc_id, changes):
        self._inner.update(collection, doc_id, changes)

    def delete(self, collection, doc_id):
        self._inner.delete(collection, doc_id)


class CountingStore:
    """The DocumentStore port around another store, counting document reads per collection."""

    def __init__(self, inner):
        self.inner = inner
        self.reads = Counter()

    def total(self):
        return sum(self.reads.values())

    def get(self, collection, doc_id):
        self.reads[collection] += 1
        return self.inner.get(collection, doc_id)

    def get_many(self, collection, doc_ids):
        self.reads[collection] += len(set(doc_ids))
        return self.inner.get_many(collection, doc_ids)

    def query(self, collection, where=(), order_by=(), limit=100, start_after=None):
        page = self.inner.query(collection, where, order_by, limit, start_after)
        self.reads[collection] += max(1, len(page.docs))  # an empty result still bills one read
        return page

    def transaction(self, work):
        return self.inner.transaction(lambda tx: work(CountingTransaction(tx, self.reads)))

    def create(self, collection, doc_id, data):
        self.inner.create(collection, doc_id, data)

    def set(self, collection, doc_id, data, *, merge=False):
        self.inner.set(collection, doc_id, data, merge=merge)

    def update(self, collection, doc_id, changes):
        self.inner.update(collection, doc_id, changes)

    def delete(self, collection, doc_id):
        self.inner.delete(collection, doc_id)

    def ping(self):
        self.inner.ping()


@pytest.fixture
def counted(api):
    """The api fixture with its app's store wrapped; seeding bypasses the counter."""
    store = CountingStore(api.app.store)
    api.app.store = store
    return api, store


def seed(api, org_id, count, *, start=datetime(2026, 1, 1, tzinfo=UTC), **definition):
    """`count` playbooks straight through the service, one second apart (newest last)."""
    clock = type(api.app.clock)(start)
    store = getattr(api.app.store, "inner", api.app.store)
    source = definition.pop("source", {"kind": "user"})
    created = []
    for n in range(count):
        validated = load_data({"name": f"Playbook {n}", "agent": "craig", **definition})
        document = playbooks.create_playbook(
            org_id=org_id, validated=validated, actor="uid_seed", source=source,
            reason="create", authoring=Authoring(store=store, clock=clock, ids=api.app.ids),
        )  # fmt: skip
        created.append(document)
        clock.advance(seconds=1)
    return created


def page_reads(api, store, org_id, **query):
    store.reads.clear()
    response = api.as_(orgs=(org_id,)).get(f"/v1/orgs/{org_id}/playbooks", query_string=query)
    assert response.status_code == 200, response.get_json()
    return store.total(), dict(store.reads), response.get_json()


def walk(api, path, role="brand_admin", orgs=(ORG,), **query):
    """Every page from the first to the one without nextPageToken."""
    pages, token = [], None
    while True:
        params = {**query, **({"pageToken": token} if token else {})}
        response = api.as_(role, orgs).get(path, query_string=params)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages.append(body["playbooks"])
        token = body["nextPageToken"]
        if token is None:
            return pages
        assert len(pages) < 1000, "the cursor never ends"


# --- P1: reads per page -------------------------------------------------------------------


def test_a_page_costs_the_same_reads_in_an_org_of_60_and_of_600(counted):
    api, store = counted
    seed(api, "org_small", 60)
    seed(api, "org_large", 600)

    small, small_by_collection, small_body = page_reads(api, store, "org_small", pageSize=50)
    large, large_by_collection, large_body = page_reads(api, store, "org_large", pageSize=50)

    assert len(small_body["playbooks"]) == len(large_body["playbooks"]) == 50
    assert small == large
    assert (
        small_by_collection
        == large_by_collection
        == {
            PLAYBOOKS: 50,  # the page itself
            SUMMARIES: 50,  # its stats, one batched get_many
            STATS: 4,  # per 30 playbooks, a query for `all` docs and one for live shards: none
            # yet, so each of the 2 × 2 empty queries bills one read
            SETTINGS: 1,
            ORGANIZATIONS: 1,  # the org's zone, for its today
        }
    )


def test_stats_reads_are_the_day_that_left_the_window_and_today_not_30_days(counted):
    api, store = counted
    inner = store.inner
    created = seed(api, "org_busy", 50)
    today = api.app.clock.now().astimezone(ZoneInfo("America/New_York")).date()
    for document in created:
        for back in range(1, 41):  # 40 rolled-up days of activity
            day = (today - timedelta(days=back)).isoformat()
            inner.set(STATS, counters.stats_id("org_busy", document["id"], day, counters.ALL), {
                "orgId": "org_busy", "playbookId": document["id"], "date": day,
                "shard": counters.ALL, "executions": 1,
            })  # fmt: skip
        for shard in ("0", "1", "2", "3", "4", counters.RECOUNT):  # and today's live shards
            counters.bump(
                inner, org_id="org_busy", playbook_id=document["id"], local_date=today.isoformat(),
                counters={"executions": 1}, shard=shard,
            )  # fmt: skip
    counters.summarise(
        inner, org_id="org_busy", through_date=(today - timedelta(days=1)).isoformat()
    )
    _, by_collection, body = page_reads(api, store, "org_busy", pageSize=50)
    # The day that fell out of the window and today's six shards, per playbook.
    assert by_collection[STATS] == 50 * (1 + 6)
    assert {p["stats"]["runs30d"] for p in body["playbooks"]} == {29 + 6}


def test_deeper_pages_cost_what_the_first_does(counted):
    api, store = counted
    seed(api, "org_large", 600)
    first, _, body = page_reads(api, store, "org_large", pageSize=50)
    token = body["nextPageToken"]
    deeper = []
    for _ in range(5):
        reads, _, body = page_reads(api, store, "org_large", pageSize=50, pageToken=token)
        deeper.append(reads)
        token = body["nextPageToken"]
    assert deeper == [first] * 5


@pytest.mark.parametrize("page_size", [1, 10, 50, 100])
def test_reads_are_proportional_to_the_page_size(counted, page_size):
    api, store = counted
    seed(api, "org_large", 600)
    reads, _, body = page_reads(api, store, "org_large", pageSize=page_size)
    assert len(body["playbooks"]) == page_size
    assert reads == 2 * page_size + 2 * -(-page_size // 30) + 2


def test_a_filtered_page_reads_only_what_it_returns(counted):
    api, store = counted
    seed(api, "org_large", 300)
    seed(api, "org_large", 3, name="Win-back lapsed customers", category="marketing")
    reads, _, body = page_reads(api, store, "org_large", pageSize=50, q="winback win back")
    assert len(body["playbooks"]) == 3
    assert reads == 2 * 3 + 2 + 2
    reads, _, body = page_reads(api, store, "org_large", pageSize=50, category="marketing")
    assert (len(body["playbooks"]), reads) == (3, 10)


# --- api.md §5 behaviour ------------------------------------------------------------------


def test_pagination_walks_every_playbook_once_newest_first(api):
    # Two playbooks per second: ties on updatedAt break by id, and the cursor keeps them apart.
    created = seed(api, ORG, 23) + seed(api, ORG, 23)
    pages = walk(api, BASE, pageSize=7)
    seen = [p["id"] for page in pages for p in page]

    assert [len(page) for page in pages] == [7] * 6 + [4]
    assert sorted(seen) == sorted(p["id"] for p in created)
    assert len(set(seen)) == len(seen) == 46
    expected = sorted(created, key=lambda p: p["id"])
    expected.sort(key=lambda p: p["updatedAt"], reverse=True)
    assert seen == [p["id"] for p in expected]


def test_list_items_carry_stats(api):
    seed(api, ORG, 1)
    item = api.as_().get(BASE).get_json()["playbooks"][0]
    assert item["stats"]["runs30d"] == 0
    assert item["stats"]["successRate30d"] is None


def test_q_matches_whole_words_of_name_description_and_tags(api):
    by_name = seed(api, ORG, 1, name="Weekly KPI digest")[0]["id"]
    by_description = seed(api, ORG, 1, name="A", description="Summarise KPI numbers")[0]["id"]
    by_tag = seed(api, ORG, 1, name="B", tags=["kpi"])[0]["id"]
    seed(api, ORG, 1, name="Kpis are not a word match", description="nope")

    def ids(q):
        return {p["id"] for p in api.as_().get(BASE, query_string={"q": q}).get_json()["playbooks"]}

    assert ids("kpi") == {by_name, by_description, by_tag}
    assert ids("KPI") == ids("kpi")  # lowercased
    assert ids("digest numbers") == {by_name, by_description}  # any of the words
    assert ids("kp") == set()  # whole words only
    assert ids("  ") == ids("") != set()  # no words: no search filter


def test_category_and_agent_filters(api):
    marketing = {p["id"] for p in seed(api, ORG, 2, category="marketing")}
    seed(api, ORG, 2, category="ops")
    by_pops = {p["id"] for p in seed(api, ORG, 1, agent="pops")}

    def ids(**query):
        return {p["id"] for page in walk(api, BASE, **query) for p in page}

    assert ids(category="marketing") == marketing
    assert ids(agent="pops") == by_pops
    assert ids(category="compliance") == set()


def test_archived_playbooks_appear_only_with_status_archived(api):
    kept, gone = (p["id"] for p in seed(api, ORG, 2))
    deleted = api.as_().delete(f"{BASE}/{gone}", query_string={"confirm": "true"})
    assert deleted.status_code == 204

    def ids(**query):
        return [p["id"] for p in api.as_().get(BASE, query_string=query).get_json()["playbooks"]]

    assert ids() == [kept]
    assert ids(status="archived") == [gone]
    assert ids(status="draft") == [kept]
    assert api.as_().get(BASE, query_string={"status": "deleted"}).status_code == 400


def test_views_split_registry_from_own_playbooks(api):
    own = {p["id"] for p in seed(api, ORG, 2)}
    registry = {
        p["id"]
        for p in seed(api, ORG, 2, source={"kind": "registry", "registryId": "welcome-sequence"})
    }

    def ids(role="brand_admin", **query):
        return {p["id"] for page in walk(api, BASE, role, **query) for p in page}

    assert ids(view="brand") == own
    assert ids(view="dispensary") == registry
    assert ids(view="all") == own | registry
    assert ids() == ids(view="auto") == own  # brand roles
    assert ids("dispensary_admin") == registry
    assert ids("super_user") == own | registry
    assert api.as_().get(BASE, query_string={"view": "mine"}).status_code == 400


@pytest.mark.parametrize("size", ["-1", "-100", "ten", "1.5", "+3", "0x10", " ", "\u0663"])
def test_a_negative_or_non_numeric_page_size_is_400(api, size):
    response = api.as_().get(BASE, query_string={"pageSize": size})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


LIST_ROUTES = ["playbooks", "events", "executions", "approvals", "deliveries"]


@pytest.mark.parametrize("route", LIST_ROUTES)
@pytest.mark.parametrize(
    ("size", "served"),
    [("101", 100), ("1000", 100), ("99999999999999999999999", 100), ("0", 50), ("", 50),
     (None, 50), ("7", 7), ("100", 100)],
)  # fmt: skip
def test_page_size_follows_aip_158(api, route, size, served):
    """Above the maximum → the maximum; 0 or missing → the default (AIP-158, api.md §5)."""
    if route == "playbooks":
        seed(api, ORG, 120)
    query = {} if size is None else {"pageSize": size}
    response = api.as_().get(f"/v1/orgs/{ORG}/{route}", query_string=query)
    assert response.status_code == 200, response.get_json()
    if route == "playbooks":
        assert len(response.get_json()["playbooks"]) == served


def test_a_forged_page_token_is_400(api):
    seed(api, ORG, 3)
    response = api.as_().get(BASE, query_string={"pageToken": "not-a-cursor"})
    assert response.status_code == 400
