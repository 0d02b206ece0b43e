"""GET …/analytics/playbooks and …/playbooks/{id}/analytics (domain.md §9.4, §10.1; api.md §5).

Reads are counted through a DocumentStore proxy: the report costs documents in proportion to
playbooks × days, whatever the number of runs behind them, and never touches runs or deliveries.
"""

from collections import Counter
from datetime import date, timedelta

import pytest

from playbook_core.domain import reports
from playbook_core.domain.collections import DELIVERIES, EXECUTIONS, ORGANIZATIONS, PLAYBOOKS, STATS
from playbook_core.domain.loading import load_data
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.reporting import counters

ORG = "org_a"
BASE = f"/v1/orgs/{ORG}"
TODAY = date(2026, 11, 24)  # the api fixture's clock (12:00 UTC) in America/New_York


class Reads:
    """The DocumentStore port around another store, counting documents read per collection."""

    def __init__(self, inner):
        self.inner, self.reads = inner, Counter()

    def get(self, collection, doc_id):
        self.reads[collection] += 1
        return self.inner.get(collection, doc_id)

    def get_many(self, collection, doc_ids):
        self.reads[collection] += len(set(doc_ids))
        return self.inner.get_many(collection, doc_ids)

    def query(self, collection, where=(), order_by=(), limit=100, start_after=None):
        page = self.inner.query(collection, where, order_by, limit, start_after)
        self.reads[collection] += max(1, len(page.docs))
        return page

    def __getattr__(self, name):  # writes and transactions pass straight through
        return getattr(self.inner, name)


def seed_playbooks(api, count, org=ORG):
    clock = api.app.clock
    return [
        playbooks.create_playbook(
            org_id=org, validated=load_data({"name": f"Playbook {n}", "agent": "craig"}),
            actor="uid_seed", source={"kind": "user"}, reason="create", authoring=Authoring(store=api.app.store, clock=clock, ids=api.app.ids),

        )["id"]
        for n in range(count)
    ]  # fmt: skip


def day(back):
    return (TODAY - timedelta(days=back)).isoformat()


def activity(store, playbook_id, back, *, runs=1, org=ORG, compact=True, **extra):
    """`runs` executions' counters on that day, each on its own shard seed, then (optionally) the
    `all` doc a roll-up of that day would write (these tests are about reading roll-ups; the
    recount that writes them is tested in test_stats.py)."""
    summed = {}
    for n in range(runs):
        deltas = {"executions": 1, "completed": 1, "sent.email": 1, **(extra if n == 0 else {})}
        counters.bump(
            store, org_id=org, playbook_id=playbook_id, local_date=day(back), counters=deltas,
            shard_seed=f"{playbook_id}-{back}-{n}",
        )  # fmt: skip
        summed = reports.add(summed, reports.nested(deltas))
    if compact:
        store.set(STATS, counters.stats_id(org, playbook_id, day(back), counters.ALL), {
            **summed, "orgId": org, "playbookId": playbook_id, "date": day(back),
            "shard": counters.ALL,
        })  # fmt: skip


def get(api, path, role="brand_admin", orgs=(ORG,), **query):
    return api.as_(role, orgs).get(path, query_string=query)


def test_per_playbook_figures_and_org_totals_are_the_sums_of_the_playbooks(api):
    store = api.app.store
    first, second = seed_playbooks(api, 2)
    activity(store, first, 5, runs=2, failed=1, attributedOrders=2, attributedRevenueMinor=5000,
             **{"skipped.deduped": 3})  # fmt: skip
    activity(store, first, 0, compact=False, **{"sent.sms": 1})  # today: live shards
    activity(store, second, 1, compact=False, evenSplitRevenueMinor=1234)  # yesterday, live
    activity(store, second, 40)  # outside the default 30 days
    response = get(api, f"{BASE}/analytics/playbooks")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"], body["timezone"]) == (day(29), day(0), "America/New_York")
    assert (body["currency"], body["costPerExecutionUsd"]) == ("USD", "0.05")
    by_id = {p["playbookId"]: p for p in body["playbooks"]}
    one = by_id[first]
    assert (one["name"], one["executions"], one["completed"], one["failed"]) == (
        "Playbook 0", 3, 3, 1,
    )  # fmt: skip
    assert one["successRate"] == 0.75
    assert (one["deliveries"], one["sent"], one["skipped"]) == (
        4, {"email": 3, "sms": 1}, {"deduped": 3},
    )  # fmt: skip
    assert (one["attributedOrders"], one["attributedRevenue"], one["avgOrderValue"]) == (
        2, "50.00", "25.00",
    )  # fmt: skip
    assert (one["cost"], one["roi"], one["roiPercent"], one["conversionRate"]) == (
        "0.15", 332.3333, 33233.33, 0.5,
    )  # fmt: skip
    assert by_id[second]["executions"] == 1
    assert by_id[second]["evenSplitRevenue"] == "12.34"
    totals = body["totals"]
    for field in ("executions", "completed", "failed", "deliveries", "attributedOrders"):
        assert totals[field] == sum(p[field] for p in body["playbooks"])
    assert totals["skipped"] == {"deduped": 3}
    assert totals["attributedRevenue"] == "50.00"
    assert len(totals["daily"]) == len(one["daily"]) == 30
    assert [p["date"] for p in one["daily"]][-1] == day(0)
    series = {p["date"]: p for p in totals["daily"]}
    assert (series[day(5)]["executions"], series[day(1)]["executions"]) == (2, 1)
    assert series[day(0)]["deliveries"] == 2
    assert series[day(5)]["attributedRevenue"] == "50.00"


