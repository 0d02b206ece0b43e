"""Email, phone, money and timestamp rules of the domain.md conventions table."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from playbook_core.domain.normal_forms import (
    Money,
    currency_exponent,
    money_sum,
    normalise_currency,
    normalise_email,
    normalise_phone,
    parse_timestamp,
    rfc3339,
    to_money,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John@Example.COM", "john@example.com"),
        ("  jon@example.com \n", "jon@example.com"),
        ("not-an-email", None),
        ("a@b", None),
        ("a b@c.com", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_email(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+16136120707", "US", "+16136120707"),
        ("+1 (613) 612-0707", "US", "+16136120707"),
        ("(555) 555-5555", "US", "+15555555555"),
        ("555-555-5555", "CA", "+15555555555"),
        ("1-555-555-5555", "US", "+15555555555"),
        ("15555555555", "US", "+15555555555"),
        ("7911 123456", "GB", "+447911123456"),
        ("555-555-SHIP", "US", None),  # six digits
        ("123", "US", None),
        ("+1234567", "US", None),  # 7 digits: too short
        ("+1234567890123456", "US", None),  # 16 digits: too long
        ("+0123456789", "US", None),  # E.164 never starts with 0
        ("555 555 5555", "ZZ", None),  # unknown country: cannot place a national number
        ("", "US", None),
        (None, "US", None),
        (6136120707, "US", None),  # platforms send phones as strings
    ],
)
def test_phone(raw, country, expected):
    assert normalise_phone(raw, country) == expected


def test_currency():
    assert normalise_currency(" usd ") == "USD"
    assert normalise_currency("US") is None
    assert normalise_currency(None) is None
    assert (currency_exponent("USD"), currency_exponent("JPY"), currency_exponent("KWD")) == (
        2,
        0,
        3,
    )
    assert currency_exponent(None) == 2


@pytest.mark.parametrize(
    ("amount", "currency", "text", "minor"),
    [
        ("404.95", "USD", "404.95", 40495),
        ("29.35", "USD", "29.35", 2935),
        (3, "USD", "3.00", 300),
        (Decimal("12.5"), "USD", "12.50", 1250),
        (0.1, "USD", "0.10", 10),  # a float goes through its text, never binary arithmetic
        ("1.005", "USD", "1.01", 101),  # half up
        ("0.00", "USD", "0.00", 0),
        ("-5.5", "EUR", "-5.50", -550),
        ("1500", "JPY", "1500", 1500),
        ("1.2345", "KWD", "1.235", 1235),
        ("1e2", "USD", "100.00", 10000),
    ],
)
def test_money(amount, currency, text, minor):
    assert to_money(amount, currency) == Money(text, minor)


@pytest.mark.parametrize("amount", ["", "abc", None, True, "NaN", "Infinity", [1]])
def test_money_refuses_non_amounts(amount):
    assert to_money(amount, "USD") is None


def test_money_sum():
    assert money_sum([Money("1.10", 110), Money("2.05", 205)], "USD") == Money("3.15", 315)
    assert money_sum([], "USD") == Money("0.00", 0)
    assert money_sum([Money("5", 5)], "JPY") == Money("5", 5)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-12-31T19:00:00-05:00", datetime(2022, 1, 1, 0, 0, tzinfo=UTC)),
        ("2022-01-01T00:00:00.000Z", datetime(2022, 1, 1, 0, 0, tzinfo=UTC)),
        ("2017-03-22T19:28:02", datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)),  # naive = UTC
        ("yesterday", None),
        ("", None),
        (None, None),
        (1700000000, None),
    ],
)
def test_timestamps_become_aware_utc(raw, expected):
    assert parse_timestamp(raw) == expected


def test_rfc3339_uses_z():
    assert rfc3339(datetime(2022, 1, 1, tzinfo=UTC)) == "2022-01-01T00:00:00Z"
