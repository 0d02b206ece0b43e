import pytest

from playbook_core.domain.approval import is_customer_facing, provably_internal
from playbook_core.domain.loading import load_text


def playbook(action: str, to: str, extra: str = "") -> str:
    body = "body: hi" if action == "send_sms" else "subject: s, body: hi"
    return f"name: T\nagent: craig\nsteps:\n  - action: {action}\n    params: {{to: '{to}', {body}{extra}}}\n"


@pytest.mark.parametrize(
    ("action", "to", "customer_facing"),
    [
        ("send_email", "{{ customer.email }}", True),
        ("send_email", "{{ org.admin_email }}", False),
        ("send_sms", "{{ org.alert_phone }}", False),
        ("send_email", "jane@store.com", True),
        ("send_email", "{{ steps.compose.output.email }}", True),
        ("send_email", "Hi {{ user.email }}", True),
        ("send_email", "{{ current_user.email }}", False),
        ("send_email", "{{ event.customer.email }}", True),
        ("send_sms", "+14155550100", True),
    ],
)
def test_domain_table_of_customer_facing_recipients(action, to, customer_facing):
    assert provably_internal(to) is not customer_facing
    if "steps." in to:
        return  # needs an earlier step to be a valid playbook; the rule itself is checked above
    definition = load_text(playbook(action, to)).definition
    assert is_customer_facing(definition.steps[0]) is customer_facing


def test_requires_approval_is_derived_and_client_value_ignored():
    text = playbook("send_email", "{{ customer.email }}") + "requiresApproval: false\n"
    result = load_text(text)
    assert result.requires_approval is True
    assert any(w.code == "ignored_field" and w.path == "requiresApproval" for w in result.warnings)


def test_internal_only_playbook_does_not_require_approval():
    text = playbook("send_email", "{{ org.admin_email }}") + (
        "  - action: notify\n    params: {channel: email_internal, to: 'role:all', message: m}\n"
    )
    assert load_text(text).requires_approval is False


def test_one_customer_facing_step_among_internal_ones_requires_approval():
    text = (
        "name: T\nagent: craig\nsteps:\n"
        "  - action: send_email\n    params: {to: '{{ org.admin_email }}', subject: s, body: b}\n"
        "  - action: send_sms\n    params: {to: '{{ customer.phone }}', body: b}\n"
    )
    assert load_text(text).requires_approval is True
