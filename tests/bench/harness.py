"""Benchmark harness: time a callable over inputs, print a table, keep the figures as JSON.

Benchmarks report; they never assert on time (architecture.md §6).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).parents[2] / ".local" / "bench"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
    }


def time_each(work: Callable[[Any], object], items: Iterable[Any]) -> list[float]:
    """Seconds per call, one figure per item."""
    durations = []
    for item in items:
        start = time.perf_counter()
        work(item)
        durations.append(time.perf_counter() - start)
    return durations


def summarise(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    total = sum(durations)
    return {
        "count": len(durations),
        "mean_ms": statistics.fmean(durations) * 1000,
        "p50_ms": pct(0.50) * 1000,
        "p95_ms": pct(0.95) * 1000,
        "p99_ms": pct(0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "total_s": total,
        "per_second": len(durations) / total if total else float("inf"),
    }


def report(name: str, rows: dict[str, dict[str, float]], notes: str = "") -> Path:
    """Print a table and write .local/bench/<name>.json with the figures and the machine."""
    columns = ["count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "per_second"]
    print(f"\n== {name} ==  {notes}")
    print(f"{'case':<28}" + "".join(f"{c:>12}" for c in columns))
    for case, figures in rows.items():
        cells = "".join(f"{figures.get(c, float('nan')):>12.3f}" for c in columns)
        print(f"{case:<28}{cells}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    document = {
        "name": name,
        "notes": notes,
        "measuredAt": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "rows": rows,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# One number per row of issue #14's table; each benchmark records its own keys as it runs.
SUMMARY_KEYS = (
    "ack_store_roundtrips", "ack_p95_ms_paced", "burst_webhooks_per_s", "burst_ack_p95_ms",
    "sustained_event_to_first_step_p95_ms", "store_calls_per_three_step_run",
    "embedded_per_order_attribution_p50_ms", "reconcile_2000_emulator_s",
    "reconcile_2000_emulator_queries", "reconcile_100k_embedded_s", "search_p95_ms_10000",
    "fair_other_org_first_step_p95_ms",
)  # fmt: skip


def summary(**figures: float | None) -> Path:
    """Merge figures into .local/bench/summary.json, with the load average and git revision.

    Keys outside SUMMARY_KEYS are refused: the summary is the table, nothing else.
    """
    unknown = sorted(set(figures) - set(SUMMARY_KEYS))
    if unknown:
        raise KeyError(f"not a summary key: {unknown}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "summary.json"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {}
    figures_now = {**dict.fromkeys(SUMMARY_KEYS), **document.get("figures", {}), **figures}
    document = {
        "figures": {key: figures_now[key] for key in SUMMARY_KEYS},
        "load_average": os.getloadavg()[0],
        "revision": _revision(),
        "updatedAt": datetime.now(UTC).isoformat(),
        "machine": machine(),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _revision() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=OUT.parents[1], capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except OSError:
        return None
    return found.stdout.strip() or None
