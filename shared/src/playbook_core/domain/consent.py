"""Consent records (consent.md §1): who said yes or no to which channel, when, how, on what text.

A record is evidence, so it is written once and never changed: the customer's consent for a channel
is the latest record of their identity (by `at`, ties by the greater id). Each is kept at least
four years, the TCPA's limitation period (28 U.S.C. 1658), plus thirty days (consent.md §5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, get_args

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import h, is_plain_id

ConsentChannel = Literal["email", "sms"]
ConsentState = Literal["granted", "revoked"]
ConsentSource = Literal["webhook", "form", "import", "keyword", "api", "unsubscribe_link"]
CHANNELS: tuple[ConsentChannel, ...] = get_args(ConsentChannel)
STATES: tuple[ConsentState, ...] = get_args(ConsentState)
SOURCES: tuple[ConsentSource, ...] = get_args(ConsentSource)

RETENTION_YEARS = 4  # 28 U.S.C. 1658: four years to bring a TCPA claim
RETENTION_GRACE = timedelta(days=30)  # a claim filed on the last day still finds its evidence
MAX_IDENTITY = 300  # `dk:` + a 200-character dedupe key, or an address, fits
MAX_METHOD = 200
MAX_DISCLOSURE = 10_000
MAX_IP = 64
MAX_USER_AGENT = 512
RECORD_PREFIX = "cns_"


class ConsentRecord(TypedDict):
    """`consent_records/{id}`: one statement of consent or its withdrawal; never updated."""

    id: str
    orgId: str
    identityKey: str
    customerId: str | None
    channel: ConsentChannel
    state: ConsentState
    at: datetime
    source: ConsentSource
    method: str
    disclosure: str | None
    disclosureHash: str | None  # SHA-256 (hex) of the disclosure's UTF-8 text
    ip: str | None
    userAgent: str | None
    expiresAt: datetime  # the TTL policy deletes the record after this


def retained_until(at: datetime) -> datetime:
    """`at` + 4 calendar years + 30 days; 29 February moves to 28 February."""
    try:
        later = at.replace(year=at.year + RETENTION_YEARS)
    except ValueError:  # 29 February four years on is not a leap day when a century intervenes
        later = at.replace(year=at.year + RETENTION_YEARS, day=28)
    return later + RETENTION_GRACE


def disclosure_hash(text: str) -> str:
    """What proves which words the customer saw: SHA-256 over the text's UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def derived_record_id(*parts: object) -> str:
    """A record id from what caused it, so a retried cause writes the same record once."""
    return RECORD_PREFIX + h(*parts)


def customer_of(identity_key: str) -> str | None:
    """The customer id an identity key names (`cid:<id>`), else None."""
    prefix, _, value = identity_key.partition(":")
    return value if prefix == "cid" and is_plain_id(value) else None


def _text(value: str | None, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise BadRequest(f"{name} is text of at most {limit} characters")
    return value


def consent_record(
    *,
    record_id: str,
    org_id: str,
    identity_key: str,
    customer_id: str | None,
    channel: str,
    state: str,
    at: datetime,
    source: str,
    method: str,
    disclosure: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentRecord:
    """The document for one statement; BadRequest for a value no record may hold."""
    if channel not in CHANNELS:
        raise BadRequest(f"channel is one of {', '.join(CHANNELS)}")
    if state not in STATES:
        raise BadRequest(f"state is one of {', '.join(STATES)}")
    if source not in SOURCES:
        raise BadRequest(f"source is one of {', '.join(SOURCES)}")
    if not is_plain_id(record_id) or not is_plain_id(org_id):
        raise BadRequest("a consent record needs plain record and org ids")
    if not 0 < len(identity_key) <= MAX_IDENTITY:
        raise BadRequest(f"identityKey is 1 to {MAX_IDENTITY} characters")
    if customer_id is not None and not is_plain_id(customer_id):
        raise BadRequest("customerId is a plain id")
    if not method.strip() or len(method) > MAX_METHOD:
        raise BadRequest(f"method says how, in 1 to {MAX_METHOD} characters")
    if at.utcoffset() is None:
        raise BadRequest("a consent record's time is an aware instant")
    text = _text(disclosure, "disclosure", MAX_DISCLOSURE)
    return {
        "id": record_id,
        "orgId": org_id,
        "identityKey": identity_key,
        "customerId": customer_id,
        "channel": channel,
        "state": state,
        "at": at,
        "source": source,
        "method": method.strip(),
        "disclosure": text,
        "disclosureHash": disclosure_hash(text) if text is not None else None,
        "ip": _text(ip, "ip", MAX_IP),
        "userAgent": _text(user_agent, "userAgent", MAX_USER_AGENT),
        "expiresAt": retained_until(at),
    }


def latest(records: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The record in force: the latest `at`; of two at the same instant, the greater id."""
    dated = [r for r in records if isinstance(r.get("at"), datetime)]
    if not dated:
        return None
    return max(dated, key=lambda record: (record["at"], str(record.get("id", ""))))


def identities(customer: Mapping[str, Any] | None, recipient: str) -> list[str]:
    """Every identity a record about this recipient may be filed under, most specific first.

    A STOP arrives from a phone (`ph:`), a one-click unsubscribe names the send's identity, a form
    or platform names the customer (`cid:`): consent in force is the latest record of any of them.
    """
    customer = customer or {}
    keys = [
        f"dk:{customer['dedupeKey']}" if customer.get("dedupeKey") else None,
        f"cid:{customer['id']}" if customer.get("id") else None,
        ("em:" if "@" in recipient else "ph:") + recipient if recipient else None,
    ]
    return list(dict.fromkeys(key for key in keys if key))
