"""What a webhook's ack reads besides its claims, kept per instance for a few seconds (issue #14).

Each instance keeps each org's routing settings for FRESH_FOR; a settings change reaches every
instance within FRESH_FOR. A verified source (its document and secret values) is kept for
SOURCE_FRESH_FOR: a delivery its kept secrets do not verify reads it again (rotation, or the store
registered again), and a store another org released cannot be registered again within that time
(`sources.RELEASE_HOLD`), so a kept source never routes another org's deliveries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

FRESH_FOR = timedelta(seconds=30)
SOURCE_FRESH_FOR = timedelta(seconds=10)  # which org a store belongs to: kept shorter
# `lastSeenAt` is for the health view (hours matter, seconds do not): one write per source per
# instance at most this often, instead of one per delivery.
SEEN_EVERY = timedelta(minutes=5)
_MAX_ENTRIES = 10_000  # a bound, not a tuning: a flood of unknown keys cannot grow memory

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    """A value per key, loaded on a miss and reused while younger than `fresh_for`."""

    def __init__(self, fresh_for: timedelta = FRESH_FOR) -> None:
        self._fresh_for = fresh_for
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[datetime, V]] = {}

    def get(self, key: K, now: datetime, load: Callable[[], V]) -> V:
        found = self.fresh(key, now)
        if found is not None:
            return found
        value = load()  # outside the lock: a slow read must not hold up other keys
        self.put(key, now, value)
        return value

    def fresh(self, key: K, now: datetime) -> V | None:
        """The kept value while younger than `fresh_for`, else None (nothing is loaded)."""
        with self._lock:
            found = self._entries.get(key)
        if found is not None and timedelta(0) <= now - found[0] < self._fresh_for:
            return found[1]
        return None

    def put(self, key: K, now: datetime, value: V) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES and key not in self._entries:
                self._entries.clear()
            self._entries[key] = (now, value)

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)


class SeenMarks:
    """When this instance last wrote a source's `lastSeenAt`."""

    def __init__(self, every: timedelta = SEEN_EVERY) -> None:
        self._every = every
        self._lock = threading.Lock()
        self._marked: dict[str, datetime] = {}

    def due(self, source_id: str, stored: object, now: datetime) -> bool:
        """True (and noted) when the stored mark and ours are both older than SEEN_EVERY."""
        with self._lock:
            ours = self._marked.get(source_id)
            latest = max((m for m in (ours, stored) if isinstance(m, datetime)), default=None)
            if latest is not None and timedelta(0) <= now - latest < self._every:
                return False
            if len(self._marked) >= _MAX_ENTRIES:
                self._marked.clear()
            self._marked[source_id] = now
            return True


@dataclass(eq=False)
class Recent:
    """One instance's kept org contexts (by org id), verified sources and lastSeenAt marks."""

    orgs: Kept[str, Any] = field(default_factory=Kept)
    sources: Kept[str, Any] = field(default_factory=lambda: Kept(SOURCE_FRESH_FOR))
    seen: SeenMarks = field(default_factory=SeenMarks)
