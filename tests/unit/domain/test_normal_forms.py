"""Email, phone, money and timestamp rules of the domain.md conventions table."""

from datetime import UTC, datetime
from decimal import Decimal

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from playbook_core.domain.normal_forms import (
    INVALID_PHONE,
    Money,
    Phone,
    currency_exponent,
    money_sum,
    normalise_currency,
    normalise_email,
    normalise_phone,
    parse_phone,
    parse_timestamp,
    rfc3339,
    to_money,
)
from playbook_core.domain.validation import E164


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
        ("(613) 612-0707", "US", "+16136120707"),  # 10 digits in a US org: still +1
        ("613-612-0707", "CA", "+16136120707"),
        ("1-613-612-0707", "US", "+16136120707"),
        ("16136120707", "US", "+16136120707"),
        ("07400 123456", "GB", "+447400123456"),  # a UK dispensary's customer, trunk 0 and all
        ("7911 123456", "GB", "+447911123456"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("07400 123456", "gb", "+447400123456"),
        ("+44 7400 123456", "US", "+447400123456"),  # `+` is international whatever the org
        ("00 44 7400 123456", "GB", "+447400123456"),  # the org's own international prefix
        ("+16136120707", "ZZ", "+16136120707"),  # international needs no org country
        ("(613) 612-0707", "GB", None),  # not a UK number: never given a guessed +44
        ("07400 123456", "US", None),
        ("(555) 555-5555", "US", None),  # 555 is no assigned area code
        ("+15555555555", "US", None),
        ("07700 900123", "GB", None),  # Ofcom's drama range: libphonenumber holds it invalid
        ("555-555-SHIP", "US", None),
        ("123", "US", None),
        ("+1234567", "US", None),  # 7 digits: too short
        ("+1234567890123456", "US", None),  # 16 digits: too long
        ("+0123456789", "US", None),  # E.164 never starts with 0
        ("555 555 5555", "ZZ", None),  # unknown country: cannot place a national number
        ("6136120707", "", None),
        ("not a phone", "US", None),
        ("", "US", None),
        (None, "US", None),
        (6136120707, "US", None),  # platforms send phones as strings
    ],
)
def test_phone(raw, country, expected):
    assert normalise_phone(raw, country) == expected


def test_phone_defaults_to_the_us():
    assert normalise_phone("(613) 612-0707") == "+16136120707"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07400 123456", Phone(e164="+447400123456")),
        (None, Phone()),  # absent: nothing was dropped
        ("  ", Phone()),
        ("07700 900123", Phone(dropped=INVALID_PHONE)),
        ("(613) 612-0707", Phone(dropped=INVALID_PHONE)),
        ("call me", Phone(dropped=INVALID_PHONE)),
        (7400123456, Phone(dropped=INVALID_PHONE)),
    ],
)
def test_parse_phone_says_why_a_given_phone_is_dropped(raw, expected):
    assert parse_phone(raw, "GB") == expected


_TYPES = (
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
)


@st.composite
def valid_numbers(draw):
    """(region, number): a libphonenumber example varied in its last digits, still valid there."""
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(_TYPES)))
    assume(example is not None)
    national = str(example.national_number)
    kept = national[: -min(3, len(national) - 1)]
    tail = draw(
        st.text(
            "0123456789", min_size=len(national) - len(kept), max_size=len(national) - len(kept)
        )
    )
    number = phonenumbers.PhoneNumber(
        country_code=example.country_code, national_number=int(kept + tail),
        italian_leading_zero=example.italian_leading_zero,
        number_of_leading_zeros=example.number_of_leading_zeros,
    )  # fmt: skip
    assume(phonenumbers.is_valid_number(number))
    assume(phonenumbers.region_code_for_number(number) == region)
    assume(E164.match(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)))
    return region, number


@given(valid_numbers())
def test_a_national_number_read_in_its_region_is_its_international_form(found):
    region, number = found
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    spaced = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert normalise_phone(national, region) == e164
    assert normalise_phone(spaced, "US") == e164
    assert normalise_phone(e164, region) == e164


@given(st.text(max_size=40), st.sampled_from(["US", "GB", "CA", "DE", "AU", "ZZ"]))
def test_a_phone_is_a_valid_e164_number_or_absent(raw, country):
    found = normalise_phone(raw, country)
    if found is not None:  # never a guess: what comes out is a real number, stable when re-read
        assert E164.match(found)
        assert phonenumbers.is_valid_number(phonenumbers.parse(found))
        assert normalise_phone(found, "US") == found
    else:  # and whatever was given but not kept is dropped with a reason
        assert parse_phone(raw, country).dropped == (INVALID_PHONE if raw.strip() else None)


@given(st.text(max_size=40).filter(lambda text: not any(c.isdigit() for c in text)))
def test_text_without_digits_is_dropped_not_guessed(raw):
    expected = INVALID_PHONE if raw.strip() else None
    assert parse_phone(raw, "US") == Phone(dropped=expected)


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
