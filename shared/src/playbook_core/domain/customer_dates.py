"""The `customer_dates` index (domain.md §2.2, §8.4): calendar sweeps read it, not `customers`."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from playbook_core.domain.changes import OrgFacts, orgs_of
from playbook_core.domain.doc_fields import instant, mapping
from playbook_core.domain.ids import h
from playbook_core.domain.normal_forms import normalise_email, normalise_phone

# Calendar trigger `dateField` → the `field` of its rows.
DATE_FIELDS = {"customer.birthday": "birthday", "customer.signupDate": "signupDate"}
FIELDS = ("birthday", "signupDate", "lastOrder")
# A customer write that touches none of these leaves the index as it is (no write per update).
_INDEXED = frozenset({"birthday", "createdAt", "email", "phone", "orgId", "brandId", "retailerId"})
_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T ])")
_MDY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_MD = re.compile(r"^(?:--)?(\d{1,2})[-/](\d{1,2})$")
_LEAP = 2000  # validates 02-29 when a birthday has no year


@dataclass(frozen=True)
class DateRows:
    put: dict[str, dict[str, Any]] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)


def row_id(org_id: str, customer_id: str, name: str) -> str:
    return h(org_id, customer_id, name)


def row(
    org_id: str, customer_id: str, name: str, day: date | tuple[int, int], contact: dict[str, Any]
) -> dict[str, Any]:
    """`{orgId, customerId, field, monthDay, date?, email?, phone?}` (no date without a year)."""
    month, day_of_month = (day.month, day.day) if isinstance(day, date) else day
    document = {
        "orgId": org_id,
        "customerId": customer_id,
        "field": name,
        "monthDay": f"{month:02d}-{day_of_month:02d}",
        "date": day.isoformat() if isinstance(day, date) else None,
        **contact,
    }
    return {k: v for k, v in document.items() if v is not None}


def parse_birthday(value: Any) -> date | tuple[int, int] | None:
    """A date, or (month, day) when only those are known; anything unreadable is absent."""
    if isinstance(value, datetime | Mapping) and (moment := instant(value)):
        return moment.astimezone(UTC).date()
    year: int | None = None
    if isinstance(value, Mapping):  # {month, day, year?}
        parts = [mapping(value).get(k) for k in ("year", "month", "day")]
        numbers = [p if isinstance(p, int) and not isinstance(p, bool) else None for p in parts]
        year, month, day = numbers
        return _valid(year, month, day)
    text = value.strip() if isinstance(value, str) else ""
    if match := _YMD.match(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := _MDY.match(text):
        month, day, year = (int(g) for g in match.groups())
    elif match := _MD.match(text):
        month, day = int(match.group(1)), int(match.group(2))
    else:
        return None
    return _valid(year, month, day)


def _valid(year: int | None, month: int | None, day: int | None) -> date | tuple[int, int] | None:
    if month is None or day is None:
        return None
    try:
        found = date(year or _LEAP, month, day)
    except ValueError:
        return None
    return found if year else (month, day)


def _contact(doc: Mapping[str, Any], country: str) -> dict[str, Any]:
    nested = mapping(doc.get("customer"))
    return {
        "email": normalise_email(doc.get("email") or nested.get("email")),
        "phone": normalise_phone(doc.get("phone") or nested.get("phone"), country),
    }


def customer_rows(
    customer_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    changed: frozenset[str],
    facts: Mapping[str, OrgFacts],
    received_at: datetime,
) -> DateRows:
    """Rows for birthday and signupDate (= createdAt) of a `customers` write, per org."""
    if before is not None and after is not None and not changed & _INDEXED:
        return DateRows()
    rows = DateRows()
    kept = orgs_of(customer_id, after)
    for org in orgs_of(customer_id, before):
        if org not in kept:  # a deleted customer, or one moved out of an org
            rows.remove.extend(row_id(org, customer_id, name) for name in FIELDS)
    if after is None:
        return rows
    for org in kept:
        org_facts = facts.get(org) or OrgFacts()
        contact = _contact(after, org_facts.default_country)
        birthday = parse_birthday(after.get("birthday"))
        if birthday is not None:
            rows.put[row_id(org, customer_id, "birthday")] = row(
                org, customer_id, "birthday", birthday, contact
            )
        elif before is not None and before.get("birthday") is not None:
            rows.remove.append(row_id(org, customer_id, "birthday"))
        # A new customer without createdAt signed up now; later writes never invent a date.
        signed_up = instant(after.get("createdAt")) or (received_at if before is None else None)
        if signed_up is not None:
            local = signed_up.astimezone(org_facts.timezone).date()
            rows.put[row_id(org, customer_id, "signupDate")] = row(
                org, customer_id, "signupDate", local, contact
            )
    return rows


def last_order_row(
    org_id: str, customer_id: str, order: Mapping[str, Any], ordered_at: datetime, facts: OrgFacts
) -> tuple[str, dict[str, Any]]:
    """The `lastOrder` row an order implies; the caller keeps it only when it is newer."""
    local = ordered_at.astimezone(facts.timezone).date()
    contact = _contact(order, facts.default_country)
    return row_id(org_id, customer_id, "lastOrder"), row(
        org_id, customer_id, "lastOrder", local, contact
    )


def sweep_month_days(local_date: date, offset_days: int) -> list[str]:
    """`monthDay` values a sweep on `local_date` matches; 28 Feb of a common year adds 02-29."""
    target = local_date - timedelta(days=offset_days)
    month_day = target.strftime("%m-%d")
    if month_day == "02-28" and not calendar.isleap(target.year):
        return [month_day, "02-29"]
    return [month_day]
