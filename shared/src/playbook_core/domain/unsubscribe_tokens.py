"""Unsubscribe tokens (consent.md §4): who the link unsubscribes, signed so nobody can forge one.

A token is `<payload>.<signature>`, both unpadded base64url. The payload is canonical JSON of
`{c: channel, d: deliveryId?, i: identityKey, o: orgId}`; the signature is HMAC-SHA256 under a
server key over a purpose prefix and the payload text. Signed, not encrypted: the identity key
(often the recipient's own address) is readable by whoever holds the link, who is the recipient.
Several keys may verify (rotation); the first one signs. Anything `encode` would not have produced
is BadRequest `invalid-unsubscribe-token`, whatever went wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from playbook_core.domain.consent import CHANNELS, MAX_IDENTITY, ConsentChannel
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import is_plain_id

CODE = "invalid-unsubscribe-token"
MAX_TOKEN = 2048
MIN_KEY = 16  # characters; a shorter key is a configuration mistake, not a key
_PURPOSE = b"playbooks-unsubscribe-v1."  # this HMAC cannot be replayed as any other signature
_REFUSED = "the unsubscribe link is not one we issued"


@dataclass(frozen=True)
class UnsubscribeClaim:
    org_id: str
    identity_key: str
    channel: ConsentChannel
    delivery_id: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not text.isascii() or "=" in text:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_key(key: str) -> bytes:
    if len(key) < MIN_KEY:
        raise ValueError(f"an unsubscribe key has at least {MIN_KEY} characters")
    return key.encode("utf-8")


def _signature(key: str, payload: str) -> str:
    digest = hmac.new(_check_key(key), _PURPOSE + payload.encode("ascii"), hashlib.sha256)
    return _b64(digest.digest())


def _payload(claim: UnsubscribeClaim) -> str:
    fields = {"c": claim.channel, "i": claim.identity_key, "o": claim.org_id}
    if claim.delivery_id is not None:
        fields["d"] = claim.delivery_id
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _b64(text.encode("ascii"))


def _valid(claim: UnsubscribeClaim) -> bool:
    return (
        claim.channel in CHANNELS
        and is_plain_id(claim.org_id)
        and 0 < len(claim.identity_key) <= MAX_IDENTITY
        and (claim.delivery_id is None or is_plain_id(claim.delivery_id))
    )


def encode(claim: UnsubscribeClaim, key: str) -> str:
    """The token for `claim`, signed with `key`; ValueError for a claim no token may carry."""
    if not _valid(claim):
        raise ValueError("an unsubscribe token needs plain org and delivery ids and an identity")
    payload = _payload(claim)
    return f"{payload}.{_signature(key, payload)}"


def decode(token: str, keys: Sequence[str]) -> UnsubscribeClaim:
    """The claim of a token one of `keys` signed, else BadRequest `invalid-unsubscribe-token`."""
    if not keys:
        raise ValueError("no unsubscribe key to verify with")
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise BadRequest(_REFUSED, code=CODE)
    payload, presented = token.split(".")
    if not (payload.isascii() and presented.isascii()):
        raise BadRequest(_REFUSED, code=CODE)
    matched = False
    for key in keys:  # no early exit: every key is compared, each in constant time
        expected = _signature(key, payload).encode("ascii")
        matched = hmac.compare_digest(expected, presented.encode("ascii")) or matched
    if not matched:
        raise BadRequest(_REFUSED, code=CODE)
    claim = _claim(payload)
    if claim is None or not _valid(claim) or _payload(claim) != payload:
        raise BadRequest(_REFUSED, code=CODE)  # signed by us, yet not in the form we sign
    return claim


def _claim(payload: str) -> UnsubscribeClaim | None:
    try:
        fields = json.loads(_unb64(payload))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(fields, dict) or not set(fields) <= {"c", "d", "i", "o"}:
        return None
    values = (fields.get("o"), fields.get("i"), fields.get("c"))
    delivery = fields.get("d")
    if not all(isinstance(v, str) for v in values) or not isinstance(delivery, str | None):
        return None
    org_id, identity_key, channel = (str(v) for v in values)
    if channel not in CHANNELS:
        return None
    chosen: ConsentChannel = "email" if channel == "email" else "sms"
    return UnsubscribeClaim(org_id, identity_key, chosen, delivery)
