"""Where an org's secrets live: names derived from the owner server side, never from the client.

A name is a hash of the owner, so two orgs can never share one (no spelling of an org id or a store
address collides) and it fits Secret Manager's `[A-Za-z0-9_-]` ids. A reference resolves only when
it names the owner's own secret: a reference copied from another org is refused, not followed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from playbook_core.domain.ids import h

# `local:<name>@<version>` (the local stack) or a Secret Manager secret or version name.
_REFERENCE = re.compile(
    r"(?:local:(?P<local>[A-Za-z0-9_-]{1,255})(?:@[0-9a-f]{1,64})?"
    r"|projects/[A-Za-z0-9_-]{1,100}/secrets/(?P<managed>[A-Za-z0-9_-]{1,255})"
    r"(?:/versions/(?:[0-9]{1,19}|latest))?)"
)


def webhook_secret_name(org_id: str, source_id: str) -> str:
    """The signing secret of one org's webhook source."""
    return f"webhook-{h('webhook', org_id, source_id)}"


def store_api_secret_name(org_id: str, source_id: str) -> str:
    """The store API credentials the catch-up pass reads a source's orders with.

    A Shopify Admin API token, or a WooCommerce consumer key and secret: a prefix of its own, so
    only the pass may read them.
    """
    return f"storeapi-{h('store-api', org_id, source_id)}"


def sms_webhook_secret_name(org_id: str) -> str:
    """The org's inbound SMS signing secret (Blackleaf).

    `webhook-`: the receivers' prefix, which infra/ lets them read and the API create (iam.tf).
    """
    return f"webhook-{h('sms-webhook', org_id)}"


def slack_secret_name(org_id: str) -> str:
    """The org's Slack incoming-webhook URL (a bearer credential)."""
    return f"slack-{h('slack', org_id)}"


def secret_name_of(reference: str) -> str | None:
    """The secret a reference points at, or None when it is no reference we issue."""
    match = _REFERENCE.fullmatch(reference)  # `$` would let a trailing newline through
    if match is None:
        return None
    return match["local"] or match["managed"]


def names_secret(reference: object, name: str) -> bool:
    """True only for a well-formed reference to exactly this secret."""
    return isinstance(reference, str) and secret_name_of(reference) == name


def org_slack_reference(org_id: str, settings: Mapping[str, Any]) -> str | None:
    """The org's Slack secret reference from its settings, only if it names the org's own."""
    reference = settings.get("slackWebhookSecretRef")
    return reference if names_secret(reference, slack_secret_name(org_id)) else None
