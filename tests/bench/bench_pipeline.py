"""The event pipeline (domain.md §12 P3): webhook acknowledgement, dispatch, store cost per event.

1. Through a private local stack (`python -m emulators up --seed none` on free ports; the official
   emulators when Java and the JARs are present, else the embedded backend), one org with a
   Shopify source and one active 1-step playbook on order.created, registered through the API as
   the system: 50 signed orders/create one at a time (paced: latency without a backlog), then
   2,000 more from 8 threads (burst), 10% of them repeats of earlier X-Shopify-Event-Ids, then
   50/s for 60 s (sustained). Reports ack latency p50/p95/p99 and webhooks/s, waits for dispatch
   to settle, reports executions created (must equal the distinct deliveries: a MISMATCH line
   otherwise) and event (envelope receivedAt) → execution created → first step running →
   completed. The sustained figure counts from each webhook's scheduled send, so a backlog in
   front of the ack is not hidden. CPU ms per delivery by part (each function's process, the
   emulators, router, relay) shows what bounds the rates on this machine.
   Targets: ack p95 < 100 ms, event → first step running p95 < 1 s.
2. In process, through a counting proxy around the store (Firestore emulator, else embedded):
   reads and writes per dispatched event for orgs of 10, 1,000 and 10,000 playbooks with 0, 1
   and 5 matching listeners (they must grow with matched listeners, not with playbooks), and per
   webhook delivery in the handler alone (new and repeated).

Benchmarks report; they never assert on time (architecture.md §6).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators import official
from playbook_core.adapters.clock import SystemClock
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.memory import MemoryBus, MemoryTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.domain.collections import EXECUTIONS, LISTENERS, ORGANIZATIONS, PLAYBOOKS
from playbook_core.domain.documents import new_playbook
from playbook_core.domain.envelope import Customer, EventEnvelope, Source
from playbook_core.domain.loading import load_text
from playbook_core.domain.sync import listener_docs
from playbook_core.domain.webhooks import shopify_event_id, signature
from playbook_core.ports import DocumentStore, Message, QueueConfig, Where
from playbook_core.service.dispatch.dispatcher import dispatch_message
from playbook_core.service.execution.run_start import Runs, StepTarget
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.ingress.sources import register_source
from playbook_core.service.ingress.webhooks import receive_webhook
from playbook_core.service.paging import iterate
from tests.bench import counting, harness, profiling
from tests.bench.profiling import processes

ROOT = Path(__file__).parents[2]
ORDER = ROOT / "tests" / "data" / "webhooks" / "shopify_orders_create.json"
CRON_SECRET = "bench-pipeline-cron-secret"
SHOP = "bench-pipeline.myshopify.com"
SHOP_SECRET = "shpss_bench_pipeline_secret"
TOPIC = "orders/create"
DELIVERIES = 2_000  # the burst (issue #14's table)
REPEATS = 200  # 10% of the deliveries repeat an earlier X-Shopify-Event-Id
SENDERS = 8  # client threads
SUSTAINED_RATE = 50  # webhooks/s, held for SUSTAINED_S: event → first step under steady load
SUSTAINED_S = 60
PROFILED = 400  # a burst sampled by profilers, on its own org (its figures are not kept)
PROFILE_S = 20
WARM_UP = 5  # distinct deliveries before timing (their executions are left out of the figures)
PACED = 50  # then one at a time, PACED_GAP_S apart: latency without a backlog
PACED_GAP_S = 0.2
CUSTOMERS = 50  # distinct buyers among the orders
SETTLE_QUIET_S = 30.0  # no progress for this long: dispatch has settled (or is stuck)
SETTLE_DEADLINE_S = 300.0
PLAYBOOK = """\
name: Bench order notice
agent: craig
triggers: [{id: on_order, type: event, eventName: order.created}]
steps:
  - id: tell_team
    action: notify
    params: {channel: dashboard, to: "role:admin", message: "Order {{ event.data.orderNumber }}"}
