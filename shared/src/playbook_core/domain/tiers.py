"""Tier rule (domain.md §4.2): which registry playbooks a tier activates; what a change does."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Tier = Literal["scout", "pro", "growth", "empire"]
TIERS: tuple[Tier, ...] = ("scout", "pro", "growth", "empire")
TIER_ALIASES: dict[str, Tier] = {"enterprise": "empire"}


class RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    tiers: tuple[Tier, ...]
    monthly_cost_usd: Annotated[Decimal, Field(alias="monthlyCostUsd", ge=0)]


class TemplateEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Literal["clone", "tier_template"]
    tier: Literal["pro", "enterprise"] | None = None


def parse_tier(value: str) -> Tier | None:
    """A tier name, accepting `enterprise` for `empire`; None when unknown (or `none`)."""
    value = TIER_ALIASES.get(value, value)
    return next((tier for tier in TIERS if tier == value), None)


def ids_for_tier(registry: list[RegistryEntry], tier: Tier | None) -> list[str]:
    """Registry ids a tier activates, in registry order; no tier activates nothing."""
    return [entry.id for entry in registry if tier is not None and tier in entry.tiers]


def monthly_cost(registry: list[RegistryEntry], tier: Tier) -> Decimal:
    return sum((e.monthly_cost_usd for e in registry if tier in e.tiers), Decimal(0))


def tier_change(
    registry: list[RegistryEntry], old: Tier | None, new: Tier | None
) -> tuple[list[str], list[str], list[str]]:
    """(activate new − old, pause old − new, unchanged in both), each in registry order."""
    before = set(ids_for_tier(registry, old))
    after = set(ids_for_tier(registry, new))
    ordered = [entry.id for entry in registry]
    return (
        [i for i in ordered if i in after - before],
        [i for i in ordered if i in before - after],
        [i for i in ordered if i in before & after],
    )


def may_clone_template(template: TemplateEntry, tier: Tier | None) -> bool:
    """Pro templates: pro, growth, empire. Enterprise: empire only. Clone templates: everyone."""
    if template.tier is None:
        return True
    if template.tier == "enterprise":
        return tier == "empire"
    return tier in ("pro", "growth", "empire")
