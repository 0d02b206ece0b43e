from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain.errors import Conflict
from playbook_core.domain.ids import definition_hash
from playbook_core.domain.lifecycle import Playbook, initial_status, transition, version_doc_id

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("user", "draft"),
        ("agent_chat", "draft"),
        ("template", "draft"),
        ("duplicate", "disabled"),
        ("import", "disabled"),
        ("registry", "active"),
    ],
)
def test_initial_status_by_provenance(kind, status):
    assert initial_status(kind) == status


@pytest.mark.parametrize(
    ("status", "operation", "expected"),
    [
        ("draft", "toggle_on", ("active", None)),
        ("paused", "toggle_on", ("active", None)),
        ("disabled", "toggle_on", ("active", None)),
        ("active", "toggle_off", ("paused", "user")),
        ("active", "tier_downgrade", ("paused", "tier")),
        ("active", "delete", ("archived", None)),
        ("draft", "delete", ("archived", None)),
    ],
)
def test_status_machine(status, operation, expected):
    assert transition(status, operation) == expected


@pytest.mark.parametrize(
    ("status", "operation"),
    [
        ("archived", "toggle_on"),
        ("paused", "toggle_off"),
        ("archived", "delete"),
        ("active", "restore"),
    ],
)
def test_operations_that_do_not_apply_conflict(status, operation):
    with pytest.raises(Conflict):
        transition(status, operation)


def test_toggle_on_needs_a_trigger_and_a_step():
    with pytest.raises(Conflict) as caught:
        transition("draft", "toggle_on", has_triggers_and_steps=False)
    assert caught.value.code == "not-activatable"


def test_restore_within_30_days_gives_paused():
    assert transition("archived", "restore", archived_at=NOW - timedelta(days=29), now=NOW) == (
        "paused",
        "user",
    )
    with pytest.raises(Conflict) as caught:
        transition("archived", "restore", archived_at=NOW - timedelta(days=31), now=NOW)
    assert caught.value.code == "restore-window-passed"


def stored(**overrides):
    document = {
        "id": "pb_1", "orgId": "org_a", "name": "T", "agent": "craig", "status": "active", "active": True,
        "requiresApproval": False, "version": 1, "revision": 1, "definitionHash": definition_hash({}),
        "source": {"kind": "user"}, "isCustom": True, "createdBy": "u1", "updatedBy": "u1",
        "createdAt": NOW, "updatedAt": NOW,
    }  # fmt: skip
    document.update(overrides)
    return Playbook.model_validate(document)


def test_stored_playbook_keeps_active_in_step_with_status():
    assert stored().etag == '"r1"'
    with pytest.raises(ValueError, match="active must equal"):
        stored(status="paused", active=True)


def test_only_registry_playbooks_are_not_custom():
    assert (
        stored(source={"kind": "registry", "registryId": "usage-alert"}, isCustom=False).is_custom
        is False
    )
    with pytest.raises(ValueError, match="isCustom"):
        stored(source={"kind": "registry"}, isCustom=True)


def test_definition_is_recovered_from_the_stored_document():
    assert stored().definition().to_document()["name"] == "T"


def test_version_ids_are_zero_padded():
    assert version_doc_id(3) == "000003"