"""


def _backend() -> str:
    forced = os.environ.get("PLAYBOOKS_BACKEND")
    if forced in ("emulators", "embedded"):
        return forced
    found = official.installed()
    return "emulators" if found.present else "embedded"


# --- 1. the local stack --------------------------------------------------------------------------


def _runner(command: str, state_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "emulators", command, "--state-dir", str(state_dir)]
    if command == "up":
        args += ["--seed", "none"]
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@contextmanager
def private_stack(state_dir: Path) -> Iterator[dict[str, Any]]:
    """`python -m emulators up --seed none` on free ports in `state_dir`; always `down` after."""
    env = {
        **os.environ,
        "PLAYBOOKS_GATEWAY_PORT": "0",
        "PLAYBOOKS_BACKEND": _backend(),
        "CRON_SECRET": CRON_SECRET,
        "PLAYBOOKS_AUTH_EMULATOR": "off",  # its ~15 s of start-up CPU is not the pipeline's
    }
    started = time.monotonic()
    try:
        up = _runner("up", state_dir, env)
        if up.returncode != 0:
            print(f"\n!!! the local stack did not start\n{up.stdout}{up.stderr}")
            pytest.fail("the local stack did not start")
        state = json.loads((state_dir / "stack.json").read_text())
        print(f"\n[local stack up in {time.monotonic() - started:.1f} s: {state['backend']}]")
        yield {**state, "stateDir": state_dir}
    finally:
        down = _runner("down", state_dir, env)
        if down.returncode != 0:
            print(f"!!! `down` answered {down.returncode}: {down.stdout}{down.stderr}")


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with private_stack(tmp_path_factory.mktemp("bench-stack")) as state:
        yield state


def stack_cpu(stack: dict[str, Any]) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack; each function's process on its own."""
    table = processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)

    def tree(pid: int) -> list[int]:
        return [pid, *(p for child in children.get(pid, []) for p in tree(child))]

    used: Counter[str] = Counter()
    for part, root in stack.get("pids", {}).items():
        for pid in tree(root):
            if pid not in table:
                continue
            cmdline = table[pid][2]
            name = part
            if "--function" in cmdline:
                name = cmdline[cmdline.index("--function") + 1]
            used[name] += table[pid][1]
    return dict(used)


