"""Inbound SMS from Blackleaf (consent.md §3): the signed message, its keywords, our one reply.

Blackleaf's inbound format is not public; this is the one we define and document: a JSON body
`{id, from, to, body, receivedAt}` signed with HMAC-SHA256 over the raw bytes under the org's own
secret, sent as lowercase hex in `X-Blackleaf-Signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import h
from playbook_core.domain.normal_forms import normalise_phone

SIGNATURE_HEADER = "X-Blackleaf-Signature"
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 1600  # the usual concatenated-SMS ceiling
MAX_SMS = 160  # one GSM-7 segment: the confirmation must fit
CONFIRMATION_WINDOW_HOURS = 24  # at most one STOP confirmation per number and org in this window
RECEIPT_TTL_HOURS = 72  # replays of one inbound id within this are answered as duplicates

# Opt-out words (the FCC's 2024 list, with the carriers' STOPALL), compared without spaces so
# `OPT OUT` and `OPTOUT` both count: reading an opt-out too widely costs nothing, too narrowly is
# a violation. Opt-in words compare exactly (after trimming and case): a grant must be unambiguous.
STOP_WORDS = ("STOP", "STOPALL", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE")
START_WORDS = ("START", "UNSTOP", "YES")
_STOP = frozenset(word.replace(" ", "").casefold() for word in STOP_WORDS)
_START = frozenset(word.casefold() for word in START_WORDS)
_EDGE = string.whitespace + ".!?,;:'\"()[]"  # "Stop." and "STOP!" are still STOP
_SPACE = re.compile(r"\s+")
_HEX = re.compile(r"[0-9a-f]{64}")

Keyword = Literal["stop", "start"]


def keyword(text: str) -> Keyword | None:
    """`stop` or `start` when the whole message is one of those words, else None."""
    words = _SPACE.sub(" ", text.strip(_EDGE)).casefold()
    if words.replace(" ", "") in _STOP:
        return "stop"
    if words in _START:
        return "start"
    return None


def stop_confirmation(brand: str) -> str:
    """The one reply to an opt-out, at most 160 characters whatever the brand's name."""
    head = "You are unsubscribed from "
    tail = ". No more messages will be sent. Reply START to resubscribe."
    name = " ".join(brand.split()) or "this sender"
    return head + name[: MAX_SMS - len(head) - len(tail)].rstrip() + tail


# --- the signed message -----------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body under the org's secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, header: str, secrets: Iterable[str]) -> bool:
    """Constant time against every candidate secret (no early exit); a malformed header fails."""
    presented = header.strip().lower()
    well_formed = _HEX.fullmatch(presented) is not None
    matched = False
    for secret in secrets:
        expected = signature(secret, body)
        matched = hmac.compare_digest(expected.encode(), presented.encode()) or matched
    return matched and well_formed


class InboundSms(BaseModel):
    """One inbound message as Blackleaf posts it; unknown fields are left for later versions."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
    from_: Annotated[str, Field(alias="from", min_length=1, max_length=32)]
    to: Annotated[str, Field(min_length=1, max_length=32)]
    body: Annotated[str, Field(max_length=MAX_TEXT)]
    received_at: Annotated[datetime, Field(alias="receivedAt")]


def parse_inbound(data: object, default_country: str) -> tuple[InboundSms, str, str]:
    """(message, sender E.164, our number E.164), or BadRequest naming the first problem."""
    try:
        message = InboundSms.model_validate(data, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])[:100] or "the body"
        raise BadRequest(f"{where}: {first['msg']}") from None
    if message.received_at.utcoffset() is None:
        raise BadRequest("receivedAt needs a time zone offset or Z")
    sender = normalise_phone(message.from_, default_country)
    ours = normalise_phone(message.to, default_country)
    if sender is None or ours is None:
        raise BadRequest("from and to are phone numbers with a country code (E.164)")
    return message, sender, ours


# --- deterministic ids: a replayed message writes nothing new ------------------------------------


def receipt_id(org_id: str, message_id: str) -> str:
    """`webhook_receipts` id of one inbound message."""
    return "blk_" + h("blackleaf", org_id, message_id)


def confirmation_claim_id(org_id: str, phone: str) -> str:
    """`webhook_claims` id of a number's STOP confirmation window."""
    return "stc_" + h("blackleaf-stop-confirmation", org_id, phone)


def confirmation_reference(org_id: str, message_id: str) -> str:
    """The clientReference of the confirmation: Blackleaf sends one text per reference."""
    return "stop_" + h("blackleaf-stop-confirmation", org_id, message_id)
