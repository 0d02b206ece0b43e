"""Which rules apply, the verdict order, consent and age, the footer and the save-time lint."""

from dataclasses import replace

import pytest

from playbook_core import compliance_rules
from playbook_core.domain.compliance import (
    ConsentState,
    Message,
    OrgRules,
    Recipient,
    check,
    footer,
    lint,
    org_rules,
)
from playbook_core.domain.compliance.footer import SEPARATOR, UNSUBSCRIBE_PLACEHOLDER
from tests.unit.domain.compliance.helpers import PROFILE, at, pack, rule

PACKS = compliance_rules.packs()
GRANTED = ConsentState("granted", "cns_1")
ADULT = Recipient(state="CA", zone="America/Los_Angeles", consent=GRANTED, age_verified=True)
NOON_LA = at("America/Los_Angeles", "2027-06-15T12:00")

BLOCK = rule("forbidden_terms", id="us.block", terms=["banned"])
WARN = rule("forbidden_terms", id="us.warn", terms=["iffy"], severity="warn")
WINDOW = rule("send_window", id="us.window", start="09:00", end="17:00")
TEST_PACK = pack(BLOCK, WARN, WINDOW)


def verdict_of(body: str, when=NOON_LA, packs=(TEST_PACK,)) -> str:
    return check(Message("email", body), ADULT, profile=PROFILE, packs=packs, send_at=when).verdict


@pytest.mark.parametrize(
    ("body", "when", "expected"),
    [
        ("banned and iffy", at("America/Los_Angeles", "2027-06-15T20:00"), "block"),
        ("iffy", at("America/Los_Angeles", "2027-06-15T20:00"), "defer"),
        ("iffy", NOON_LA, "warn"),
        ("fine", NOON_LA, "allow"),
        ("fine", at("America/Los_Angeles", "2027-06-15T07:00"), "defer"),
    ],
)
def test_verdict_precedence_block_then_defer_then_warn_then_allow(body, when, expected):
    assert verdict_of(body, when) == expected


def test_a_blocked_message_keeps_every_finding_and_when_its_window_opens():
    # The time stays: a reviewer who takes the wording on still waits for the window.
    result = check(
        Message("email", "banned"), ADULT, profile=PROFILE, packs=[TEST_PACK],
        send_at=at("America/Los_Angeles", "2027-06-15T20:00"),
    )  # fmt: skip
    assert result.verdict == "block"
    assert result.defer_until is not None
    assert result.defer_until > at("America/Los_Angeles", "2027-06-15T20:00")
    assert {f.rule_id for f in result.findings} == {"us.block", "us.window"}


def test_findings_locate_forbidden_terms_by_field_and_offset():
    result = check(
        Message("email", "Our candy is here", subject="Kids love it"), ADULT, profile=PROFILE,
        packs=PACKS, send_at=NOON_LA,
    )  # fmt: skip
    hits = {(f.rule_id, f.field, f.start, f.end) for f in result.findings if f.start is not None}
    assert ("us.no-appeal-to-minors", "subject", 0, 4) in hits
    assert ("us.no-appeal-to-minors", "body", 4, 9) in hits
    assert ("ca.no-candy-wording", "body", 4, 9) in hits
    minors = next(f for f in result.findings if f.rule_id == "us.no-appeal-to-minors")
    assert minors.citation.startswith("Cal. Bus. & Prof. Code")
    assert minors.kind == "forbidden_terms"


def test_terms_match_whole_words_only():
    assert verdict_of("bannedly unbanned") == "allow"
    assert verdict_of("BANNED!") == "block"


@pytest.mark.parametrize(
    ("state", "expected"),
    [("CA", "CA@2026.12.1+US@2026.12.0"), ("TX", "US@2026.12.0"), (None, "US@2026.12.0"),
     ("NY", "NY@2026.12.1+US@2026.12.0")],
)  # fmt: skip
def test_rule_pack_names_the_versions_in_force(state, expected):
    recipient = replace(ADULT, state=state)
    result = check(Message("email", "hi"), recipient, profile=PROFILE, packs=PACKS, send_at=NOON_LA)
    assert result.rule_pack == expected


