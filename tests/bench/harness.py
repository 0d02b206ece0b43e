"""Benchmark harness: time a callable over inputs, print a table, keep the figures as JSON.

Benchmarks report; they never assert on time (architecture.md §6).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
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
