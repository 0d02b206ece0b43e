import pytest

from playbook_core import catalog
from playbook_core.domain.loading import dump_yaml, load_text
from playbook_core.domain.playbook import DelegateStep, EventTrigger, ScheduleTrigger
from playbook_core.domain.tiers import ids_for_tier, monthly_cost, tier_change

# domain.md §4.1: id -> (agent, category, trigger event or schedule frequency)
REGISTRY = {
    "welcome-sequence": ("craig", "marketing", "customer.signup"),
    "owner-quickstart-guide": ("craig", "ops", "owner.day3"),
    "menu-health-scan": ("smokey", "ops", "menu.import_complete"),
    "white-glove-onboarding": ("craig", "ops", "billing.new_empire_signup"),
    "post-purchase-thank-you": ("craig", "marketing", "order.post_purchase"),
    "birthday-loyalty-reminder": ("craig", "marketing", "monthly"),
    "win-back-sequence": ("craig", "marketing", "customer.30_day_inactive"),
    "new-product-launch": ("craig", "marketing", "inventory.new_product"),
    "vip-customer-identification": ("craig", "marketing", "monthly"),
    "weekly-competitive-snapshot": ("ezal", "intel", "weekly"),
    "pro-competitive-brief": ("ezal", "intel", "weekly"),
    "daily-competitive-intel": ("ezal", "intel", "daily"),
    "real-time-price-alerts": ("ezal", "intel", "competitor.price_change"),
    "weekly-compliance-digest": ("deebo", "compliance", "weekly"),
    "pre-send-campaign-check": ("deebo", "compliance", "campaign.pre_send"),
    "jurisdiction-change-alert": ("deebo", "compliance", "compliance.jurisdiction_change"),
    "audit-prep-automation": ("deebo", "compliance", "quarterly"),
    "weekly-performance-snapshot": ("big_worm", "reporting", "weekly"),
    "campaign-roi-report": ("big_worm", "reporting", "monthly"),
    "executive-daily-digest": ("big_worm", "reporting", "daily"),
    "multi-location-rollup": ("big_worm", "reporting", "monthly"),
    "seasonal-template-pack": ("craig", "marketing", "quarterly"),
    "usage-alert": ("system", "ops", "usage.at_80_percent"),
    "tier-upgrade-nudge": ("system", "ops", "usage.feature_ceiling"),
}


def test_registry_has_24_entries_in_domain_order():
    assert [entry.id for entry in catalog.registry()] == list(REGISTRY)


@pytest.mark.parametrize("registry_id", list(REGISTRY))
def test_each_registry_entry_is_a_valid_executable_definition(registry_id):
    result = catalog.system_playbook(registry_id)
    definition = result.definition
    agent, category, trigger = REGISTRY[registry_id]
    assert result.warnings == []
    assert (definition.agent, definition.category) == (agent, category)
    assert len(definition.triggers) == 1
    only = definition.triggers[0]
    fired_by = only.event_name if isinstance(only, EventTrigger) else None
    if isinstance(only, ScheduleTrigger):
        fired_by = only.frequency
    assert fired_by == trigger
    delegates = [s for s in definition.steps if isinstance(s, DelegateStep)]
    if agent == "system":
        assert delegates == []
    else:
        assert [s.params.agent for s in delegates] == [agent]
    assert [s.action for s in definition.steps] == list(STEP_PATTERNS[registry_id])


D, E, N, S = "delegate", "send_email", "notify", "send_sms"
# domain.md §4.1 "steps" column
STEP_PATTERNS = {
    "welcome-sequence": (D, E, N),
    "owner-quickstart-guide": (D, E),
    "menu-health-scan": (D, E, N),
    "white-glove-onboarding": (D, E, N),
    "post-purchase-thank-you": (D, E),
    "birthday-loyalty-reminder": (D, E),
    "win-back-sequence": (D, E),
    "new-product-launch": (D, E),
    "vip-customer-identification": (D, E, N),
    "weekly-competitive-snapshot": (D, E),
    "pro-competitive-brief": (D, E, N),
    "daily-competitive-intel": (D, E, N),
    "real-time-price-alerts": (D, S, N),
    "weekly-compliance-digest": (D, E, N),
    "pre-send-campaign-check": (D, N),
    "jurisdiction-change-alert": (D, E, N),
    "audit-prep-automation": (D, E, N),
    "weekly-performance-snapshot": (D, E, N),
    "campaign-roi-report": (D, E, N),
    "executive-daily-digest": (D, E, N),
    "multi-location-rollup": (D, E, N),
    "seasonal-template-pack": (D, E, N),
    "usage-alert": (E, N),
    "tier-upgrade-nudge": (E, N),
}


def test_only_the_three_customer_email_playbooks_require_approval():
    needing = {i for i in REGISTRY if catalog.system_playbook(i).requires_approval}
    assert needing == {"welcome-sequence", "post-purchase-thank-you", "win-back-sequence"}


@pytest.mark.parametrize(
    ("tier", "count"), [("scout", 3), ("pro", 11), ("growth", 17), ("empire", 22)]
)
def test_tier_counts(tier, count):
    assert len(ids_for_tier(list(catalog.registry()), tier)) == count


def test_tier_membership_edges():
    registry = list(catalog.registry())
    assert ids_for_tier(registry, "scout") == [
        "welcome-sequence",
        "weekly-competitive-snapshot",
        "tier-upgrade-nudge",
    ]
    assert set(REGISTRY) - set(ids_for_tier(registry, "empire")) == {
        "weekly-competitive-snapshot",
        "tier-upgrade-nudge",
    }
    assert ids_for_tier(registry, None) == []


def test_tier_change_activates_new_minus_old_and_pauses_old_minus_new():
    registry = list(catalog.registry())
    activate, pause, unchanged = tier_change(registry, "scout", "pro")
    assert pause == ["weekly-competitive-snapshot"]
    assert len(activate) == 9
    assert unchanged == ["welcome-sequence", "tier-upgrade-nudge"]
    assert tier_change(registry, "empire", None)[1] == ids_for_tier(registry, "empire")


def test_monthly_cost_is_the_sum_of_entries():
    assert str(monthly_cost(list(catalog.registry()), "scout")) == "0.45"


def test_templates_are_four_clone_three_pro_four_enterprise():
    entries = catalog.templates()
    assert [e.id for e in entries if e.kind == "clone"] == [
        "daily_intel",
        "lead_followup",
        "weekly_kpi",
        "low_stock_alert",
    ]
    assert sum(e.tier == "pro" for e in entries) == 3
    assert sum(e.tier == "enterprise" for e in entries) == 4


@pytest.mark.parametrize("template_id", [e.id for e in catalog.templates()])
def test_each_template_is_executable(template_id):
    result = catalog.template(template_id)
    assert result.warnings == []
    assert result.definition.triggers
    assert result.definition.steps
    assert result.requires_approval is (template_id == "lead_followup")


def all_definitions():
    yield from ((i, catalog.system_playbook(i).definition) for i in REGISTRY)
    yield from ((e.id, catalog.template(e.id).definition) for e in catalog.templates())


@pytest.mark.parametrize(("entry_id", "definition"), list(all_definitions()))
def test_export_load_round_trip_for_every_catalog_entry(entry_id, definition):
    exported = dump_yaml(definition, header=[f"id: {entry_id}"])
    reloaded = load_text(exported).definition
    assert reloaded == definition
    assert dump_yaml(reloaded) == dump_yaml(definition)
