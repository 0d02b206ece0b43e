"""What a webhook's ack reads besides its claims, kept per instance for a few seconds (issue #14).

A delivery needs its source, the source's secrets and its org's settings; read from the store for
each one, they were most of the ack's round trips. Each instance keeps them for FRESH_FOR. A
signature that fails against kept secrets is checked again against freshly read ones, so a
rotated secret works at once; a deactivated source or changed settings reach another instance
within FRESH_FOR, and this instance at once (the API forgets what it changes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

FRESH_FOR = timedelta(seconds=30)
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
        with self._lock:
            found = self._entries.get(key)
        if found is not None and timedelta(0) <= now - found[0] < self._fresh_for:
            return found[1]
        value = load()  # outside the lock: a slow read must not hold up other keys
        self.put(key, now, value)
        return value

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
    """One instance's kept sources (by id), secret values (by reference) and org contexts."""

    sources: Kept[str, Any] = field(default_factory=Kept)
    secrets: Kept[str, str] = field(default_factory=Kept)
    orgs: Kept[str, Any] = field(default_factory=Kept)
    seen: SeenMarks = field(default_factory=SeenMarks)

    def forget_source(self, source_id: str) -> None:
        self.sources.forget(source_id)

    def forget_org(self, org_id: str) -> None:
        self.orgs.forget(org_id)
