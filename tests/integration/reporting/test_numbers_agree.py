"""Every number the dashboard shows equals a recount of the documents (issue #18 item 1).

A mixed day — runs that complete, fail, wait for approval and are approved, rejected or
cancelled, a run the reaper gives up on, a deduped send, runs closed by archiving their playbook,
and a refund of an order attributed days earlier — and then the list page, the analytics
endpoint and a count of the executions, deliveries and attributions made here, independently of
the counters, must agree exactly: during the day, and again after the nightly roll-up. On the
embedded backend and on the official Firestore emulator.
"""

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from playbook_core.domain.collections import ATTRIBUTIONS, DELIVERIES, EXECUTIONS
from playbook_core.domain.envelope import Customer, EventEnvelope, Source
from playbook_core.domain.ids import h
from playbook_core.ports import Where
from playbook_core.service.authoring import playbook_list, playbooks
from playbook_core.service.execution import approvals, reaper, run_control
from playbook_core.service.execution.run_start import Runs
from playbook_core.service.paging import iterate
from playbook_core.service.reporting import analytics, attribution, counters
from tests.integration.execution.conftest import NOW
from tests.integration.execution.conftest import firestore_rig as firestore_rig  # noqa: PLC0414
from tests.integration.execution.conftest import rig as rig  # noqa: PLC0414 - the fixture
from tests.integration.execution.conftest import standins as standins  # noqa: PLC0414
from tests.integration.execution.test_execution_engine import CUSTOMER, INTERNAL, PROMO

ZONE = ZoneInfo("America/New_York")  # the rig's org sets no zone


def _runs(rig):
    return Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock)


def _approved(rig, playbook):
    execution_id = rig.start(playbook, customer=CUSTOMER)
    rig.store.update(EXECUTIONS, execution_id, {"approvedAt": rig.clock.now()})
    return execution_id


def _waiting(rig, playbook, n=0):
    customer = {"id": f"cus_w{n}", "email": f"waiting{n}@example.com"} if n else CUSTOMER
    execution_id = rig.start(playbook, customer=customer)
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "pending_approval"
    return execution_id


def _decide(rig, execution_id, *, approve):
    approvals.decide(
        org_id=rig.org, execution_id=execution_id, approve=approve, reviewer={"uid": "boss"},
        notes=None, runs=_runs(rig),
    )  # fmt: skip


def _order(rig, name, *, order_at, total="80.00", **data):
    transition = {"order.created": "created"}.get(name, name + str(data.get("refundId", "")))
    envelope = EventEnvelope(
        event_id="ord_" + h(rig.org, transition), org_id=rig.org, name=name,
        occurred_at=order_at, received_at=rig.clock.now(),
        source=Source(kind="shopify", ref="shop.example.com"),
        customer=Customer(email=CUSTOMER["email"]),
        data={"orderId": "1001", "orderSource": "shopify", "orderAt": order_at.isoformat(),
              "total": total, "totalMinor": round(Decimal(total) * 100), "currency": "USD",
              **data},
    )  # fmt: skip
    message = SimpleNamespace(message_id="m", attributes={"name": name}, data=envelope.encode())
    return attribution.handle_order_message(message, store=rig.store, clock=rig.clock)


def _roll_up(rig, through):
    """What the 03:00 job does for `through`: the day recounted, then the 30-day summaries."""
    counters.compact_day(rig.store, org_id=rig.org, local_date=through.isoformat())
    counters.summarise(rig.store, org_id=rig.org, through_date=through.isoformat())


def _count_runs_and_sends(rig, in_window, figures):
    mine = [Where("orgId", "==", rig.org)]
    for doc in iterate(rig.store, EXECUTIONS, mine, page_size=500):
        run = doc.data
        if run["dryRun"]:
            continue
        if in_window(run["createdAt"]):
            figures[run["playbookId"]]["runs"] += 1
        if run["status"] in ("completed", "failed") and in_window(run.get("completedAt")):
            figures[run["playbookId"]][run["status"]] += 1
    for doc in iterate(rig.store, DELIVERIES, mine, page_size=500):
        sent = doc.data
        if sent["status"] == "sent" and in_window(sent.get("sentAt")):
            figures[sent["playbookId"]]["deliveries"] += 1
        if sent["status"] == "skipped" and in_window(sent["updatedAt"]):
            figures[sent["playbookId"]]["skipped"] += 1


def _recount(rig, today):
    """The 30 days ending today, counted from the documents alone."""
    first = today - timedelta(days=29)

    def in_window(at):
        return at is not None and first <= at.astimezone(ZONE).date() <= today

    mine = [Where("orgId", "==", rig.org)]
    figures = defaultdict(Counter)
    _count_runs_and_sends(rig, in_window, figures)
    for doc in iterate(rig.store, ATTRIBUTIONS, mine, page_size=500):
        credited = doc.data
        day = credited.get("localDate")
        if credited["status"] == "attributed" and first.isoformat() <= day <= today.isoformat():
            revenue = credited["totalMinor"] - sum((credited.get("refunds") or {}).values())
            figures[credited["lastTouch"]["playbookId"]]["revenue"] += revenue
    return {
        playbook_id: {
            "runs": f["runs"], "deliveries": f["deliveries"], "skipped": f["skipped"],
            "revenue": f"{Decimal(f['revenue']) / 100:.2f}",
            "successRate": (
                round(f["completed"] / (f["completed"] + f["failed"]), 4)
                if f["completed"] + f["failed"] else None
            ),
        }
        for playbook_id, f in figures.items()
    }  # fmt: skip


