"""Fair dispatch (issue #14): another org's first step while one org bursts 10,000 runs.

On a private local stack of the emulators backend (its Cloud Tasks emulator honours each queue's
maxConcurrentDispatches), this process plays a dispatching instance: production `start_run`, with
the stack's Firestore and Cloud Tasks, starts BURST runs of org A's 1-step playbook from THREADS
threads. While they start, it starts one run of org B (on another shard) and one of org C (on A's
shard) every PROBE_GAP_S, and reads how long each waited for its first step (createdAt →
startedAt). Three times in one run: one unsharded, unpaced queue (before issue #14), shards
without pacing, then sharded and paced as deployed; every queue is purged between phases.
Reports; never asserts on time.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from emulators import wiring
from emulators.stack import REGION
from playbook_core.adapters.clock import SystemClock
from playbook_core.adapters.cloud_tasks import CloudTasksQueue
from playbook_core.domain.collections import EXECUTIONS, ORGANIZATIONS, PLAYBOOKS
from playbook_core.domain.fairness import shard_of
from playbook_core.ports import DocumentStore, Where
from playbook_core.runtime.manifest import load_manifest
from playbook_core.service.execution.pacing import OrgPacer
from playbook_core.service.execution.run_start import Runs, StepTarget, start_run
from tests.bench import bench_pipeline as pipeline
from tests.bench import harness

BURST = 10_000  # org A's runs (issue #14's table)
THREADS = 8
PROBE_GAP_S = 2.0
PROBES = 15  # per quiet org and phase
FIRST_STEP_WAIT_S = 60.0  # a probe still waiting after this is reported as waiting this long
PACE = 20.0  # Settings.org_run_starts_per_second's default
PLAYBOOK = """\
name: Bench fair notice
agent: craig
triggers: [{id: by_hand, type: manual}]
steps:
  - id: tell_team
    action: notify
    params: {channel: dashboard, to: "role:admin", message: "Run {{ execution.id }}"}
