"""AgentChat drafts (domain.md §3.10 Generate): the harness writes YAML, our validator decides."""

from __future__ import annotations

from typing import Any

from playbook_core.domain.errors import GenerationFailed, Issue, PlaybookInvalid
from playbook_core.domain.events import CANONICAL_EVENTS
from playbook_core.domain.loading import dump_yaml, load_text
from playbook_core.domain.playbook import AGENTS
from playbook_core.ports import AgentHarness
from playbook_core.service.authoring.playbooks import Authoring, create_playbook

REPAIR_ROUNDS = 2
HARNESS_TIMEOUT_S = 60.0
SCHEMA_SUMMARY = (
    "YAML mapping with name, description, agent, category (intel|marketing|ops|reporting|"
    "compliance|custom), tags, triggers (type manual|schedule{cron|frequency, timezone?}|"
    "event{eventName, filters?}|calendar{dateField, offsetDays?, at?}), steps (action delegate"
    "{agent, task, input?}|send_email{to, subject, body}|send_sms{to, body}|notify{channel "
    "dashboard|slack|email_internal, to, message, title?}|wait{duration}|emit{eventName, data?}, "
    "optional id, condition {path, op, value?}), retryOnFailure, maxRetries, validationThreshold. "
    "Placeholders are {{ dotted.path }} rooted at event, customer, org, user, current_user, "
    "steps, execution, playbook; nothing else is evaluated."
)


def _remediation(errors: list[Issue]) -> str:
    return "\n".join(
        f"line {e.line or '?'} column {e.column or '?'} at {e.path or 'document'}: "
        f"{e.message} ({e.code})"
        for e in errors
    )


def generate_playbook(
    *,
    authoring: Authoring,
    org_id: str,
    prompt: str,
    agent: str,
    actor: str,
    harness: AgentHarness,
) -> dict[str, Any]:
    """First draft plus at most two repairs; only a valid draft is ever saved."""
    payload = {
        "goal": prompt,
        "allowedAgents": [a for a in AGENTS if a != "system"],
        "allowedEvents": list(CANONICAL_EVENTS),
        "schemaSummary": SCHEMA_SUMMARY,
    }
    errors: list[Issue] = []
    draft: str | None = None
    for attempt in range(1, REPAIR_ROUNDS + 2):
        context: dict[str, Any] = {"orgId": org_id, "attempt": attempt, "dryRun": False}
        if errors:
            context |= {"remediation": _remediation(errors), "previousOutput": draft}
        reply = harness.run(
            agent=agent, task="compose_playbook", payload=payload, context=context,
            timeout_s=HARNESS_TIMEOUT_S,
        )  # fmt: skip
        output = reply.output.get("yaml") if isinstance(reply.output, dict) else None
        if not isinstance(output, str):
            message = "the agent's answer has no 'yaml' text"
            errors = [Issue(code="invalid_type", path="", line=None, column=None, message=message)]
            continue
        draft = output
        try:
            validated = load_text(draft)
        except PlaybookInvalid as invalid:
            errors = invalid.errors
            continue
        document = create_playbook(
            org_id=org_id, validated=validated, actor=actor, reason="create",
            source={"kind": "agent_chat"}, authoring=authoring,
        )  # fmt: skip
        return {
            "playbook": document,
            "yaml": dump_yaml(validated.definition),
            "warnings": [w.model_dump() for w in validated.warnings],
        }
    raise GenerationFailed(errors, draft)
