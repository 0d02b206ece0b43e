"""Compliance guard: marketing rules as data and the pure check of a message against them.

docs/compliance.md describes the packs, the rule kinds and the verdicts.
"""

from playbook_core.domain.compliance.check import (
    CheckResult,
    ConsentState,
    Finding,
    Message,
    Recipient,
    check,
    lint,
)
from playbook_core.domain.compliance.examples import run_example
from playbook_core.domain.compliance.footer import UNSUBSCRIBE_PLACEHOLDER, footer, packs_for
from playbook_core.domain.compliance.jurisdiction import Place, area_code, recipient_place
from playbook_core.domain.compliance.org import OrgRules, org_rules, parse_settings
from playbook_core.domain.compliance.packs import (
    RulePackInvalid,
    check_unique_ids,
    pack_issues,
    parse_pack,
)
from playbook_core.domain.compliance.rules import (
    AgeRule,
    AnyRule,
    Channel,
    ConsentRule,
    Example,
    ForbiddenTermsRule,
    FrequencyRule,
    OrgProfile,
    RequiredFieldRule,
    RequiredTextRule,
    Rule,
    RulePack,
    SendWindowRule,
    Severity,
    Verdict,
)

__all__ = [
    "UNSUBSCRIBE_PLACEHOLDER",
    "AgeRule",
    "AnyRule",
    "Channel",
    "CheckResult",
    "ConsentRule",
    "ConsentState",
    "Example",
    "Finding",
    "ForbiddenTermsRule",
    "FrequencyRule",
    "Message",
    "OrgProfile",
    "OrgRules",
    "Place",
    "Recipient",
    "RequiredFieldRule",
    "RequiredTextRule",
    "Rule",
    "RulePack",
    "RulePackInvalid",
    "SendWindowRule",
    "Severity",
    "Verdict",
    "area_code",
    "check",
    "check_unique_ids",
    "footer",
    "lint",
    "org_rules",
    "pack_issues",
    "packs_for",
    "parse_pack",
    "parse_settings",
    "recipient_place",
    "run_example",
]
