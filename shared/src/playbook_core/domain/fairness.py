"""Fair dispatch across orgs (issue #14): which step queue an org's tasks use, when its runs start.

Cloud Tasks has no per-key fairness, so one org's burst would sit in front of every other org's
steps. Step tasks go to one of N queue shards chosen by a stable hash of the org id, so orgs on
other shards never queue behind it; and each instance starts at most a few of one org's runs per
second, scheduling the excess later, so orgs sharing its shard find its head clear.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from playbook_core.domain.ids import h

_BURST = timedelta(seconds=1)  # how far ahead of its pace an org may start runs at once


def shard_queue_name(base: str, index: int) -> str:
    """Shard 0 is the base queue itself, so one shard is exactly the unsharded deployment."""
    return base if index == 0 else f"{base}-{index}"


def shard_of(org_id: str, shards: int) -> int:
    """Stable across processes and releases (not Python's salted `hash`)."""
    return int(h("step-shard", org_id), 16) % shards


def step_queue(base: str, shards: int, org_id: str) -> str:
    return shard_queue_name(base, shard_of(org_id, shards))


def paced_start(
    next_free: datetime | None, now: datetime, *, per_second: float
) -> tuple[datetime, datetime]:
    """When one org's next run may start, and when the one after it may (GCRA).

    Up to `per_second` starts pass at once; past that, starts are spaced 1/per_second apart
    after the last one scheduled. A start due later than `now` is the excess re-scheduled.
    """
    spacing = timedelta(seconds=1 / per_second)
    theoretical = max(next_free or now, now)
    due = max(theoretical - _BURST, now)
    return due, theoretical + spacing
