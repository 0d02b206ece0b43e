from zoneinfo import ZoneInfo

import pytest

from playbook_core.domain.timezones import (
    DEFAULT_TIMEZONE,
    org_timezone,
    org_timezone_name,
    stored_zone,
    zone_named,
)

PARIS, TOKYO = {"timezone": "Europe/Paris"}, {"timezone": "Asia/Tokyo"}


def test_the_settings_zone_comes_first():
    assert org_timezone(PARIS, TOKYO) == ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    "settings", [None, {}, {"timezone": None}, {"timezone": ""}, {"timezone": 3}]
)
def test_without_a_settings_zone_the_organizations_one_is_used(settings):
    assert org_timezone(settings, TOKYO) == ZoneInfo("Asia/Tokyo")


def test_without_either_the_default_is_new_york():
    assert DEFAULT_TIMEZONE == "America/New_York"
    assert org_timezone({}, {}) == ZoneInfo(DEFAULT_TIMEZONE)
    assert org_timezone(None) == ZoneInfo(DEFAULT_TIMEZONE)
    assert org_timezone_name(None, {"name": "Shop"}) == DEFAULT_TIMEZONE


@pytest.mark.parametrize(
    "bad",
    ["Mars/Olympus", "EST", "posix/Europe/Paris", "America/Indiana", "../etc/passwd", "x" * 300],
)
def test_an_unusable_stored_zone_means_the_default_without_raising(bad):
    assert org_timezone({"timezone": bad}) == ZoneInfo(DEFAULT_TIMEZONE)
    assert org_timezone({}, {"timezone": bad}) == ZoneInfo(DEFAULT_TIMEZONE)
    # Set but unusable in settings: the default, not the organization's zone.
    assert org_timezone({"timezone": bad}, TOKYO) == ZoneInfo(DEFAULT_TIMEZONE)


def test_utc_and_iana_names_are_used_as_stored():
    assert org_timezone_name({"timezone": "UTC"}) == "UTC"
    assert org_timezone_name({}, {"timezone": "America/Los_Angeles"}) == "America/Los_Angeles"


def test_stored_zone_says_whether_the_document_names_one():
    assert stored_zone(PARIS) == "Europe/Paris"
    assert stored_zone({"timezone": "Mars/Olympus"}) == "Mars/Olympus"  # unchecked
    assert stored_zone({"timezone": ""}) is None
    assert stored_zone({"timezone": ["Europe/Paris"]}) is None
    assert stored_zone(None) is None


@pytest.mark.parametrize("name", [None, 7, "", "Nowhere/Land"])
def test_zone_named_falls_back_for_anything_unusable(name):
    assert zone_named(name) == ZoneInfo(DEFAULT_TIMEZONE)
