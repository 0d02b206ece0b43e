"""Recipient state and zone: address, then area code, then the org; phones in any common format."""

import importlib.util
from pathlib import Path

import pytest

from playbook_core import compliance_rules
from playbook_core.domain.compliance import area_code, recipient_place

ROOT = Path(__file__).parents[4]
CODES = compliance_rules.area_codes()
ZONES = compliance_rules.state_zones()


def place(address_state=None, phone=None, org_states=("NY",), org_zone="America/Denver"):
    return recipient_place(address_state=address_state, phone=phone, org_states=list(org_states),
                           org_zone=org_zone, area_codes=CODES, state_zones=ZONES)  # fmt: skip


def test_the_address_beats_the_area_code():
    found = place(address_state="CA", phone="+1 212 555 0100")
    assert (found.state, found.zone, found.basis) == ("CA", "America/Los_Angeles", "address")


def test_the_area_code_refines_the_zone_within_the_address_state():
    # Florida's main zone is Eastern; the 850 panhandle is mostly Central.
    found = place(address_state="fl", phone="850-555-0100")
    assert (found.state, found.zone, found.basis) == ("FL", "America/Chicago", "address")
    assert place(address_state="FL").zone == "America/New_York"


def test_the_area_code_beats_the_org():
    found = place(phone="+13035550100")
    assert (found.state, found.zone, found.basis) == ("CO", "America/Denver", "area_code")


@pytest.mark.parametrize(
    "phone",
    ["+14155550100", "14155550100", "4155550100", "(415) 555-0100", "415.555.0100",
     "+1 (415) 555-0100", "+1-415-555-0100", "415-555-0100 ext. 12"],
)  # fmt: skip
def test_formatted_phones(phone):
    assert area_code(phone) == "415"
    assert place(phone=phone).state == "CA"


@pytest.mark.parametrize(
    "phone", [None, "", "555-0100", "+44 20 7946 0958", "+1 999 555 0100", "0125550100",
              "1-800-FLOWERS", "12345678901234"],
)  # fmt: skip
def test_unknown_or_foreign_numbers_fall_back_to_the_org(phone):
    found = place(phone=phone)
    assert (found.state, found.zone, found.basis) == ("NY", "America/Denver", "org")


def test_an_unknown_address_state_is_ignored():
    assert place(address_state="Narnia", phone="2125550100").basis == "area_code"


def test_no_org_state_leaves_the_state_unknown():
    found = place(org_states=())
    assert (found.state, found.zone) == (None, "America/Denver")


# --- the shipped tables --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [("212", ("NY", "America/New_York")), ("415", ("CA", "America/Los_Angeles")),
     ("303", ("CO", "America/Denver")), ("602", ("AZ", "America/Phoenix")),
     ("808", ("HI", "Pacific/Honolulu")), ("312", ("IL", "America/Chicago")),
     ("206", ("WA", "America/Los_Angeles")), ("702", ("NV", "America/Los_Angeles")),
     ("617", ("MA", "America/New_York")), ("313", ("MI", "America/New_York")),
     ("405", ("OK", "America/Chicago")), ("503", ("OR", "America/Los_Angeles")),
     ("305", ("FL", "America/New_York")), ("202", ("DC", "America/New_York"))],
)  # fmt: skip
def test_sample_area_codes(code, expected):
    assert CODES[code] == expected


def test_the_table_covers_every_state_and_no_other_country():
    assert {state for state, _ in CODES.values()} == set(ZONES)
    assert len(ZONES) == 51
    for code in ("800", "888", "900", "416", "604", "787", "671", "500"):
        assert code not in CODES  # toll-free, premium, Canada, territories, personal numbers
    assert len(CODES) > 330


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_area_codes", ROOT / "shared" / "tools" / "generate_area_codes.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tables_match_what_the_generator_makes():
    generator = load_generator()
    folder = ROOT / "shared" / "src" / "playbook_core" / "compliance_rules"
    hint = "run .venv/bin/python shared/tools/generate_area_codes.py"
    assert (folder / "area_codes.csv").read_text() == generator.render_area_codes(), hint
    assert (folder / "state_zones.csv").read_text() == generator.render_state_zones(), hint
