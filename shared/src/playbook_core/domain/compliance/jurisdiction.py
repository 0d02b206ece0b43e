"""Which state's rules and which clock a recipient falls under.

The postal address decides the state when there is one; else the phone's NANP area code; else
the org's first licensed state. The area-code and state-zone tables are data (shipped with
playbook_core.compliance_rules), passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Basis = Literal["address", "area_code", "org"]
_NOT_DIGITS = re.compile(r"\D")
_EXTENSION = re.compile(r"(?:ext|x|#).*$", re.IGNORECASE)
NANP_DIGITS = 10


@dataclass(frozen=True)
class Place:
    state: str | None
    zone: str
    basis: Basis


def area_code(phone: str | None) -> str | None:
    """The area code of a NANP number: +1XXXXXXXXXX, 1XXXXXXXXXX, 10 digits, any punctuation."""
    if not phone:
        return None
    text = _EXTENSION.sub("", phone.strip())
    if re.search(r"[A-Za-z]", text):
        return None
    digits = _NOT_DIGITS.sub("", text)
    if text.startswith("+") and not digits.startswith("1"):
        return None  # another country code
    if len(digits) == NANP_DIGITS + 1 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != NANP_DIGITS or digits[0] in "01":
        return None
    return digits[:3]


def recipient_place(
    *,
    address_state: str | None,
    phone: str | None,
    org_states: Sequence[str],
    org_zone: str,
    area_codes: Mapping[str, tuple[str, str]],
    state_zones: Mapping[str, str],
) -> Place:
    """The recipient's state and IANA zone, and what they were decided from."""
    code = area_code(phone)
    by_phone = area_codes.get(code) if code else None
    state = (address_state or "").strip().upper()
    if state in state_zones:
        # The phone's zone is finer than the state's main one, when it is in that state.
        zone = by_phone[1] if by_phone and by_phone[0] == state else state_zones[state]
        return Place(state, zone, "address")
    if by_phone is not None:
        return Place(by_phone[0], by_phone[1], "area_code")
    return Place(org_states[0] if org_states else None, org_zone, "org")
