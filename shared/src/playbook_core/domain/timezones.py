"""The org's effective time zone (domain.md §8.1): settings, then organizations, then New York.

One rule for everything dated in local time: stats and attribution dates, low-stock days, the
hourly jobs, the graph's labels, `org.timezone` in templates, `effectiveTimezone` and the zone
inherited by schedules. An unusable stored zone falls back to the default instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo

from playbook_core.domain.schedules import TimezoneError, resolve_timezone

DEFAULT_TIMEZONE: Final = "America/New_York"


def stored_zone(document: Mapping[str, Any] | None) -> str | None:
    """The document's `timezone` when it holds a name at all (a non-empty string), unchecked.

    None means the next source decides: callers read the organization document only then.
    """
    name = (document or {}).get("timezone")
    return name if isinstance(name, str) and name else None


def zone_named(name: object) -> ZoneInfo:
    """The zone of a valid name (IANA with `/`, or `UTC`); the default for anything else."""
    if isinstance(name, str):
        try:
            return resolve_timezone(name)
        except TimezoneError:
            pass
    return ZoneInfo(DEFAULT_TIMEZONE)


def org_timezone(
    settings: Mapping[str, Any] | None, organization: Mapping[str, Any] | None = None
) -> ZoneInfo:
    """§8.1: the settings zone, else the organization's, else the default; never raises.

    A stored zone that is set but unusable means the default, not the next source.
    """
    return zone_named(stored_zone(settings) or stored_zone(organization))


def org_timezone_name(
    settings: Mapping[str, Any] | None, organization: Mapping[str, Any] | None = None
) -> str:
    """The IANA name of `org_timezone` (what documents and the API show)."""
    return str(org_timezone(settings, organization).key)
