"""Per-org pacing of run starts in one instance (issue #14; the rule is domain/fairness.py).

A start past its org's pace gets a later scheduleTime for its first step task: the excess waits
in the queue, behind nothing and in front of nobody who is due sooner.
"""

from __future__ import annotations

import threading
from datetime import datetime

from playbook_core.domain.fairness import paced_start

_PRUNE_AT = 10_000  # orgs remembered before the ones whose pace is past are forgotten


class OrgPacer:
    def __init__(self, per_second: float) -> None:
        self._per_second = per_second
        self._lock = threading.Lock()
        self._next_free: dict[str, datetime] = {}

    def start_at(self, org_id: str, now: datetime) -> datetime | None:
        """None: start now; else when this org's run may start."""
        with self._lock:
            if len(self._next_free) >= _PRUNE_AT:
                self._next_free = {o: t for o, t in self._next_free.items() if t > now}
            due, self._next_free[org_id] = paced_start(
                self._next_free.get(org_id), now, per_second=self._per_second
            )
        return due if due > now else None
