"""Dependency checks behind `GET /v1/health` and the dashboard's "Playbooks offline" banner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from playbook_core.domain.errors import PlaybooksError


def check_health(
    *, probes: Mapping[str, Callable[[], None]], configured: Mapping[str, bool]
) -> dict[str, Any]:
    """Probe each dependency; storage down means offline. Providers report configured or not."""
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
        except PlaybooksError:
            checks[name] = "down"
        else:
            checks[name] = "ok"
    for name, is_configured in configured.items():
        checks[name] = "configured" if is_configured else "unconfigured"
    offline = checks.get("firestore") == "down"
    degraded = offline or any(value == "down" for value in checks.values())
    return {"status": "degraded" if degraded else "ok", "offline": offline, "checks": checks}