def test_only_the_us_pack_and_the_recipients_state_apply():
    body = "Best weed in town"  # New York forbids the slang, California does not
    ny = check(Message("email", body), replace(ADULT, state="NY"), profile=PROFILE, packs=PACKS,
               send_at=NOON_LA)  # fmt: skip
    ca = check(Message("email", body), ADULT, profile=PROFILE, packs=PACKS, send_at=NOON_LA)
    assert "ny.no-colloquial-terms" in {f.rule_id for f in ny.findings}
    assert "ny.no-colloquial-terms" not in {f.rule_id for f in ca.findings}


def test_effective_from_is_the_recipients_local_date():
    later = pack(rule("forbidden_terms", id="us.new", terms=["banned"], effectiveFrom="2027-01-01"))
    # 23:30 on New Year's Eve in Los Angeles is already 2027 in UTC: the rule is not in force yet.
    eve = at("America/Los_Angeles", "2026-12-31T23:30")
    assert verdict_of("banned", eve, packs=(later,)) == "allow"
    assert verdict_of("banned", at("America/Los_Angeles", "2027-01-01T00:00"), (later,)) == "block"


def test_transactional_messages_skip_marketing_only_rules():
    always = rule("forbidden_terms", id="us.always", terms=["secret"], marketingOnly=False)
    rules = pack(BLOCK, always)
    receipt = Message("email", "banned secret", marketing=False)
    result = check(receipt, ADULT, profile=PROFILE, packs=[rules], send_at=NOON_LA)
    assert {f.rule_id for f in result.findings} == {"us.always"}
    marketing = check(replace(receipt, marketing=True), ADULT, profile=PROFILE, packs=[rules],
                      send_at=NOON_LA)  # fmt: skip
    assert {f.rule_id for f in marketing.findings} == {"us.block", "us.always"}


def test_rules_apply_only_to_their_channels():
    email_only = pack(rule("forbidden_terms", id="us.mail", terms=["banned"], channels=["email"]))
    sms = check(
        Message("sms", "banned"), ADULT, profile=PROFILE, packs=[email_only], send_at=NOON_LA
    )
    assert sms.verdict == "allow"


@pytest.mark.parametrize(
    ("consent", "verdict"),
    [(GRANTED, "allow"), (ConsentState("revoked", "cns_1"), "block"), (None, "block"),
     (ConsentState("granted", None), "block")],
)  # fmt: skip
def test_sms_marketing_needs_a_recorded_unrevoked_grant(consent, verdict):
    consent_only = pack(rule("consent", id="us.consent", requires="express", channels=["sms"]))
    recipient = replace(ADULT, consent=consent)
    result = check(Message("sms", "hi"), recipient, profile=PROFILE, packs=[consent_only],
                   send_at=NOON_LA)  # fmt: skip
    assert result.verdict == verdict


@pytest.mark.parametrize(
    ("verified", "verdict"), [(True, "allow"), (False, "block"), (None, "block")]
)
def test_age_must_be_known_to_be_verified(verified, verdict):
    age_only = pack(rule("age", id="us.age", minimumAge=21))
    recipient = replace(ADULT, age_verified=verified)
    result = check(
        Message("email", "hi"), recipient, profile=PROFILE, packs=[age_only], send_at=NOON_LA
    )
    assert result.verdict == verdict


def test_send_at_must_be_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        check(Message("email", "hi"), ADULT, profile=PROFILE, packs=PACKS,
              send_at=NOON_LA.replace(tzinfo=None))  # fmt: skip


def test_results_serialise_in_camel_case():
    result = check(Message("email", "banned"), ADULT, profile=PROFILE, packs=[TEST_PACK],
                   send_at=NOON_LA)  # fmt: skip
    data = result.model_dump(mode="json")
    assert set(data) == {"verdict", "findings", "deferUntil", "rulePack"}
    assert data["findings"][0]["ruleId"] == "us.block"


# --- footer --------------------------------------------------------------------------------------

REQUIRED = {"required_text", "required_field"}


@pytest.mark.parametrize("state", ["CA", "NY", "WA", "NV", "TX", None])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_the_footer_satisfies_every_required_rule_for_a_complete_profile(state, channel):
    profile = PROFILE.model_copy(update={"licenses": {"CA": "C10-1", "NV": "NV-2"}})
    text = footer(channel, profile, [state] if state else [], PACKS)
    recipient = replace(ADULT, state=state, zone="America/New_York")
    message = Message(channel, "New drops this week." + SEPARATOR + text)
    result = check(message, recipient, profile=profile, packs=PACKS,
                   send_at=at("America/New_York", "2027-06-15T12:00"))  # fmt: skip
    assert [f.message for f in result.findings] == []
    assert result.verdict == "allow"


