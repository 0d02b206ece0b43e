"""Provider outage alerts (domain.md §7.14, §11.4): at most one per org and provider per hour."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from playbook_core.domain.collections import PROVIDER_STATUS, SETTINGS
from playbook_core.domain.errors import NotFound, ProviderError
from playbook_core.domain.secret_names import org_slack_reference
from playbook_core.logging import event
from playbook_core.ports import DocumentStore, Secrets, SlackNotifier, Transaction
from playbook_core.service.records import read_settings

THROTTLE = timedelta(hours=1)
_log = logging.getLogger("playbooks.alerts")


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
        try:
            self.slack.post(url, text)
        except ProviderError as failure:  # an alert that cannot be delivered is only logged
            event(_log, logging.ERROR, "alert delivery failed", orgId=org_id, error=failure.code)
        return True

    def _claim_slot(self, org_id: str, provider: str, now: datetime) -> bool:
        def work(tx: Transaction) -> bool:
            settings = read_settings(tx, org_id)
            last = dict(settings.get("lastAlertAt") or {})
            previous = last.get(provider)
            if previous is not None and now - previous < THROTTLE:
                return False
            last[provider] = now
            tx.set(SETTINGS, org_id, {**settings, "orgId": org_id, "lastAlertAt": last})
            return True

        return self.store.transaction(work)

    def _webhook(self, org_id: str) -> str | None:
        reference = org_slack_reference(org_id, read_settings(self.store, org_id))
        if reference:
            try:
                return self.secrets.get(reference)
            except NotFound:
                pass
        return self.fallback_webhook
