"""The real clock behind the Clock port (tests use playbook_core.testing.FrozenClock)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