def test_one_playbooks_report_and_an_explicit_range(api):
    [playbook_id] = seed_playbooks(api, 1)
    for back in (3, 10, 20):
        activity(api.app.store, playbook_id, back)
    response = get(
        api, f"{BASE}/playbooks/{playbook_id}/analytics", **{"from": day(12), "to": day(2)}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["playbookId"], body["name"], body["executions"]) == (playbook_id, "Playbook 0", 2)
    assert [p["date"] for p in body["daily"]] == [day(n) for n in range(12, 1, -1)]
    assert sum(p["executions"] for p in body["daily"]) == 2


def test_reads_grow_with_playbooks_times_days_never_with_runs(api):
    counted = Reads(api.app.store)
    ids = seed_playbooks(api, 4)

    def reads_for(window_days):
        counted.reads.clear()
        api.app.store = counted
        try:
            response = get(api, f"{BASE}/analytics/playbooks", **{"from": day(window_days - 1)})
        finally:
            api.app.store = counted.inner
        assert response.status_code == 200
        return dict(counted.reads)

    for back in range(1, 20):  # every playbook active on every past day; yesterday stays live
        for playbook_id in ids:
            activity(api.app.store, playbook_id, back, compact=back > 1)
    small = reads_for(10)
    for playbook_id in ids:  # 50 more runs on one day changes nothing
        activity(api.app.store, playbook_id, 5, runs=50)
    assert reads_for(10) == small
    assert EXECUTIONS not in small
    assert DELIVERIES not in small
    # Days 9..3: one `all` doc per playbook. Live days 2..0: every doc of those dates (day 2 is
    # compacted, so its shard and its `all` doc; yesterday one shard; today nothing).
    assert small[STATS] == 7 * 4 + 2 * 4 + 4
    assert small[PLAYBOOKS] == 4  # the names, one batch
    larger = reads_for(19)
    assert larger[STATS] == 16 * 4 + 2 * 4 + 4


def test_another_orgs_playbook_is_404_and_another_org_is_403(api):
    [theirs] = seed_playbooks(api, 1, org="org_b")
    activity(api.app.store, theirs, 2, org="org_b")
    assert get(api, f"{BASE}/playbooks/{theirs}/analytics").status_code == 404
    assert get(api, f"{BASE}/playbooks/nope/analytics").status_code == 404
    assert get(api, "/v1/orgs/org_b/analytics/playbooks").status_code == 403
    mine = get(api, f"{BASE}/analytics/playbooks").get_json()
    assert mine["playbooks"] == []
    assert mine["totals"]["executions"] == 0
    assert get(api, f"{BASE}/analytics/playbooks", role="brand_member").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-13-01"},
        {"from": "yesterday"},
        {"to": "20261124"},
        {"from": "2026-11-2"},
        {"from": "2026-11-24", "to": "2026-11-23"},
        {"from": "2025-01-01", "to": "2026-11-24"},
    ],
)
def test_from_and_to_are_validated(api, query):
    response = get(api, f"{BASE}/analytics/playbooks", **query)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_a_range_of_366_days_and_a_range_after_today_are_accepted(api):
    body = get(api, f"{BASE}/analytics/playbooks", **{"from": "2025-11-24", "to": "2026-11-24"})
    assert len(body.get_json()["totals"]["daily"]) == 366
    ahead = get(api, f"{BASE}/analytics/playbooks", **{"from": "2026-12-01"}).get_json()
    assert (ahead["from"], ahead["to"]) == ("2026-12-01", "2026-12-01")


def test_the_zone_and_currency_fall_back_to_the_organization(api):
    api.app.store.set(ORGANIZATIONS, ORG, {"timezone": "Pacific/Kiritimati", "currency": "cad"})
    body = get(api, f"{BASE}/analytics/playbooks").get_json()
    assert (body["timezone"], body["currency"], body["to"]) == (
        "Pacific/Kiritimati", "CAD", "2026-11-25",  # 12:00 UTC is 02:00 the next day at UTC+14
    )  # fmt: skip


def test_cost_per_execution_is_the_org_setting(api):
    [playbook_id] = seed_playbooks(api, 1)
    activity(api.app.store, playbook_id, 3, runs=4, attributedRevenueMinor=1000)
    patched = api.as_().patch(f"{BASE}/settings", json={"costPerExecutionUsd": "0.25"})
    assert patched.status_code == 200, patched.get_json()
    body = get(api, f"{BASE}/playbooks/{playbook_id}/analytics").get_json()
    assert (body["costPerExecutionUsd"], body["cost"], body["roi"]) == ("0.25", "1.00", 9.0)
    api.as_().patch(f"{BASE}/settings", json={"costPerExecutionUsd": "0"})
    free = get(api, f"{BASE}/playbooks/{playbook_id}/analytics").get_json()
    assert (free["cost"], free["roi"], free["roiPercent"]) == ("0.00", None, None)


def test_the_list_page_shows_the_30_day_figures_from_summaries(api):
    [playbook_id, idle] = seed_playbooks(api, 2)
    for back in (1, 2, 3):
        activity(api.app.store, playbook_id, back, runs=2, failed=1)
    counters.summarise(api.app.store, org_id=ORG, through_date=day(1))
    listed = get(api, f"{BASE}/playbooks").get_json()["playbooks"]
    figures = {p["id"]: p["stats"] for p in listed}
    assert figures[playbook_id]["runs30d"] == 6
    assert figures[playbook_id]["successRate30d"] == 0.6667  # 6 completed, 3 failed
    assert figures[idle]["runs30d"] == 0
    assert figures[idle]["successRate30d"] is None
