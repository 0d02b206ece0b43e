"""Normal forms of emails, phones, money and timestamps (domain.md conventions), one rule each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from playbook_core.domain.validation import E164, EMAIL

_NOT_DIAL = re.compile(r"[^0-9]")
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
# Calling codes for a 10-digit national number; NANP countries share +1 (the default, US).
_CALLING_CODES: dict[str, str] = {
    **dict.fromkeys(("US", "CA", "PR", "VI", "GU", "AS", "MP"), "1"),
    "GB": "44", "AU": "61", "DE": "49", "FR": "33", "MX": "52", "IN": "91", "NL": "31",
    "ES": "34", "IT": "39",
}  # fmt: skip


def normalise_email(value: object) -> str | None:
    """Trimmed and lowercased; anything that is not an address is treated as absent."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if EMAIL.match(email) else None


def normalise_phone(value: object, default_country: str = "US") -> str | None:
    """E.164, or None: `+` kept, 10 digits get the default country's code, `1`+10 digits get `+`."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    digits = _NOT_DIAL.sub("", text)
    if text.startswith("+"):
        candidate = "+" + digits
    elif len(digits) == 10 and default_country.upper() in _CALLING_CODES:
        candidate = "+" + _CALLING_CODES[default_country.upper()] + digits
    elif len(digits) == 11 and digits.startswith("1"):
        candidate = "+" + digits
    else:
        return None  # without a country code the number cannot be placed
    return candidate if E164.match(candidate) else None


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
