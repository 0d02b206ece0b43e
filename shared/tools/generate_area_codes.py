"""Writes compliance_rules/area_codes.csv and state_zones.csv from Google's libphonenumber data.

Run `.venv/bin/python shared/tools/generate_area_codes.py` after bumping `phonenumbers`;
tests/unit/domain/compliance/test_area_codes.py fails when the files drift from this output.

- An area code is listed when libphonenumber's US metadata accepts numbers with it (so Canada,
  the Caribbean, the territories, toll-free, 5XX/6XX/7XX/900 and unassigned codes are left out).
- Its state comes from libphonenumber's English geocoding names for that area code's prefixes.
- Where one area code spans time zones (208, 270, 308, 605, 701, 850, ...) we keep the zone of
  most of its population, estimated by the exchanges in use (the prefixes libphonenumber
  geocodes) that each zone holds; an exchange placed in n zones counts 1/n for each, and ties go
  to the alphabetically first zone so the output is stable. 850 (Florida panhandle) comes out
  Central: Pensacola and Panama City outweigh Tallahassee by exchanges. Alaska comes out
  America/Juneau, which keeps the same clock as America/Anchorage.
- A state's main zone is the zone of most exchanges across all of its area codes.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.geodata import GEOCODE_DATA
from phonenumbers.tzdata import TIMEZONE_DATA

OUT = Path(__file__).resolve().parents[1] / "src" / "playbook_core" / "compliance_rules"
EXCHANGES = range(200, 1000)  # NXX: the first digit of an exchange is 2-9
STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington State": "WA",
    "Washington D.C.": "DC", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip
_CITY_STATE = re.compile(r",\s*([A-Z]{2})$")


def _state_of(description: str) -> str | None:
    """'New Jersey' -> NJ, 'Jersey City, NJ' -> NJ; anything else -> None."""
    if description in STATE_NAMES:
        return STATE_NAMES[description]
    match = _CITY_STATE.search(description)
    return match[1] if match and match[1] in STATE_NAMES.values() else None


def _longest(data: dict[str, tuple[str, ...]], digits: str) -> tuple[str, ...]:
    for end in range(len(digits), 0, -1):
        if digits[:end] in data:
            return data[digits[:end]]
    return ()


def _in_service(pattern: re.Pattern[str], npa: int) -> bool:
    return any(pattern.fullmatch(f"{npa}{nxx}0000") for nxx in EXCHANGES)


def _majority(weights: Mapping[str, float]) -> str:
    return min(weights, key=lambda key: (-weights[key], key))


def _prefixes() -> dict[str, list[tuple[str, str]]]:
    """US geocoding entries per area code: (prefix, English name), read once."""
    found: dict[str, list[tuple[str, str]]] = {}
    for key, names in GEOCODE_DATA.items():
        if key.startswith("1") and len(key) >= 4 and "en" in names:
            found.setdefault(key[1:4], []).append((key, str(names["en"])))
    return found


def _zone_weights(npa: str, located: list[tuple[str, str]]) -> dict[str, float]:
    """Exchanges per zone; an exchange that libphonenumber places in n zones counts 1/n each.

    Only prefixes below the area code count (they are the exchanges in use, so they follow
    population); an area code without any (a new overlay) takes its own zones evenly.
    """
    weights: dict[str, float] = {}
    keys = [key for key, _ in located if len(key) > 4] or [f"1{npa}"]
    for key in keys:
        zones = _longest(TIMEZONE_DATA, key)
        for zone in zones:
            weights[zone] = weights.get(zone, 0.0) + 1 / len(zones)
    return weights


def table() -> list[tuple[str, str, str, dict[str, float]]]:
    """(area code, state, zone, exchange weights per zone) for every US geographic area code."""
    metadata = PhoneMetadata.metadata_for_region("US")
    fixed_line = metadata.fixed_line if metadata else None
    if fixed_line is None or not fixed_line.national_number_pattern:
        raise SystemExit("libphonenumber has no US fixed-line pattern")
    pattern = re.compile(str(fixed_line.national_number_pattern))
    prefixes = _prefixes()
    rows = []
    for number in range(200, 1000):
        npa = str(number)
        if not _in_service(pattern, number):
            continue
        located = prefixes.get(npa, [])
        states = Counter(state for _, name in located if (state := _state_of(name)) is not None)
        if not states:
            raise SystemExit(f"no state for area code {npa}")
        weights = _zone_weights(npa, located)
        rows.append((npa, _majority(states), _majority(weights), weights))
    return rows


def render_area_codes() -> str:
    lines = ["area_code,state,zone"]
    lines += [f"{code},{state},{zone}" for code, state, zone, _ in table()]
    return "\n".join(lines) + "\n"


def render_state_zones() -> str:
    per_state: dict[str, dict[str, float]] = {}
    for _, state, _, weights in table():
        totals = per_state.setdefault(state, {})
        for zone, weight in weights.items():
            totals[zone] = totals.get(zone, 0.0) + weight
    lines = ["state,zone"]
    lines += [f"{state},{_majority(per_state[state])}" for state in sorted(per_state)]
    return "\n".join(lines) + "\n"


def main() -> None:
    (OUT / "area_codes.csv").write_text(render_area_codes(), encoding="utf-8")
    (OUT / "state_zones.csv").write_text(render_state_zones(), encoding="utf-8")
    sys.stdout.write(
        f"wrote area codes and state zones from phonenumbers {phonenumbers.__version__}\n"
    )


if __name__ == "__main__":
    main()
