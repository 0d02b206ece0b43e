"""A step doc's `expiresAt` (domain.md §2.1): after its run's own TTL, however the rest runs.

A TTL deletion never reaches a subcollection, so each step doc carries its own; it is written
before the run closes, so it must cover whatever may still keep the run open.
"""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from playbook_core.domain.compliance.rules import MAX_WINDOW_HOURS
from playbook_core.domain.engine import (
    COMPLETION_TTL,
    LONGEST_APPROVAL_HOLD,
    STEP_OPEN_ALLOWANCE,
    step_expires_at,
)
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.domain.retry import MAILJET_OUTAGE_DELAY_S, MAX_RETRY_AFTER_S
from playbook_core.service.authoring.settings import SettingsPatch

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
COMPOSE = {"id": "compose", "action": "delegate", "params": {"agent": "craig", "task": "Write"}}
EMAIL = {
    "id": "email",
    "action": "send_email",
    "params": {"to": "{{ customer.email }}", "subject": "Hi", "body": "Hello"},
}
TELL = {
    "id": "tell",
    "action": "notify",
    "params": {"channel": "dashboard", "to": "role:admin", "message": "Sent"},
}


def wait(step_id, duration):
    return {"id": step_id, "action": "wait", "params": {"duration": duration}}


def definition(*steps):
    return PlaybookDefinition.model_validate(
        {"name": "P", "agent": "craig", "triggers": [], "steps": list(steps)}
    )


def test_a_step_outlives_every_wait_still_ahead_of_its_run_plus_the_run_ttl():
    steps = definition(COMPOSE, wait("month", "30d"), EMAIL, wait("hours", "2h"), TELL)
    first = step_expires_at(steps, 0, NOW)
    waits_ahead = timedelta(days=30, hours=2)
    assert first - NOW >= waits_ahead + LONGEST_APPROVAL_HOLD + COMPLETION_TTL
    # A wait already behind the step is not counted again.
    after_month = step_expires_at(steps, 2, NOW)
    assert first - after_month == timedelta(days=30) + 2 * STEP_OPEN_ALLOWANCE


def test_every_step_still_to_run_adds_its_allowance():
    three = definition(COMPOSE, EMAIL, TELL)
    assert step_expires_at(three, 0, NOW) - step_expires_at(three, 2, NOW) == (
        2 * STEP_OPEN_ALLOWANCE
    )
    assert step_expires_at(three, 2, NOW) == (
        NOW + STEP_OPEN_ALLOWANCE + LONGEST_APPROVAL_HOLD + COMPLETION_TTL
    )


def test_the_expiry_moves_with_the_write():
    steps = definition(COMPOSE, TELL)
    later = NOW + timedelta(days=3)
    assert step_expires_at(steps, 1, later) - step_expires_at(steps, 1, NOW) == timedelta(days=3)


def test_the_longest_approval_hold_is_the_longest_approval_ttl_a_setting_allows():
    hours = int(LONGEST_APPROVAL_HOLD / timedelta(hours=1))
    assert SettingsPatch.model_validate({"approvalTtlHours": hours}).approval_ttl_hours == hours
    with pytest.raises(ValidationError):
        SettingsPatch.model_validate({"approvalTtlHours": hours + 1})


def test_a_steps_allowance_covers_its_retries_and_a_deferral():
    retries = 10 * timedelta(seconds=max(MAILJET_OUTAGE_DELAY_S, MAX_RETRY_AFTER_S))
    deferral = timedelta(hours=MAX_WINDOW_HOURS) + timedelta(days=1)  # a cap, then a window
    assert retries + deferral <= STEP_OPEN_ALLOWANCE
