"""Normal forms of emails, phones, money and timestamps (domain.md conventions), one rule each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import phonenumbers

from playbook_core.domain.validation import E164, EMAIL

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# ISO 4217 minor-unit exponents that are not 2; everything else (USD, CAD, EUR, …) uses 2.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}  # fmt: skip
INVALID_PHONE = "invalid_phone"  # why a given phone was dropped (never logged with the number)


def normalise_email(value: object) -> str | None:
    """Trimmed and lowercased; anything that is not an address is treated as absent."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if EMAIL.match(email) else None


@dataclass(frozen=True)
class Phone:
    """A phone field after normalisation: its E.164 form, or why a given value was dropped."""

    e164: str | None = None
    dropped: str | None = None  # INVALID_PHONE when something was given but is no valid number


def parse_phone(value: object, default_country: str = "US") -> Phone:
    """Read by libphonenumber: `+…` is international, anything else national to the country.

    `default_country` is the org's ISO 3166 alpha-2 `defaultCountry`. A number libphonenumber
    does not hold valid (unparsable, wrong length, unassigned range) is dropped, never guessed.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Phone()
    if not isinstance(value, str):  # phones are text: a bare int has lost any leading 0 or +
        return Phone(dropped=INVALID_PHONE)
    try:
        number = phonenumbers.parse(value.strip(), default_country.strip().upper())
    except phonenumbers.NumberParseException:  # not a number, or a national one with no country
        return Phone(dropped=INVALID_PHONE)
    if not phonenumbers.is_valid_number(number):
        return Phone(dropped=INVALID_PHONE)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # validation.E164 (8–15 digits) is what a send accepts; a shorter valid number cannot be used.
    return Phone(e164=e164) if E164.match(e164) else Phone(dropped=INVALID_PHONE)


def normalise_phone(value: object, default_country: str = "US") -> str | None:
    """E.164, or None when absent or not a valid number (see parse_phone)."""
    return parse_phone(value, default_country).e164


def normalise_currency(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if _CURRENCY.match(code) else None


def currency_exponent(currency: str | None) -> int:
    return _EXPONENTS.get(currency or "", 2)


def parse_amount(value: object) -> Decimal | None:
    """A decimal from a platform amount (string, int or Decimal; floats via their text), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


@dataclass(frozen=True)
class Money:
    """An amount as the API renders it (`"404.95"`) and as it is stored (40495 minor units)."""

    text: str
    minor: int


def to_money(value: object, currency: str | None) -> Money | None:
    """Decimal arithmetic only: rounded half-up to the currency's exponent, never a float."""
    amount = parse_amount(value)
    if amount is None:
        return None
    exponent = currency_exponent(currency)
    rounded = amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
    return Money(text=str(rounded), minor=int(rounded.scaleb(exponent)))


def money_sum(values: list[Money], currency: str | None) -> Money:
    exponent = currency_exponent(currency)
    minor = sum(value.minor for value in values)
    return Money(text=str(Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))),
                 minor=minor)  # fmt: skip


def parse_timestamp(value: object) -> datetime | None:
    """A platform timestamp as aware UTC: offsets applied, `Z` accepted, naive ones taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """The API's time format: UTC with `Z`, seconds precision unless there are fractions."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