def _list_page(rig):
    shown = {}
    for status in (None, "archived"):
        page = playbook_list.list_playbooks(
            org_id=rig.org, view="all", status=status, category=None, agent=None, q=None,
            page_size=100, page_token=None, store=rig.store, now=rig.clock.now(),
        )  # fmt: skip
        for item in page["playbooks"]:
            stats = item["stats"]
            shown[item["id"]] = {
                "runs": stats["runs30d"], "deliveries": stats["deliveries30d"],
                "skipped": stats["skipped30d"], "revenue": stats["revenue30d"],
                "successRate": stats["successRate30d"],
            }  # fmt: skip
    return {playbook_id: figures for playbook_id, figures in shown.items() if figures["runs"]}


def _analytics(rig):
    report = analytics.org_analytics(
        org_id=rig.org, date_from=None, date_to=None, store=rig.store, clock=rig.clock
    )
    return {
        p["playbookId"]: {
            "runs": p["executions"], "deliveries": p["deliveries"],
            "skipped": p["skippedTotal"], "revenue": p["attributedRevenue"],
            "successRate": p["successRate"],
        }
        for p in report["playbooks"]
    }  # fmt: skip


def _mixed_day(rig):
    promo, internal, doomed = rig.playbook(PROMO), rig.playbook(INTERNAL), rig.playbook(PROMO)
    # Five days ago: an approved run emails the customer, who orders an hour later.
    rig.clock.current = NOW - timedelta(days=5)
    _approved(rig, promo)
    rig.run_all()
    assert (
        _order(rig, "order.created", order_at=rig.clock.now() + timedelta(hours=1))["outcome"]
        == "attributed"
    )
    today = NOW.astimezone(ZONE).date()
    for back in range(5, 0, -1):  # the nightly roll-ups of the days since
        rig.clock.current = NOW - timedelta(days=back - 1, hours=4)
        _roll_up(rig, today - timedelta(days=back))
    rig.clock.current = NOW

    # Today.
    rig.start(internal)  # completes
    rig.run_all()
    rig.behave("agents", mode="error_4xx", times=1)
    rig.start(internal)  # fails
    rig.run_all()
    stuck = rig.start(internal)  # never moves: the reaper gives up on it
    rig.store.update(EXECUTIONS, stuck, {
        "reaperRecoveries": reaper.MAX_RECOVERIES, "expectedProgressBy": NOW - timedelta(hours=1),
    })  # fmt: skip
    assert reaper.reap(runs=_runs(rig))["failedStuck"] == 1
    rig.run_all()
    _decide(rig, _waiting(rig, promo), approve=True)  # the last send was 5 days ago: sent
    rig.run_all()
    _decide(rig, _waiting(rig, promo, 1), approve=False)
    run_control.cancel_execution(
        org_id=rig.org, execution_id=_waiting(rig, promo, 2), actor="u1", store=rig.store,
        clock=rig.clock,
    )  # fmt: skip
    _approved(rig, promo)  # a second send to the customer today: deduped
    rig.run_all()
    _waiting(rig, doomed, 3)
    playbooks.delete_playbook(
        org_id=rig.org, playbook_id=doomed["id"], confirm=True, actor="u1", store=rig.store,
        clock=rig.clock,
    )  # fmt: skip
    refund = _order(
        rig, "order.refunded", order_at=NOW - timedelta(days=5, hours=-1), refundId="r1",
        refundTotal="20.00",
    )  # fmt: skip
    assert refund["outcome"] == "refunded"
    return today


def _agree(rig, today):
    recounted = _recount(rig, today)
    assert recounted  # the scenario did something
    assert _analytics(rig) == recounted
    assert _list_page(rig) == recounted
    return recounted


def _scenario(rig):
    today = _mixed_day(rig)
    during = _agree(rig, today)
    assert sum(f["runs"] for f in during.values()) >= 8
    assert {f["revenue"] for f in during.values()} >= {"60.00"}  # 80.00 less the 20.00 refund
    assert sum(f["skipped"] for f in during.values()) >= 3
    # The night: today is rolled up, and tomorrow every figure still agrees.
    rig.clock.current = NOW + timedelta(days=1)
    _roll_up(rig, today)
    assert _agree(rig, today + timedelta(days=1)) == during
    return during


def test_list_page_analytics_and_a_recount_agree_on_a_mixed_day(rig):
    assert _scenario(rig)


@pytest.mark.emulator
def test_they_agree_on_firestore_too(firestore_rig):
    assert _scenario(firestore_rig)
