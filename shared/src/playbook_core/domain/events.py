"""Canonical event names and aliases (domain.md §5.1–5.2), shared by triggers and dispatch."""

from __future__ import annotations

CANONICAL_EVENTS: tuple[str, ...] = (
    "customer.signup",
    "customer.updated",
    "order.created",
    "order.updated",
    "order.completed",
    "order.cancelled",
    "order.refunded",
    "order.post_purchase",
    "checkout.started",
    "cart.created",
    "inventory.low_stock",
    "inventory.new_product",
    "product.updated",
    "owner.day3",
    "customer.birthday",
    "customer.30_day_inactive",
    "menu.import_complete",
    "competitor.price_change",
    "competitor.menu_shakeup",
    "campaign.pre_send",
    "usage.at_80_percent",
    "usage.feature_ceiling",
    "compliance.jurisdiction_change",
    "billing.new_empire_signup",
)
_CANONICAL = frozenset(CANONICAL_EVENTS)

# Names accepted on input and stored canonical.
ALIASES: dict[str, str] = {"customer.created": "customer.signup"}

# An event of the key's name also reaches listeners of these names (one execution per playbook).
FAN_IN: dict[str, tuple[str, ...]] = {"order.completed": ("order.post_purchase",)}


def canonical_name(name: str) -> str | None:
    """The canonical name for a canonical name or an alias; None when unknown."""
    name = ALIASES.get(name, name)
    return name if name in _CANONICAL else None


def is_canonical(name: str) -> bool:
    return name in _CANONICAL


def listener_names(name: str) -> tuple[str, ...]:
    """Listener event names an event of this (canonical) name reaches."""
    return (name, *FAN_IN.get(name, ()))
