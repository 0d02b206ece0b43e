"""The shipped packs load, their rules prove themselves on their examples, bad packs are refused."""

import re
from pathlib import Path

import pytest

from playbook_core import compliance_rules
from playbook_core.domain.compliance import (
    FrequencyRule,
    RulePackInvalid,
    SendWindowRule,
    check_unique_ids,
    parse_pack,
    run_example,
)
from tests.unit.domain.compliance.helpers import pack, rule

ROOT = Path(__file__).parents[4]
PACK_FILES = ROOT / "shared" / "src" / "playbook_core" / "compliance_rules" / "packs"
JURISDICTIONS = ["CA", "CO", "FL", "IL", "MA", "MI", "NV", "NY", "OK", "OR", "US", "WA"]
ALL_RULES = [rule for shipped in compliance_rules.packs() for rule in shipped.rules]


def test_every_pack_file_parses_and_is_named_after_its_jurisdiction():
    assert sorted(path.stem for path in PACK_FILES.glob("*.yaml")) == JURISDICTIONS
    for path in PACK_FILES.glob("*.yaml"):
        assert parse_pack(path.read_bytes()).jurisdiction == path.stem
    assert [shipped.jurisdiction for shipped in compliance_rules.packs()] == JURISDICTIONS


def test_rule_ids_are_unique_and_prefixed_by_their_pack():
    ids = [rule.id for rule in ALL_RULES]
    assert len(ids) == len(set(ids))
    for shipped in compliance_rules.packs():
        for item in shipped.rules:
            assert item.jurisdiction == shipped.jurisdiction
            assert item.id.startswith(shipped.jurisdiction.lower() + ".")


def test_pack_lookup():
    assert compliance_rules.pack("CA").jurisdiction == "CA"
    with pytest.raises(KeyError):
        compliance_rules.pack("TX")


@pytest.mark.parametrize(
    ("item", "example"),
    [(item, example) for item in ALL_RULES for example in item.examples.passing],
    ids=lambda value: getattr(value, "id", ""),
)
def test_pass_examples_produce_no_finding_of_their_rule(item, example):
    result = run_example(item, example)
    assert [f.message for f in result.findings if f.rule_id == item.id] == []


@pytest.mark.parametrize(
    ("item", "example"),
    [(item, example) for item in ALL_RULES for example in item.examples.failing],
    ids=lambda value: getattr(value, "id", ""),
)
def test_fail_examples_produce_a_finding_of_their_rule(item, example):
    result = run_example(item, example)
    assert [f for f in result.findings if f.rule_id == item.id]
    if isinstance(item, SendWindowRule | FrequencyRule):
        assert result.verdict == "defer"
        assert result.defer_until is not None
    else:
        assert result.verdict == item.severity


def test_duplicate_ids_across_packs_are_refused():
    first = pack(rule("consent", requires="express", id="us.same"))
    second = pack(rule("age", minimumAge=21, id="us.same", jurisdiction="CA"), jurisdiction="CA")
    with pytest.raises(RulePackInvalid) as caught:
        check_unique_ids([first, second])
    assert caught.value.errors[0].code == "duplicate_id"
    assert "also defined in the US pack" in caught.value.errors[0].message


def test_docs_table_lists_every_rule():
    text = (ROOT / "docs" / "compliance.md").read_text()
    match = re.search(r"<!-- rules:start -->\n(.*?)<!-- rules:end -->", text, re.DOTALL)
    assert match is not None
    assert match[1] == compliance_rules.rules_table(), (
        "paste playbook_core.compliance_rules.rules_table() between the markers"
    )


# --- the strict loader ---------------------------------------------------------------------------

HEAD = "jurisdiction: US\nname: Test\nversion: 2026.12.0\nrules:\n"
RULE = """\
  - id: us.x
    jurisdiction: US
    kind: forbidden_terms
    channels: [email]
    severity: block
    terms: [bad]
    citation: c
    effectiveFrom: 2026-01-01
    confidence: c
    message: m
    examples: {pass: [{body: ok}], fail: [{body: bad}]}
"""
WINDOW = """\
  - id: us.w
    jurisdiction: US
    kind: send_window
    channels: [sms]
    severity: block
    start: "08:00"
    end: "07:00"
    citation: c
    effectiveFrom: 2026-01-01
    confidence: c
    message: m
    examples: {pass: [{}], fail: [{}]}
"""


def issues_of(text: str) -> list[tuple[str, str, int | None, int | None]]:
    with pytest.raises(RulePackInvalid) as caught:
        parse_pack(text)
    return [(e.code, e.path, e.line, e.column) for e in caught.value.errors]


def test_a_valid_pack_parses():
    parsed = parse_pack(HEAD + RULE)
    assert parsed.rules[0].id == "us.x"
    assert parsed.label == "US@2026.12.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + RULE.replace("    message: m\n", "    message: m\n    colour: red\n"),
         ("unknown_field", "rules[0].colour", 15, 5)),
        (HEAD + RULE.replace("kind: forbidden_terms", "kind: banned_words"),
         ("invalid_enum", "rules[0].kind", 7, 11)),
        (HEAD + RULE.replace("terms: [bad]", "patterns: ['(unclosed']"),
         ("invalid_value", "rules[0].patterns[0]", 10, 16)),
        (HEAD + RULE.replace("terms: [bad]", "patterns: ['a*']"),
         ("invalid_value", "rules[0].patterns[0]", 10, 16)),
        (HEAD + RULE + RULE, ("duplicate_id", "rules[1].id", 16, 9)),
        (HEAD + WINDOW, ("invalid_value", "rules[0].end", 11, 10)),
        (HEAD + WINDOW.replace('"07:00"', "21:00"), ("invalid_type", "rules[0].end", 11, 10)),
        (HEAD + RULE.replace("jurisdiction: US\n    kind", "jurisdiction: CA\n    kind"),
         ("invalid_value", "rules[0].jurisdiction", 6, 19)),
        (HEAD + RULE.replace("    kind: forbidden_terms\n", ""), ("missing_field", "rules[0].kind", 5, 5)),
        (HEAD + RULE.replace("fail: [{body: bad}]", "fail: []"),
         ("invalid_value", "rules[0].examples.fail", 15, 42)),
        (HEAD.replace("US", "ORG") + RULE, ("invalid_value", "jurisdiction", 1, 15)),
        (HEAD + RULE.replace("channels: [email]", "channels: [fax]"),
         ("invalid_enum", "rules[0].channels[0]", 8, 16)),
        (HEAD + "  - id: [unclosed\n", ("yaml_syntax", "", 6, 1)),
    ],
    ids=[
        "unknown-key", "bad-kind", "bad-regex", "empty-matching-regex", "duplicate-id",
        "window-end-before-start", "unquoted-time", "rule-jurisdiction", "missing-kind",
        "no-fail-example", "pack-jurisdiction", "bad-channel", "yaml-syntax",
    ],
)  # fmt: skip
def test_the_loader_refuses_bad_packs_with_positions(text, expected):
    assert expected in issues_of(text)


def test_a_pack_that_is_not_a_mapping_is_refused():
    assert issues_of("- just\n- a list\n") == [("invalid_type", "", 1, 1)]


def test_the_error_names_the_source_file():
    with pytest.raises(RulePackInvalid) as caught:
        parse_pack(HEAD + RULE + RULE, source="packs/US.yaml")
    assert "packs/US.yaml" in str(caught.value)
    assert caught.value.status == 422