def cpu_row(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    """CPU milliseconds per event by part, between two `stack_cpu` readings, and their total."""
    spent = {name: (after[name] - before.get(name, 0.0)) * 1000 / events for name in after}
    kept = {
        name: round(ms, 1)
        for name, ms in sorted(spent.items(), key=lambda kv: -kv[1])
        if ms >= 0.05
    }
    return {"total_ms_per_event": round(sum(spent.values()), 1), **kept}


def gateway_log(stack: dict[str, Any]) -> list[dict[str, Any]]:
    """The gateway's per-request lines (function, status, durationMs)."""
    path = Path(stack["stateDir"]) / "logs" / "gateway.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    entries = []
    for line in lines:
        if line.startswith("{") and '"gateway request"' in line:
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
    return entries


def open_store(stack: dict[str, Any]) -> DocumentStore:
    """The stack's documents, read from this process (the emulator, or the stack's SQLite file)."""
    if stack["backend"] == "emulators":
        from playbook_core.adapters.firestore import FirestoreStore

        os.environ["FIRESTORE_EMULATOR_HOST"] = stack["firestore"]  # restored after the bench
        return FirestoreStore(stack["project"])
    return EmbeddedStore(str(Path(stack["stateDir"]) / "playbooks.sqlite3"))


def _count(store: DocumentStore, where: list[Where]) -> int:
    client = getattr(store, "client", None)
    if client is not None:  # Firestore: an aggregation, so polling stays cheap for the stack
        from google.cloud.firestore_v1.base_query import FieldFilter

        query: Any = client().collection(EXECUTIONS)
        for clause in where:
            query = query.where(filter=FieldFilter(clause.field, clause.op, clause.value))
        return int(query.count().get()[0][0].value)
    return len(all_executions(store, where))


def all_executions(store: DocumentStore, where: list[Where]) -> list[dict[str, Any]]:
    return [doc.data for doc in iterate(store, EXECUTIONS, where, page_size=500)]


class Deliveries:
    """Signed orders/create bodies with their headers; repeats reuse an earlier delivery whole."""

    def __init__(self, run: str, shop: str = SHOP) -> None:
        self.template = json.loads(ORDER.read_text())
        self.run, self.shop = run, shop
        self.keys: list[str] = []  # distinct X-Shopify-Event-Id values, in first-sent order
        self._bodies: dict[str, bytes] = {}

    def new(self) -> str:
        n = len(self.keys)
        key = f"{self.run}-{n:05d}"
        order = copy.deepcopy(self.template)
        email = f"buyer{n % CUSTOMERS}@bench.example"
        order.update(id=9_000_000_000 + n, order_number=10_000 + n, name=f"#B{n}", email=email)
        order.update(contact_email=email)
        order["customer"].update(id=7_000_000 + n % CUSTOMERS, email=email)
        self.keys.append(key)
        self._bodies[key] = json.dumps(order).encode()
        return key

    def request(self, key: str) -> tuple[bytes, dict[str, str]]:
        body = self._bodies[key]
        headers = {
            "X-Shopify-Hmac-Sha256": signature(SHOP_SECRET, body),
            "X-Shopify-Topic": TOPIC,
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-Event-Id": key,
            "X-Shopify-Webhook-Id": f"wh-{key}",
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "Content-Type": "application/json",
        }
        return body, headers

    def event_id(self, key: str) -> str:
        return shopify_event_id(self.shop, TOPIC, key)


def _plan(deliveries: Deliveries, rng: random.Random) -> list[str]:
    """1,000 keys in send order: 900 new ones and 100 repeats of keys sent earlier."""
    repeats = set(rng.sample(range(20, DELIVERIES), REPEATS))
    order: list[str] = []
    for index in range(DELIVERIES):
        order.append(rng.choice(order) if index in repeats else deliveries.new())
    return order


def setup_org(
    gateway: str, org_id: str, playbook: str, settings: dict[str, Any] | None = None,
    shop: str = SHOP,
) -> str:  # fmt: skip
    """Through the API as the system: the Shopify source, settings, one active playbook."""
    headers = {"X-Cron-Secret": CRON_SECRET}
    with httpx.Client(
        base_url=f"{gateway}/playbooks_api/v1", headers=headers, timeout=30, trust_env=False
    ) as api:
        source = {"platform": "shopify", "shopDomain": shop, "secret": SHOP_SECRET}
        api.post(f"/orgs/{org_id}/webhook-sources", json=source).raise_for_status()
        if settings:
            api.patch(f"/orgs/{org_id}/settings", json=settings).raise_for_status()
        return active_playbook(api, org_id, playbook)


def active_playbook(api: httpx.Client, org_id: str, playbook: str) -> str:
    """Create the playbook through the API client given, and turn it on; its id."""
    created = api.post(
        f"/orgs/{org_id}/playbooks",
        content=playbook,
        headers={"Content-Type": "application/yaml"},
    )
    created.raise_for_status()
    playbook_id = str(created.json()["id"])
    toggled = api.post(f"/orgs/{org_id}/playbooks/{playbook_id}:toggle", json={"enabled": True})
    toggled.raise_for_status()
    return playbook_id


def post_all(gateway: str, deliveries: Deliveries, keys: list[str]) -> dict[str, Any]:
    """Post the keys in order from SENDERS threads; per-request latency, status and answer."""
    url = f"{gateway}/webhook_shopify/"
    next_index = itertools.count()
    lock = threading.Lock()
    results: list[tuple[int, float, int, dict[str, Any]]] = []

    def sender() -> None:
        with httpx.Client(timeout=60, trust_env=False) as http:
            while True:
                with lock:
                    index = next(next_index)
                if index >= len(keys):
                    return
                body, headers = deliveries.request(keys[index])
                started = time.perf_counter()
                response = http.post(url, content=body, headers=headers)
                took = time.perf_counter() - started
                try:
                    answer = response.json()
                except ValueError:
                    answer = {"raw": response.text[:200]}
                with lock:
                    results.append((index, took, response.status_code, answer))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for future in [pool.submit(sender) for _ in range(SENDERS)]:
            future.result()
    wall = time.perf_counter() - started
    results.sort()
    return {
        "latencies": [took for _, took, _, _ in results],
        "statuses": Counter(status for _, _, status, _ in results),
        "duplicates": sum(1 for *_, answer in results if answer.get("duplicate")),
        "wall_s": wall,
    }


def settle(store: DocumentStore, org_id: str, expected: int) -> dict[str, Any]:
    """Poll until every execution of the org is finished, or nothing moves for a while."""
    org = [Where("orgId", "==", org_id)]
    finished = [*org, Where("status", "in", ["completed", "failed"])]
    started = last_change = time.monotonic()
    seen = (-1, -1)
    while True:
        now = (_count(store, org), _count(store, finished))
        if now != seen:
            seen, last_change = now, time.monotonic()
        if now[0] >= expected and now[1] == now[0]:
            break
        if time.monotonic() - last_change > SETTLE_QUIET_S:
            break
        if time.monotonic() - started > SETTLE_DEADLINE_S:
            break
        time.sleep(1.0)
    return {"created": seen[0], "finished": seen[1], "settle_s": time.monotonic() - started}


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None


def _latencies(executions: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds from the webhook's receipt (the envelope's receivedAt) to each later stamp."""
    spans: dict[str, list[float]] = {"created": [], "started": [], "completed": []}
    for execution in executions:
        received = as_datetime((execution.get("event") or {}).get("receivedAt"))
        if received is None:
            continue
        for name, field in (
            ("created", "createdAt"),
            ("started", "startedAt"),
            ("completed", "completedAt"),
        ):
            stamp = as_datetime(execution.get(field))
            if stamp is not None:
                spans[name].append((stamp - received).total_seconds())
    return spans


def _from_due(executions: list[dict[str, Any]], due: dict[str, float]) -> list[float]:
    """Seconds from each webhook's scheduled send to its first step running."""
    spans = []
    for execution in executions:
        started = as_datetime(execution.get("startedAt"))
        at = due.get(execution["trigger"]["eventId"])
        if started is not None and at is not None:
            spans.append(started.timestamp() - at)
    return spans


def executions_for(store: DocumentStore, org_id: str, event_ids: set[str]) -> list[dict[str, Any]]:
    return [
        e
        for e in all_executions(store, [Where("orgId", "==", org_id)])
        if (e.get("trigger") or {}).get("eventId") in event_ids
    ]


def _post_paced(gateway: str, deliveries: Deliveries, keys: list[str]) -> list[float]:
    """One delivery at a time, PACED_GAP_S apart; the acknowledgement latencies."""
    acks = []
    with httpx.Client(timeout=60, trust_env=False) as http:
        for key in keys:
            body, headers = deliveries.request(key)
            started = time.perf_counter()
            http.post(f"{gateway}/webhook_shopify/", content=body, headers=headers)
            acks.append(time.perf_counter() - started)
            time.sleep(PACED_GAP_S)
    return acks


def _post_sustained(gateway: str, deliveries: Deliveries, keys: list[str]) -> dict[str, Any]:
    """Each key at its own moment, SUSTAINED_RATE a second, from SENDERS threads.

    `due`: each key's scheduled send time (epoch seconds). A slow ack holds its sender thread, so
    later posts go out late; counting from `due` keeps that wait in the figures.
    """
    url = f"{gateway}/webhook_shopify/"
    begin, begin_wall = time.perf_counter(), time.time()
    late: list[float] = []  # how far behind schedule a post went out (the client's own lag)

    def send(index: int) -> int:
        due = begin + index / SUSTAINED_RATE
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late.append(-wait)
        body, headers = deliveries.request(keys[index])
        with httpx.Client(timeout=60, trust_env=False) as http:
            return http.post(url, content=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        statuses = Counter(pool.map(send, range(len(keys))))
    return {
        "statuses": statuses, "wall_s": time.perf_counter() - begin,
        "due": {key: begin_wall + index / SUSTAINED_RATE for index, key in enumerate(keys)},
        "late_p95_s": sorted(late)[int(0.95 * len(late))] if late else 0.0,
    }  # fmt: skip


def _sustained(
    stack: dict[str, Any], deliveries: Deliveries, keys: list[str], store: DocumentStore, *,
    org_id: str, expected: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:  # fmt: skip
    """Post at SUSTAINED_RATE, settle; what was sent, the settling, and CPU ms per delivery."""
    cpu_before = stack_cpu(stack)
    sent = _post_sustained(stack["gateway"], deliveries, keys)
    settled = settle(store, org_id, expected)
    return sent, settled, cpu_row(cpu_before, stack_cpu(stack), len(keys))


def _latency_rows(
    paced_acks: list[float], paced: list[dict[str, Any]], sent: dict[str, Any],
    burst: list[dict[str, Any]], logged: list[dict[str, Any]],
) -> dict[str, dict[str, float]]:  # fmt: skip
    rows = {"paced ack (1 at a time)": harness.summarise(paced_acks)}
    paced_spans = _latencies(paced)
    if paced_spans["started"]:
        rows["paced event → first step"] = harness.summarise(paced_spans["started"])
    rows[f"burst ack ({SENDERS} threads)"] = harness.summarise(sent["latencies"])
    served = [e["durationMs"] / 1000 for e in logged if e.get("function") == "webhook_shopify"]
    if served:
        rows["burst ack, server (log)"] = harness.summarise(served)
    spans = _latencies(burst)
    labels = {
        "created": "burst event → created",
        "started": "burst event → first step",
        "completed": "burst event → completed",
    }
    rows |= {label: harness.summarise(spans[name]) for name, label in labels.items() if spans[name]}
    for row in rows.values():
        row["per_second"] = float("nan")  # latencies; the two rates are set below
    rows[f"burst ack ({SENDERS} threads)"]["per_second"] = len(sent["latencies"]) / sent["wall_s"]
    started = [as_datetime(e.get("startedAt")) for e in burst if e.get("startedAt")]
    if started:
        first = min(as_datetime(e["event"]["receivedAt"]) for e in burst)  # type: ignore[type-var]
        window = (max(started) - first).total_seconds()  # type: ignore[operator,type-var]
        rows["burst event → first step"]["per_second"] = len(started) / max(window, 1e-9)
    return rows


def bench_webhooks_through_the_local_stack(local_stack: dict[str, Any]) -> None:
    gateway = local_stack["gateway"]
    org_id = f"org_bench_pipe_{uuid.uuid4().hex[:8]}"
    setup_org(gateway, org_id, PLAYBOOK)
    deliveries = Deliveries(run=uuid.uuid4().hex[:10])
    store = open_store(local_stack)
    store.set(ORGANIZATIONS, org_id, {"name": org_id})  # dispatch requires a registered org
    load_before = os.getloadavg()[0]

    warm = [deliveries.new() for _ in range(WARM_UP)]
    post_all(gateway, deliveries, warm)
    settle(store, org_id, WARM_UP)

    paced_keys = [deliveries.new() for _ in range(PACED)]
    paced_acks = _post_paced(gateway, deliveries, paced_keys)
    settle(store, org_id, WARM_UP + PACED)
    paced = executions_for(store, org_id, {deliveries.event_id(key) for key in paced_keys})

    plan = _plan(deliveries, random.Random(20261124))  # noqa: S311 - a reproducible send order
    distinct = set(plan)
    logged_before = len(gateway_log(local_stack))
    cpu_before = stack_cpu(local_stack)
    sent = post_all(gateway, deliveries, plan)
    settled = settle(store, org_id, WARM_UP + PACED + len(distinct))
    burst_cpu = cpu_row(cpu_before, stack_cpu(local_stack), len(distinct))
    logged = gateway_log(local_stack)[logged_before:]
    burst = executions_for(store, org_id, {deliveries.event_id(key) for key in distinct})

    steady_keys = [deliveries.new() for _ in range(SUSTAINED_RATE * SUSTAINED_S)]
    steady_sent, steady_settled, steady_cpu = _sustained(
        local_stack, deliveries, steady_keys, store, org_id=org_id,
        expected=WARM_UP + PACED + len(distinct) + len(steady_keys),
    )  # fmt: skip
    steady = executions_for(store, org_id, {deliveries.event_id(key) for key in steady_keys})

    rows = _latency_rows(paced_acks, paced, sent, burst, logged)
    steady_started = _latencies(steady)["started"]
    if steady_started:
        rows[f"sustained {SUSTAINED_RATE}/s: received → first step"] = {
            **harness.summarise(steady_started),
            "per_second": len(steady_keys) / steady_sent["wall_s"],
        }
        due = {deliveries.event_id(key): at for key, at in steady_sent["due"].items()}
        rows[f"sustained {SUSTAINED_RATE}/s: due → first step"] = {
            **harness.summarise(_from_due(steady, due)),
            "per_second": len(steady_keys) / steady_sent["wall_s"],
        }
    per_event = Counter(e["trigger"]["eventId"] for e in [*paced, *burst, *steady])
    statuses = Counter(str(e.get("status")) for e in [*paced, *burst, *steady])
    expected = len(paced_keys) + len(distinct) + len(steady_keys)
    rows["correctness"] = {
        "deliveries": float(len(paced_keys) + len(plan) + len(steady_keys)),
        "distinct": float(expected),
        "acked_200": float(sent["statuses"].get(200, 0)),
        "answered_duplicate": float(sent["duplicates"]),
        "executions": float(sum(per_event.values())),
        "executions_per_event_max": float(max(per_event.values(), default=0)),
        "completed": float(statuses.get("completed", 0)),
        "settle_s": settled["settle_s"],
        "sustained_settle_s": steady_settled["settle_s"],
        "sustained_acked_200": float(steady_sent["statuses"].get(200, 0)),
        "sustained_client_late_p95_s": steady_sent["late_p95_s"],
    }
    notes = (
        f"{PACED} signed orders/create one every {PACED_GAP_S * 1000:.0f} ms (paced), then "
        f"{len(plan):,} ({REPEATS} repeats of earlier event ids) from {SENDERS} threads "
        f"(burst), then {SUSTAINED_RATE}/s for {SUSTAINED_S} s (sustained) "
        f"→ {gateway}/webhook_shopify on the {local_stack['backend']} stack; "
        "1-step playbook (notify dashboard); targets ack p95 < 100 ms, event → first step "
        "running p95 < 1 s; per_second: webhooks/s (burst ack), first steps started/s; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    # Where the CPU went per distinct delivery (ack, dispatch, the step, the emulators): on this
    # machine's cores, cores × 1,000 ms / the total is the most events/s the stack can hold.
    rows["burst CPU ms per delivery"] = burst_cpu
    rows["sustained CPU ms per delivery"] = steady_cpu
    harness.report("pipeline_webhooks", rows, notes=notes)
    for label in ("burst", "sustained"):
        print(
            f"{label} CPU ms per distinct delivery, by part: {rows[label + ' CPU ms per delivery']}"
        )
    # The webhook's own moment is when it was due to be sent, not when the stack got round to it.
    sustained = rows.get(f"sustained {SUSTAINED_RATE}/s: due → first step", {})
    harness.summary(
        ack_p95_ms_paced=rows["paced ack (1 at a time)"]["p95_ms"],
        burst_webhooks_per_s=rows[f"burst ack ({SENDERS} threads)"]["per_second"],
        burst_ack_p95_ms=rows[f"burst ack ({SENDERS} threads)"]["p95_ms"],
        sustained_event_to_first_step_p95_ms=sustained.get("p95_ms"),
    )
    requests = Counter(f"{e.get('function')} {e.get('status')}" for e in logged)
    print(
        f"deliveries {PACED} paced + {len(plan):,} burst, distinct {expected:,}, burst HTTP "
        f"{dict(sent['statuses'])}, answered duplicate {sent['duplicates']}, executions "
        f"{sum(per_event.values()):,} ({dict(statuses)}), settled {settled['settle_s']:.1f} s "
        "after the last ack"
    )
    print(
        "gateway requests during the burst: "
        + ", ".join(f"{k} ×{v}" for k, v in sorted(requests.items()))
    )
    if sum(per_event.values()) != expected or max(per_event.values(), default=0) > 1:
        print(
            f"!!! MISMATCH: {expected:,} distinct deliveries but {sum(per_event.values()):,} "
            f"executions (max {max(per_event.values(), default=0)} per event)"
        )
    else:
        print("executions: exactly one per distinct delivery, none lost")


def bench_where_the_stack_spends_its_cpu(local_stack: dict[str, Any]) -> None:
    """A burst sampled by profilers (its latencies are not kept): the CPU behind the rows above."""
    org_id, shop = f"org_bench_prof_{uuid.uuid4().hex[:8]}", "bench-profile.myshopify.com"
    setup_org(local_stack["gateway"], org_id, PLAYBOOK, shop=shop)
    store = open_store(local_stack)
    store.set(ORGANIZATIONS, org_id, {"name": org_id})
    deliveries = Deliveries(run=uuid.uuid4().hex[:10], shop=shop)
    keys = [deliveries.new() for _ in range(PROFILED)]
    with profiling.profiled(local_stack, PROFILE_S) as profile:
        sent = post_all(local_stack["gateway"], deliveries, keys)
        settled = settle(store, org_id, len(keys))
    profile["burst"] = {"statuses": dict(sent["statuses"]), **settled}
    harness.OUT.mkdir(parents=True, exist_ok=True)
    (harness.OUT / "pipeline_profile.json").write_text(json.dumps(profile, indent=2) + "\n")
    print(
        f"\n== pipeline_profile ==  {PROFILED} deliveries, sampled for the first {PROFILE_S} s; "
        f"HTTP {dict(sent['statuses'])}, executions {settled['created']} created, "
        f"{settled['finished']} finished"
    )
    if sent["statuses"].get(200, 0) != len(keys) or settled["finished"] != len(keys):
        print("!!! the profiled burst did not run whole: the profile is not of the pipeline")
    profiling.print_profile(profile)


# --- 2. store operations per dispatched event ----------------------------------------------------

SIZES = (10, 1_000, 10_000)
EVENTS = {"order.cancelled": 0, "order.refunded": 1, "order.created": 5}  # name → listeners
OTHER_EVENTS = (
    "customer.signup", "checkout.started", "inventory.low_stock", "customer.updated",
    "cart.created", "product.updated",
)  # fmt: skip
SAMPLES = 20  # measured events per (org, event)
WEBHOOK_SAMPLES = 55  # handler-only deliveries, the first WEBHOOK_WARM_UP not measured
WEBHOOK_WARM_UP = 5
BATCH = 500
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LISTENING = """\
name: Listens to {event}
agent: craig
triggers: [{{id: t1, type: event, eventName: {event}}}]
steps:
  - id: tell_team
    action: notify
    params: {{channel: dashboard, to: "role:admin", message: "{event} happened"}}
"""


def _definitions() -> dict[str, Any]:
    names = [*EVENTS, *OTHER_EVENTS]
    return {name: load_text(LISTENING.format(event=name)).definition for name in names}


def _org_documents(org_id: str, size: int, definitions: dict[str, Any]) -> Iterator[tuple]:
    """(collection, id, data): 5 order.created listeners (+1 paused), 1 order.refunded, the rest
    spread over six other events; and the org itself, which dispatch requires."""
    yield ORGANIZATIONS, org_id, {"name": org_id}
    plan = ["order.created"] * 5 + ["order.refunded"]
    plan += [OTHER_EVENTS[n % len(OTHER_EVENTS)] for n in range(size - len(plan) - 1)]
    plan.append("order.created")  # paused: the query must not return it
    for n, event_name in enumerate(plan):
        active = n != len(plan) - 1
        playbook_id = f"pb_{org_id}_{n:05d}"
        definition = definitions[event_name]
        document = new_playbook(
            playbook_id=playbook_id, org_id=org_id, definition=definition,
            status="active" if active else "paused", source={"kind": "user"}, actor="bench",
            now=NOW,
        )  # fmt: skip
        yield PLAYBOOKS, playbook_id, document
        listeners = listener_docs(
            org_id=org_id, playbook_id=playbook_id, definition=definition, active=active, now=NOW
        )
        for listener, data in listeners.items():
            yield LISTENERS, listener, data


def _seed(store: DocumentStore, writes: list[tuple]) -> float:
    chunks = [writes[i : i + BATCH] for i in range(0, len(writes), BATCH)]
    started = time.perf_counter()
    client = getattr(store, "client", None)
    if client is not None:  # Firestore: batched writes, four in flight

        def commit(chunk: list[tuple]) -> None:
            batch = client().batch()
            for collection, doc_id, data in chunk:
                batch.set(client().collection(collection).document(doc_id), data)
            batch.commit()

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(commit, chunks))
    else:
        for chunk in chunks:

            def work(tx: Any, chunk: list[tuple] = chunk) -> None:
                for collection, doc_id, data in chunk:
                    tx.set(collection, doc_id, data)

            store.transaction(work)
    return time.perf_counter() - started


def _message(org_id: str, name: str, n: int) -> Message:
    envelope = EventEnvelope(
        event_id=f"shp_bench_{org_id}_{name}_{n}",
        org_id=org_id,
        name=name,
        occurred_at=datetime.now(UTC),
        received_at=datetime.now(UTC),
        source=Source(kind="shopify", ref="bench.myshopify.com", topic="orders/create"),
        customer=Customer(email="buyer@bench.example", external_id="7001"),
        data={"orderId": f"o{n}", "orderNumber": f"#{n}", "totalMinor": 4200, "currency": "USD"},
    )
    return Message(uuid.uuid4().hex, envelope.encode(), envelope.attributes())


def bench_store_operations_per_dispatched_event(measured_store: tuple[str, Any]) -> None:
    kind, inner = measured_store
    run = uuid.uuid4().hex[:6]
    orgs = {f"org_bench_{run}_{size}": size for size in SIZES}
    definitions = _definitions()
    writes = [w for org, size in orgs.items() for w in _org_documents(org, size, definitions)]
    seeded_in = _seed(inner, writes)
    store = counting.CountingStore(inner)
    queue = MemoryTaskQueue()
    queue.create_queue(QueueConfig("playbook-steps"))
    target = StepTarget(queue="playbook-steps", url="http://127.0.0.1:9/execute_step/")
    clock = SystemClock()
    rows: dict[str, dict[str, float]] = {}
    details: dict[str, Counter[str]] = {}
    for org_id, size in orgs.items():
        for name, listeners in EVENTS.items():
            for n in range(2):  # warm-up: the first one creates the customer
                dispatch_message(
                    _message(org_id, name, -1 - n), runs=Runs(store=store, queue=queue, target=target, clock=clock),

                )  # fmt: skip
            samples: list[Any] = []
            durations: list[float] = []
            created: list[int] = []
            for n in range(SAMPLES):
                message = _message(org_id, name, n)
                with store.measure() as counts:
                    started = time.perf_counter()
                    result = dispatch_message(
                        message,
                        runs=Runs(store=store, queue=queue, target=target, clock=clock),
                    )
                    durations.append(time.perf_counter() - started)
                samples.append(counts)
                created.append(
                    sum(1 for m in result["matches"] if m["outcome"] == "execution_created")
                )
            row = harness.summarise(durations)
            row.update(
                reads_per_event=sum(c.reads for c in samples) / SAMPLES,
                writes_per_event=sum(c.writes for c in samples) / SAMPLES,
                queries_per_event=sum(c.queries for c in samples) / SAMPLES,
                store_ms_per_event=sum(c.store_s for c in samples) * 1000 / SAMPLES,
                matched_listeners=float(listeners),
                executions_per_event=sum(created) / SAMPLES,
                playbooks=float(size),
            )
            case = f"{size:>6,} pb, {listeners} matched"
            rows[case] = row
            details[case] = sum((c.by_collection for c in samples), Counter())
    notes = (
        f"dispatch_message in process on the {kind} through a counting DocumentStore proxy; "
        f"{SAMPLES} order events per case after 2 warm-ups; seeded {len(writes):,} playbooks + "
        f"listeners in {seeded_in:.1f} s; reads/writes must follow matched listeners, not playbooks"
    )
    harness.report("pipeline_dispatch_store_ops", rows, notes=notes)
    columns = ("reads/event", "writes/event", "queries", "executions", "store ms")
    print(f"{'case':<28}" + "".join(f"{c:>14}" for c in columns))
    for case, f in rows.items():
        cells = (f["reads_per_event"], f["writes_per_event"], f["queries_per_event"])
        cells += (f["executions_per_event"], f["store_ms_per_event"])
        print(f"{case:<28}" + "".join(f"{cell:>14.2f}" for cell in cells))
    for case, by_collection in details.items():
        if case.startswith("10,000"):
            shown = ", ".join(f"{k} {v / SAMPLES:g}" for k, v in sorted(by_collection.items()))
            print(f"  {case}: {shown}")


def bench_store_operations_per_webhook(measured_store: tuple[str, Any]) -> None:
    """The webhook handler alone (receive_webhook, in process): its store cost per delivery."""
    kind, inner = measured_store
    store = counting.CountingStore(inner)
    clock = SystemClock()
    secrets = StoreSecrets(store)
    org_id = f"org_bench_hook_{uuid.uuid4().hex[:6]}"
    register_source(
        org_id=org_id, platform="shopify", address=SHOP, secret=SHOP_SECRET,
        low_stock_threshold=None, store=store, secrets=secrets, clock=clock,
    )  # fmt: skip
    deliveries = Deliveries(run=uuid.uuid4().hex[:10])
    bus = MemoryBus()
    publishing = Publishing(store=store, bus=bus, topic="playbook-events", clock=clock)
    samples: dict[str, list[Any]] = {"new delivery": [], "repeated delivery": []}
    durations: dict[str, list[float]] = {name: [] for name in samples}
    keys = [deliveries.new() for _ in range(WEBHOOK_SAMPLES)]
    for name, batch in (("new delivery", keys), ("repeated delivery", keys)):
        for key in batch:
            body, headers = deliveries.request(key)
            with store.measure() as counts:
                started = time.perf_counter()
                status, _ = receive_webhook(
                    "shopify", headers=headers, body=body, remote_ip="127.0.0.1",
                    query_org_id=None, publishing=publishing, secrets=secrets,
                    fallback_secret=None,
                )  # fmt: skip
                durations[name].append(time.perf_counter() - started)
            assert status == 200, f"the handler answered {status}"
            samples[name].append(counts)
    rows = {}
    for name, counts in samples.items():
        row = harness.summarise(durations[name][WEBHOOK_WARM_UP:])
        measured = counts[WEBHOOK_WARM_UP:]
        row.update(
            calls=sum(c.calls for c in measured) / len(measured),
            reads=sum(c.reads for c in measured) / len(measured),
            writes=sum(c.writes for c in measured) / len(measured),
            store_ms=sum(c.store_s for c in measured) * 1000 / len(measured),
            per_second=float("nan"),
        )
        rows[name] = row
    notes = (
        f"receive_webhook in process on the {kind} through a counting proxy, in-memory bus "
        f"(no publish latency); {WEBHOOK_SAMPLES - WEBHOOK_WARM_UP} signed orders/create, then "
        "the same again as repeats (nothing dispatches them here, so each publishes again); the "
        "stack's ack adds the publish, the gateway and whatever else the machine is doing"
    )
    harness.report("pipeline_webhook_handler", rows, notes=notes)
    # Sequential round trips of a new delivery's ack: its store calls, then the one publish.
    harness.summary(ack_store_roundtrips=rows["new delivery"]["calls"] + 1)
    print(f"{'store operations':<28}{'calls':>14}{'reads':>14}{'writes':>14}{'store ms':>14}")
    for name, row in rows.items():
        cells = (row["calls"], row["reads"], row["writes"], row["store_ms"])
        print(f"{name:<28}" + "".join(f"{cell:>14.2f}" for cell in cells))
