from datetime import UTC, datetime

from playbook_core.domain.loading import load_text
from playbook_core.domain.sync import listener_docs, listener_id, schedule_docs, schedule_id

NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
DEFINITION = load_text(
    """
name: Mixed
agent: craig
triggers:
  - {id: signup, type: event, eventName: customer.created}
  - {id: also_signup, type: event, eventName: customer.signup}
  - {id: done, type: event, eventName: order.completed}
  - {id: morning, type: schedule, frequency: daily}
  - {id: paris, type: schedule, cron: "30 8 * * 1", timezone: Europe/Paris}
  - {id: bday, type: calendar, dateField: customer.birthday, offsetDays: -3, at: "10:15"}
  - {id: by_hand, type: manual}
steps:
  - {action: notify, params: {channel: dashboard, to: "role:admin", message: hi}}
"""
).definition


def test_one_listener_per_canonical_event_with_its_trigger_ids():
    docs = listener_docs(
        org_id="org_a", playbook_id="pb_1", definition=DEFINITION, active=True, now=NOW
    )
    assert set(docs) == {"pb_1__customer.signup", "pb_1__order.completed"}
    assert docs["pb_1__customer.signup"]["triggerIds"] == ["signup", "also_signup"]
    assert {d["status"] for d in docs.values()} == {"active"}
    assert {d["orgId"] for d in docs.values()} == {"org_a"}


def test_paused_playbook_writes_paused_listeners():
    docs = listener_docs(
        org_id="org_a", playbook_id="pb_1", definition=DEFINITION, active=False, now=NOW
    )
    assert {d["status"] for d in docs.values()} == {"paused"}


def test_ids_replace_unsafe_characters():
    assert listener_id("pb/1", "a b#c") == "pb_1__a_b_c"
    assert schedule_id("pb?1", "t[1]") == "pb_1__t_1_"


def test_schedule_docs_expand_presets_and_compute_the_next_slot():
    docs = schedule_docs(
        org_id="org_a", playbook_id="pb_1", version=3, definition=DEFINITION,
        active=True, org_timezone="America/Los_Angeles", now=NOW,
    )  # fmt: skip
    morning, paris, bday = docs["pb_1__morning"], docs["pb_1__paris"], docs["pb_1__bday"]
    assert morning["cron"] == "0 7 * * *"
    assert morning["timezone"] == "America/Los_Angeles"
    assert morning["timezoneInherited"] is True
    assert morning["nextRunAt"] == datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    assert morning["nextRunLocal"] == "2026-03-07T07:00"
    assert paris["timezoneInherited"] is False
    assert paris["nextRunAt"] == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    assert bday["kind"] == "calendar"
    assert bday["cron"] == "15 10 * * *"
    assert bday["calendar"] == {"dateField": "customer.birthday", "offsetDays": -3, "at": "10:15"}
    assert morning["playbookVersion"] == 3
    assert set(docs) == {"pb_1__morning", "pb_1__paris", "pb_1__bday"}


def test_without_an_org_timezone_new_york_is_used():
    docs = schedule_docs(
        org_id="org_a", playbook_id="pb_1", version=1, definition=DEFINITION,
        active=False, org_timezone=None, now=NOW,
    )  # fmt: skip
    assert docs["pb_1__morning"]["timezone"] == "America/New_York"
    assert docs["pb_1__morning"]["status"] == "paused"
