"""requiresApproval derivation (domain.md §3.9): computed on every save, never taken from input."""

from __future__ import annotations

from playbook_core.domain import templating
from playbook_core.domain.playbook import PlaybookDefinition, SendEmailStep, SendSmsStep, Step


def provably_internal(to: str) -> bool:
    """Exactly one placeholder rooted at org, user or current_user, and nothing else."""
    try:
        whole = templating.whole_placeholder(to)
    except templating.TemplateError:
        return False
    return whole is not None and whole.root in templating.INTERNAL_ROOTS and to == to.strip()


def is_customer_facing(step: Step) -> bool:
    return isinstance(step, (SendEmailStep, SendSmsStep)) and not provably_internal(step.params.to)


def requires_approval(definition: PlaybookDefinition) -> bool:
    return any(is_customer_facing(step) for step in definition.steps)
