"""notify email_internal (domain.md §3.3): one delivery per expanded internal recipient."""

from __future__ import annotations

from dataclasses import dataclass

from playbook_core.domain.collections import USERS
from playbook_core.domain.engine import StepOutcome
from playbook_core.domain.playbook import NotifyStep
from playbook_core.ports import DocumentStore, Where
from playbook_core.service.execution.actions import ActionContext
from playbook_core.service.execution.deliveries import Message, Unsendable, render_message
from playbook_core.service.execution.send_step import Senders, SendPolicy, deliver

ADMIN_ROLES = ("brand", "brand_admin", "dispensary", "dispensary_admin")
MAX_INTERNAL_RECIPIENTS = 20


def run_internal_email(
    step: NotifyStep,
    ctx: ActionContext,
    *,
    store: DocumentStore,
    senders: Senders,
    policy: SendPolicy,
    attempts_allowed: int,
) -> StepOutcome:
    """Notify email_internal: one delivery per expanded recipient, never customer-facing."""
    recipients = _internal_recipients(store, ctx, step.params.to or "")
    if not recipients:
        return StepOutcome(
            "failed", error_code="invalid_recipient", error_message="no internal recipient"
        )
    results = []
    for address in recipients[:MAX_INTERNAL_RECIPIENTS]:
        params = _InternalParams(
            subject=step.params.title or "Playbook notice", body=step.params.message
        )
        try:
            message = render_message("email", params, address, ctx, policy.default_country)
        except Unsendable as refused:
            return StepOutcome("failed", error_code=refused.code, error_message=str(refused))
        internal = Message(**{**message.__dict__, "customer_facing": False})
        results.append(
            deliver(
                internal,
                ctx,
                store=store,
                senders=senders,
                policy=policy,
                attempts_allowed=attempts_allowed,
            )
        )
    worst = next((r for r in results if r.status != "completed"), None)
    if worst is not None:
        return worst
    sent = sum(r.counts.get("sent", 0) for r in results)
    return StepOutcome("completed", output={"recipients": len(results)}, counts={"sent": sent})


@dataclass(frozen=True)
class _InternalParams:
    subject: str
    body: str
    template: None = None
    transactional: bool = True
    reply_to: None = None


def _internal_recipients(store: DocumentStore, ctx: ActionContext, to: str) -> list[str]:
    if not to.startswith("role:"):
        return [to]
    group = to.removeprefix("role:")
    org = ctx.render.get("org", {})
    if group == "owner":
        return [org["owner_email"]] if org.get("owner_email") else []
    where = [Where("orgId", "==", ctx.execution["orgId"])]
    if group == "admin":
        where.append(Where("role", "in", list(ADMIN_ROLES)))
    users = store.query(USERS, where, limit=MAX_INTERNAL_RECIPIENTS).docs
    return sorted({str(u.data["email"]) for u in users if u.data.get("email")})