"""


def _orgs(shards: int) -> dict[str, str]:
    """A (the burst), B (another shard) and C (A's shard), unique to this run."""
    run = uuid.uuid4().hex[:8]
    burst = f"org_fair_a_{run}"
    home = shard_of(burst, shards)
    names = (f"org_fair_{run}_{n}" for n in range(10_000))
    other = next(n for n in names if shard_of(n, shards) != home)
    same = next(n for n in names if shard_of(n, shards) == home)
    return {"A": burst, "B": other, "C": same}


def _playbook(gateway: str, org_id: str) -> str:
    with httpx.Client(
        base_url=f"{gateway}/playbooks_api/v1",
        headers={"X-Cron-Secret": pipeline.CRON_SECRET},
        timeout=30,
        trust_env=False,
    ) as api:
        return pipeline.active_playbook(api, org_id, PLAYBOOK)


def _starter(runs: Runs, playbook: dict[str, Any]) -> Callable[[str], str]:
    def start(execution_id: str) -> str:
        start_run(
            runs=runs, execution_id=execution_id, playbook=playbook,
            trigger={"type": "manual", "triggerId": "by_hand"}, customer=None, event=None,
            causation=None, user_id="bench", dry_run=False,
        )  # fmt: skip
        return execution_id

    return start


def _first_step_waits(store: DocumentStore, ids: list[str]) -> tuple[list[float], int]:
    """Seconds from createdAt to startedAt per run; runs still waiting count FIRST_STEP_WAIT_S."""
    waits: dict[str, float] = {}
    deadline = time.monotonic() + FIRST_STEP_WAIT_S
    while len(waits) < len(ids) and time.monotonic() < deadline:
        for execution_id in ids:
            if execution_id in waits:
                continue
            execution = store.get(EXECUTIONS, execution_id) or {}
            created = pipeline.as_datetime(execution.get("createdAt"))
            started = pipeline.as_datetime(execution.get("startedAt"))
            if created is not None and started is not None:
                waits[execution_id] = (started - created).total_seconds()
        time.sleep(0.5)
    waiting = len(ids) - len(waits)
    return [*waits.values(), *[FIRST_STEP_WAIT_S] * waiting], waiting


def _phase(
    label: str,
    starters: dict[str, Callable[[str], str]],
    store: DocumentStore,
    burst_org: str,
) -> dict[str, Any]:
    created = 0
    lock = threading.Lock()
    done = threading.Event()
    probes: dict[str, list[str]] = {"B": [], "C": []}

    def burst(n: int) -> None:
        nonlocal created
        starters["A"](f"fair_{label}_a_{n}")
        with lock:
            created += 1

    def probe() -> None:
        for n in range(PROBES):
            if done.is_set() and n >= 5:
                return
            for org, started in probes.items():
                started.append(starters[org](f"fair_{label}_{org.lower()}_{n}"))
            time.sleep(PROBE_GAP_S)

    began = time.monotonic()
    prober = threading.Thread(target=probe)
    with ThreadPoolExecutor(THREADS) as pool:
        prober.start()
        list(pool.map(burst, range(BURST)))
    start_s = time.monotonic() - began
    done.set()
    prober.join()
    row: dict[str, Any] = {"burst_start_s": start_s, "burst_created": created}
    for org, ids in probes.items():
        waits, waiting = _first_step_waits(store, ids)
        row[org] = {**harness.summarise(waits), "runs": len(ids), "still_waiting": waiting}
    row["burst_completed"] = pipeline._count(
        store, [Where("orgId", "==", burst_org), Where("status", "==", "completed")]
    )
    return row


def _purge(queue: CloudTasksQueue, names: list[str]) -> None:
    for name in names:
        queue.client().purge_queue(name=queue.queue_path(name))


def bench_another_orgs_first_step_during_a_burst(tmp_path: Path) -> None:
    if pipeline._backend() != "emulators":
        print("\nnot measured: fair dispatch needs the emulators backend (its Cloud Tasks)")
        return
    with pipeline.private_stack(tmp_path / "stack") as stack:
        gateway = stack["gateway"]
        manifest = load_manifest()
        steps = manifest.steps_queue()
        orgs = _orgs(steps.shards)
        store = pipeline.open_store(stack)
        playbooks = {}
        for key, org_id in orgs.items():
            store.set(ORGANIZATIONS, org_id, {"name": org_id})
            playbooks[key] = store.get(PLAYBOOKS, _playbook(gateway, org_id))
        queue = CloudTasksQueue(
            stack["project"], REGION, emulator_host=stack["tasks"],
            service_account_email=wiring.invoker("cloud_tasks"), audience_base=gateway,
        )  # fmt: skip
        url = f"{gateway}/execute_step/"
        phases = {
            "before (one queue, no pacing)": StepTarget(steps.name, url),
            f"shards alone ({steps.shards}, no pacing)": StepTarget(
                steps.name, url, shards=steps.shards
            ),
            f"after ({steps.shards} shards, {PACE:.0f} starts/s per org)": StepTarget(
                steps.name, url, shards=steps.shards, pacer=OrgPacer(PACE)
            ),
        }
        load_before = os.getloadavg()[0]
        results: dict[str, Any] = {}
        for n, (label, target) in enumerate(phases.items()):
            runs = Runs(store=store, queue=queue, target=target, clock=SystemClock())
            starters = {key: _starter(runs, playbooks[key]) for key in orgs}
            results[label] = _phase(f"p{n}", starters, store, orgs["A"])
            _purge(queue, steps.shard_names())
            print(f"\n{label}: {results[label]}")
    rows: dict[str, dict[str, float]] = {}
    for label, result in results.items():
        for org, name in (("B", "another shard"), ("C", "A's shard")):
            rows[f"{label}: org on {name}, first step"] = {
                **{k: v for k, v in result[org].items() if isinstance(v, float | int)},
                "per_second": float("nan"),
            }
        rows[f"{label}: burst"] = {
            "created": float(result["burst_created"]),
            "start_s": result["burst_start_s"],
            "completed_when_measured": float(result["burst_completed"]),
            "per_second": result["burst_created"] / result["burst_start_s"],
        }
    notes = (
        f"{BURST:,} runs of org A started by this process as a dispatching instance "
        f"(production start_run, {THREADS} threads) on the {stack['backend']} stack, 1-step "
        f"playbook (notify dashboard); one run of B (another shard) and C (A's shard) every "
        f"{PROBE_GAP_S:.0f} s meanwhile; first step = createdAt → startedAt; a run not started "
        f"within {FIRST_STEP_WAIT_S:.0f} s counts {FIRST_STEP_WAIT_S:.0f} s; queues purged "
        f"between phases; target p95 < 2 s; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    harness.report("fair_dispatch", rows, notes=notes)
    after = next(iter(reversed(list(results.values()))))
    harness.summary(fair_other_org_first_step_p95_ms=after["B"].get("p95_ms"))
