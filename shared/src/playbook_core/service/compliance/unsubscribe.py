"""Unsubscribe links (consent.md §4): sign them for marketing email, honour them in one click.

Every marketing email carries a link to `email_unsubscribe?token=…` in its body and the same URL
in `List-Unsubscribe`, with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). The
token names the org, the recipient's identity key and the delivery; a POST to the link records an
email `revoked` consent record. A GET only shows the button: mail scanners fetch every link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from playbook_core.domain import unsubscribe_tokens
from playbook_core.domain.consent import derived_record_id
from playbook_core.domain.unsubscribe_tokens import UnsubscribeClaim
from playbook_core.ports import Clock, DocumentStore, IdFactory
from playbook_core.service.compliance.consent import (
    current_consent,
    customer_for_identity,
    record_consent,
)

FUNCTION = "email_unsubscribe"
METHOD = "one-click unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"


def unsubscribe_link(
    *, base_url: str, org_id: str, identity_key: str, delivery_id: str | None, key: str
) -> str:
    """`<base>/email_unsubscribe?token=…` for this recipient of this org (email channel)."""
    claim = UnsubscribeClaim(org_id, identity_key, "email", delivery_id)
    token = unsubscribe_tokens.encode(claim, key)
    return f"{base_url.rstrip('/')}/{FUNCTION}?token={quote(token, safe='')}"


def list_unsubscribe_headers(link: str) -> dict[str, str]:
    """The RFC 8058 pair for an email whose unsubscribe link is `link` (EmailMessage.headers)."""
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": ONE_CLICK}


@dataclass(frozen=True)
class UnsubscribeLinks:
    """What the send pipeline needs to put a link in an email: built once by the app.

    `keys`: the configured unsubscribe keys, the first signs (runtime: Settings.unsubscribe_keys).
    """

    base_url: str
    keys: tuple[str, ...]

    def link(self, *, org_id: str, identity_key: str, delivery_id: str | None) -> str:
        return unsubscribe_link(
            base_url=self.base_url, org_id=org_id, identity_key=identity_key,
            delivery_id=delivery_id, key=self.keys[0],
        )  # fmt: skip

    def headers(self, *, org_id: str, identity_key: str, delivery_id: str | None) -> dict[str, str]:
        return list_unsubscribe_headers(
            self.link(org_id=org_id, identity_key=identity_key, delivery_id=delivery_id)
        )


def verified(token: str, keys: tuple[str, ...]) -> UnsubscribeClaim:
    """The token's claim; BadRequest `invalid-unsubscribe-token` for anything we did not sign."""
    return unsubscribe_tokens.decode(token, keys)


def unsubscribe(
    token: str,
    ip: str | None,
    user_agent: str | None,
    *,
    keys: tuple[str, ...],
    store: DocumentStore,
    clock: Clock,
    ids: IdFactory,
) -> dict[str, Any]:
    """Record the revocation the token names; idempotent.

    Already revoked: nothing is written. Otherwise the record's id derives from the token and the
    record it supersedes, so two clicks racing write one record, and a later re-grant can still be
    revoked by the same link.
    """
    claim = verified(token, keys)
    current = current_consent(
        store, org_id=claim.org_id, identity_key=claim.identity_key, channel=claim.channel
    )
    if current is not None and current.get("state") == "revoked":
        return {"unsubscribed": True, "recordId": current.get("id"), "already": True}
    superseded = str(current.get("id")) if current is not None else ""
    record = record_consent(
        store, clock, ids, org_id=claim.org_id, identity_key=claim.identity_key,
        customer_id=customer_for_identity(
            store, org_id=claim.org_id, identity_key=claim.identity_key
        ),
        channel=claim.channel, state="revoked", source="unsubscribe_link",
        method=METHOD, ip=ip, user_agent=user_agent,
        record_id=derived_record_id(
            "unsubscribe", claim.org_id, claim.identity_key, claim.channel,
            claim.delivery_id or "", superseded,
        ),
    )  # fmt: skip
    return {"unsubscribed": True, "recordId": record["id"], "already": False}
