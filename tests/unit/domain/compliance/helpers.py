"""Small builders for compliance tests: rules and packs from plain dicts, instants in a zone."""

from datetime import datetime
from zoneinfo import ZoneInfo

from playbook_core.domain.compliance import OrgProfile, RulePack

EXAMPLES = {"pass": [{"body": ""}], "fail": [{"body": "x"}]}
PROFILE = OrgProfile.model_validate(
    {
        "states": ["CA", "NY", "WA"],
        "licenses": {"CA": "C10-0000001-LIC", "NY": "OCM-AUCR-24-000001", "WA": "412345"},
        "legalName": "Green Leaf Holdings LLC",
        "postalAddress": "12 Market St, Sacramento, CA 95814",
        "smsBrandName": "Green Leaf",
        "unsubscribeLink": "https://mail.example.com/u/tok123",
    }
)


def rule(kind: str, **fields) -> dict:
    """A valid rule of `kind` as pack data; `fields` override or add (camelCase keys)."""
    base = {
        "id": f"us.test-{kind.replace('_', '-')}",
        "jurisdiction": "US",
        "kind": kind,
        "channels": ["email", "sms"],
        "severity": "block",
        "citation": "test citation",
        "effectiveFrom": "2020-01-01",
        "confidence": "test",
        "message": f"test {kind}",
        "examples": EXAMPLES,
    }
    return {**base, **fields}


def pack(*rules: dict, jurisdiction: str = "US", version: str = "2026.12.0") -> RulePack:
    return RulePack.model_validate(
        {"jurisdiction": jurisdiction, "name": "test", "version": version, "rules": list(rules)}
    )


def at(zone: str, text: str, fold: int = 0) -> datetime:
    """An aware instant from a local wall time in `zone`."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC"))
