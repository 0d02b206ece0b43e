"""Alerts, at most one per hour and subject.

Provider outages per org (domain.md §7.14, §11.4); ops-wide conditions such as dead-lettered
events (§5.5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from playbook_core.domain.collections import PROVIDER_STATUS, SETTINGS, WEBHOOK_SOURCES
from playbook_core.domain.errors import NotFound, ProviderError
from playbook_core.domain.secret_names import org_slack_reference
from playbook_core.logging import ALERT, event
from playbook_core.ports import DocumentStore, Secrets, SlackNotifier, Transaction
from playbook_core.service.records import read_settings

THROTTLE = timedelta(hours=1)
# Where ops-wide alerts keep their last time: one system document, not any org's settings.
OPS_ALERTS = "_ops"
_log = logging.getLogger("playbooks.alerts")


def claim_alert_slot(
    store: DocumentStore, collection: str, doc_id: str, subject: str, now: datetime, *,
    org_id: str,
) -> bool:  # fmt: skip
    """True at most once per THROTTLE per (document, subject): the caller then sends the alert.

    The last time lives in the document's `lastAlertAt` map, read and set in one transaction, so
    concurrent instances agree on who sends.
    """

    def work(tx: Transaction) -> bool:
        current = tx.get(collection, doc_id) or {}
        last = dict(current.get("lastAlertAt") or {})
        previous = last.get(subject)
        if previous is not None and now - previous < THROTTLE:
            return False
        last[subject] = now
        tx.set(collection, doc_id, {**current, "orgId": org_id, "lastAlertAt": last})
        return True

    return store.transaction(work)


@dataclass(frozen=True)
class Alerter:
    store: DocumentStore
    slack: SlackNotifier
    secrets: Secrets
    fallback_webhook: str | None

    def provider_failing(
        self, *, org_id: str, provider: str, error_code: str, now: datetime
    ) -> bool:
        """Mark the provider down and alert the org (else ops, else an ERROR log); True if sent."""
        self.store.set(
            PROVIDER_STATUS,
            provider,
            {"orgId": "_system", "status": "down", "lastErrorCode": error_code, "updatedAt": now},
        )
        if not self._claim_slot(org_id, provider, now):
            return False
        text = f"[Playbooks] {provider} failing for org {org_id}: {error_code} (1 in last hour)"
        url = self._webhook(org_id)
        if url is None:
            event(_log, logging.ERROR, text, orgId=org_id, provider=provider, errorCode=error_code)
            return True
        self._post(url, text, orgId=org_id)
        return True

    def source_alert(
        self, *, org_id: str, source_id: str, subject: str, text: str, now: datetime
    ) -> bool:
        """One alert per source and subject an hour, to the org's Slack, else ops'; True if sent."""
        if not claim_alert_slot(
            self.store, WEBHOOK_SOURCES, source_id, subject, now, org_id=org_id
        ):
            return False
        event(_log, ALERT, text, orgId=org_id, sourceId=source_id, subject=subject)
        url = self._webhook(org_id)
        if url is not None:
            self._post(url, text, orgId=org_id, subject=subject)
        return True

    def ops_alert(self, *, subject: str, text: str, now: datetime, **fields: Any) -> bool:
        """An ALERT log and the ops Slack webhook, at most once per subject per hour; True if sent.

        `fields` go to the log line only. Without an ops webhook the ALERT log is the alert.
        """
        if not claim_alert_slot(
            self.store, PROVIDER_STATUS, OPS_ALERTS, subject, now, org_id="_system"
        ):
            return False
        event(_log, ALERT, text, subject=subject, **fields)
        if self.fallback_webhook is not None:
            self._post(self.fallback_webhook, text, subject=subject)
        return True

    def _post(self, url: str, text: str, **fields: Any) -> None:
        try:
            self.slack.post(url, text)
        except ProviderError as failure:  # an alert that cannot be delivered is only logged
            event(_log, logging.ERROR, "alert delivery failed", error=failure.code, **fields)

    def _claim_slot(self, org_id: str, provider: str, now: datetime) -> bool:
        return claim_alert_slot(self.store, SETTINGS, org_id, provider, now, org_id=org_id)

    def _webhook(self, org_id: str) -> str | None:
        reference = org_slack_reference(org_id, read_settings(self.store, org_id))
        if reference:
            try:
                return self.secrets.get(reference)
            except NotFound:
                pass
        return self.fallback_webhook