def test_footer_contents():
    email = footer("email", PROFILE, ["CA", "NY"], PACKS)
    assert "Green Leaf Holdings LLC, 12 Market St, Sacramento, CA 95814" in email
    assert "CA license C10-0000001-LIC" in email
    assert "NY license" not in email  # New York's pack does not ask for it
    assert "contact the Poison Center at 1-800-222-1222" in email
    assert email.endswith("Unsubscribe: https://mail.example.com/u/tok123")
    sms = footer("sms", PROFILE, ["WA"], PACKS)
    assert sms.splitlines()[0] == "Green Leaf"
    assert sms.endswith("Reply STOP to opt out")
    assert "This product has intoxicating effects and may be habit forming." in sms
    unlinked = PROFILE.model_copy(update={"unsubscribe_link": None})
    assert footer("email", unlinked, [], PACKS).endswith(UNSUBSCRIBE_PLACEHOLDER)


def test_a_missing_licence_is_named():
    profile = PROFILE.model_copy(update={"licenses": {}})
    text = footer("email", profile, ["CA"], PACKS)
    result = check(Message("email", "Hello" + SEPARATOR + text), ADULT, profile=profile,
                   packs=PACKS, send_at=NOON_LA)  # fmt: skip
    assert result.verdict == "block"
    assert [f.message for f in result.findings] == ["licence number for CA is not set"]


def test_required_warning_text_is_never_a_forbidden_hit():
    # New York's warning says "children", which the US minors rule forbids elsewhere.
    text = footer("email", PROFILE, ["NY"], PACKS)
    result = check(Message("email", "Hello" + SEPARATOR + text), replace(ADULT, state="NY"),
                   profile=PROFILE, packs=PACKS, send_at=NOON_LA)  # fmt: skip
    assert result.findings == []
    assert check(Message("email", "For the children" + SEPARATOR + text), replace(ADULT, state="NY"),
                 profile=PROFILE, packs=PACKS, send_at=NOON_LA).verdict == "block"  # fmt: skip


# --- lint ----------------------------------------------------------------------------------------


def test_lint_skips_text_inside_placeholders():
    fields = {
        "params.subject": "Hi {{ customer.kids }}",
        "params.body": "{{ event.candy }} and candy",
    }
    found = lint(fields, channel="email", profile=PROFILE, packs=PACKS, jurisdictions=["CA"])
    hits = {(f.rule_id, f.field, f.start, f.end) for f in found}
    assert hits == {
        ("us.no-appeal-to-minors", "params.body", 22, 27),
        ("ca.no-candy-wording", "params.body", 22, 27),
    }


def test_lint_runs_content_rules_of_every_licensed_state_and_counts_the_footer():
    unlinked = PROFILE.model_copy(update={"unsubscribe_link": None, "licenses": {}})
    found = lint({"body": "20% off weed"}, channel="sms", profile=unlinked, packs=PACKS,
                 jurisdictions=["CA", "NY", "FL"])  # fmt: skip
    assert sorted({f.rule_id for f in found}) == [
        "ca.license-number",
        "ny.no-colloquial-terms",
        "ny.no-price-or-potency-promotion",
    ]  # no send window, cap, consent or age; the footer gives the STOP wording and brand
    assert "licence number for CA is not set" in {f.message for f in found}


def test_lint_without_the_footer_reports_what_it_would_add():
    found = lint({"body": "Hello"}, channel="email", profile=PROFILE, packs=PACKS, jurisdictions=[],
                 footer_appended=False)  # fmt: skip
    assert {f.rule_id for f in found} == {"us.can-spam-postal-address", "us.can-spam-unsubscribe"}


def test_lint_applies_the_orgs_own_terms():
    own = org_rules(OrgRules.model_validate({"forbiddenTerms": ["promo code"]}))
    found = lint({"body": "Use promo code {{ customer.code }}"}, channel="email", profile=PROFILE,
                 packs=PACKS, jurisdictions=["CA"], extra_rules=own)  # fmt: skip
    assert [(f.rule_id, f.start, f.end) for f in found] == [("org.forbidden-terms", 4, 14)]
