"""The dependency graph (domain.md §10.2): deterministic JSON and Mermaid, fan-in, warnings."""

import itertools
import json

import pytest

from playbook_core.domain.graph import GraphPlaybook, build_graph, to_mermaid, trigger_label
from playbook_core.domain.playbook import PlaybookDefinition

EMAIL = {"action": "send_email", "params": {"subject": "Hi", "body": "Thanks"}}
EMAIL_CUSTOMER = {**EMAIL, "params": {**EMAIL["params"], "to": "{{ customer.email }}"}}
EMAIL_OWNER = {**EMAIL, "params": {**EMAIL["params"], "to": "{{ org.admin_email }}"}}
SMS_CUSTOMER = {"action": "send_sms", "params": {"to": "{{ customer.phone }}", "body": "Hi"}}


def on(event, **extra):
    return {"type": "event", "eventName": event, **extra}


def emit(event):
    return {"action": "emit", "params": {"eventName": event}}


def pb(pid, name="P", triggers=(), steps=(), status="active"):
    definition = PlaybookDefinition.model_validate(
        {"name": name, "agent": "craig", "triggers": list(triggers), "steps": list(steps)}
    )
    return GraphPlaybook(pid, name, status, definition)


def example():
    return [
        pb("pb_1", "Post-purchase thank-you", [on("order.completed")], [EMAIL_CUSTOMER]),
        pb("pb_2", "Weekly KPI Report", [{"type": "schedule", "frequency": "weekly"}], []),
        pb("pb_3", "Menu audit", [], [emit("campaign.pre_send")]),
    ]


def warnings(graph, code):
    return [w["nodes"] for w in graph["warnings"] if w["code"] == code]


def test_example_json_is_sorted_by_id():
    graph = build_graph(example(), platforms=["shopify"])
    active = {"status": "active"}
    assert graph["nodes"] == [
        {"id": "event:campaign.pre_send", "kind": "event", "label": "campaign.pre_send"},
        {"id": "event:order.completed", "kind": "event", "label": "order.completed"},
        {"id": "playbook:pb_1", "kind": "playbook", "label": "Post-purchase thank-you", **active},
        {"id": "playbook:pb_2", "kind": "playbook", "label": "Weekly KPI Report", **active},
        {"id": "playbook:pb_3", "kind": "playbook", "label": "Menu audit", **active},
        {"id": "schedule:pb_2:trigger_1", "kind": "schedule", **active,
         "label": "weekly Mon 09:00 America/New_York"},
    ]  # fmt: skip
    assert graph["edges"] == [
        {"from": "event:order.completed", "to": "playbook:pb_1", "kind": "listens"},
        {"from": "playbook:pb_3", "to": "event:campaign.pre_send", "kind": "emits"},
        {"from": "schedule:pb_2:trigger_1", "to": "playbook:pb_2", "kind": "triggers"},
    ]
    assert graph["warnings"] == [{"code": "no_live_trigger", "nodes": ["playbook:pb_3"]}]


def test_example_mermaid_numbers_nodes_by_their_sorted_position():
    # §10.2's example, with E<n> as the rule gives it: campaign.pre_send sorts before order.completed
    assert to_mermaid(build_graph(example(), platforms=[])) == (
        "flowchart LR\n"
        '  E2["order.completed"] --> P1["Post-purchase thank-you"]\n'
        '  S1(("weekly Mon 09:00 America/New_York")) --> P2["Weekly KPI Report"]\n'
        '  P3["Menu audit"] -.-> E1["campaign.pre_send"]\n'
    )


def test_output_does_not_depend_on_input_order():
    playbooks = [
        *example(),
        pb("pb_0", "Loop", [on("campaign.pre_send"), {"type": "manual"}], [emit("owner.day3")]),
    ]
    first = build_graph(playbooks, ["woocommerce", "shopify"])
    for shuffled in itertools.permutations(playbooks):
        again = build_graph(shuffled, ["shopify", "woocommerce"])
        assert json.dumps(again) == json.dumps(first)
        assert to_mermaid(again) == to_mermaid(first)


def test_order_completed_reaches_post_purchase_listeners_marked_via():
    filtered = on("order.post_purchase", filters=[{"path": "data.total", "op": "gt", "value": 50}])
    graph = build_graph(
        [
            pb("pb_a", "Thanks", [filtered]),
            pb("pb_b", "Both", [on("order.completed"), on("order.post_purchase")]),
        ],
        platforms=["shopify"],
    )
    assert graph["edges"] == [
        {
            "from": "event:order.completed",
            "to": "playbook:pb_a",
            "kind": "listens",
            "label": "via: order.completed; data.total gt 50",
        },
        {"from": "event:order.completed", "to": "playbook:pb_b", "kind": "listens"},
        {
            "from": "event:order.post_purchase",
            "to": "playbook:pb_a",
            "kind": "listens",
            "label": "data.total gt 50",
        },
        {"from": "event:order.post_purchase", "to": "playbook:pb_b", "kind": "listens"},
    ]
    mermaid = to_mermaid(graph)
    assert (
        '  E1["order.completed"] -->|"via: order.completed; data.total gt 50"| P1["Thanks"]\n'
        in (mermaid)
    )
    assert warnings(graph, "no_producer") == []


def test_cycle_across_two_playbooks_is_one_warning():
    graph = build_graph(
        [
            pb("pb_a", "A", [on("menu.import_complete")], [emit("campaign.pre_send")]),
            pb("pb_b", "B", [on("campaign.pre_send")], [emit("menu.import_complete")]),
            pb("pb_c", "C", [on("campaign.pre_send")], [emit("usage.at_80_percent")]),
        ],
        platforms=[],
    )
    assert warnings(graph, "cycle") == [
        [
            "event:campaign.pre_send",
            "event:menu.import_complete",
            "playbook:pb_a",
            "playbook:pb_b",
        ]
    ]


def test_a_chain_without_a_loop_is_not_a_cycle():
    graph = build_graph(
        [
            pb("pb_a", "A", [on("menu.import_complete")], [emit("campaign.pre_send")]),
            pb("pb_b", "B", [on("campaign.pre_send")], [emit("usage.at_80_percent")]),
        ],
        platforms=[],
    )
    assert warnings(graph, "cycle") == []


def test_overlapping_customer_sends_need_two_active_playbooks_on_one_channel():
    graph = build_graph(
        [
            pb("pb_a", "A", [on("customer.created")], [EMAIL_CUSTOMER]),
            pb("pb_b", "B", [on("customer.signup")], [SMS_CUSTOMER, EMAIL_CUSTOMER]),
            pb("pb_c", "C", [on("customer.signup")], [EMAIL_OWNER, SMS_CUSTOMER]),
            pb("pb_d", "D", [on("customer.signup")], [EMAIL_CUSTOMER], status="paused"),
            pb("pb_e", "E", [on("order.post_purchase")], [SMS_CUSTOMER]),
            pb("pb_f", "F", [on("order.completed")], [SMS_CUSTOMER]),
        ],
        platforms=[],
    )
    assert warnings(graph, "overlapping_customer_sends") == [
        ["event:customer.signup", "playbook:pb_a", "playbook:pb_b"],
        ["event:customer.signup", "playbook:pb_b", "playbook:pb_c"],
        ["event:order.completed", "playbook:pb_e", "playbook:pb_f"],
    ]


@pytest.mark.parametrize(
    ("event", "platforms", "flagged"),
    [
        ("checkout.started", [], True),
        ("checkout.started", ["woocommerce"], True),
        ("checkout.started", ["shopify"], False),
        ("product.updated", ["woocommerce"], False),
        ("order.refunded", [], True),
        ("order.completed", [], False),  # the orders collection produces it
        ("order.post_purchase", [], False),  # ingest, and order.completed fans in
        ("owner.day3", [], False),  # the daily sweep
    ],
)
def test_no_producer_depends_on_the_orgs_sources(event, platforms, flagged):
    graph = build_graph([pb("pb_a", "A", [on(event)])], platforms)
    assert warnings(graph, "no_producer") == ([[f"event:{event}"]] if flagged else [])


def test_an_active_playbook_emitting_the_event_is_a_producer():
    listener = pb("pb_a", "A", [on("cart.created")])
    emitter = pb("pb_b", "B", [{"type": "manual"}], [emit("cart.created")])
    assert warnings(build_graph([listener, emitter], []), "no_producer") == []
    paused = pb("pb_b", "B", [{"type": "manual"}], [emit("cart.created")], status="paused")
    assert warnings(build_graph([listener, paused], []), "no_producer") == [["event:cart.created"]]


def test_no_live_trigger_flags_active_playbooks_with_only_manual_or_no_triggers():
    graph = build_graph(
        [
            pb("pb_a", "A", [{"type": "manual"}]),
            pb("pb_b", "B", []),
            pb("pb_c", "C", [{"type": "manual"}], status="paused"),
            pb("pb_d", "D", [{"type": "calendar", "dateField": "customer.birthday"}]),
            pb("pb_e", "E", [{"type": "schedule", "cron": "0 6 * * 1-5"}]),
        ],
        platforms=[],
    )
    assert warnings(graph, "no_live_trigger") == [["playbook:pb_a"], ["playbook:pb_b"]]


def test_labels_escape_quotes_and_inactive_nodes_are_styled():
    quoted = on("campaign.pre_send", filters=[{"path": "data.kind", "op": "eq", "value": "vip"}])
    graph = build_graph(
        [
            pb("pb_a", 'The "VIP" run', [quoted]),
            pb(
                "pb_b",
                "Paused",
                [{"type": "manual"}, {"type": "schedule", "frequency": "daily"}],
                status="paused",
            ),
        ],
        platforms=[],
    )
    mermaid = to_mermaid(graph).splitlines()
    assert mermaid == [
        "flowchart LR",
        '  E1["campaign.pre_send"] -->|"data.kind eq #quot;vip#quot;"| P1["The #quot;VIP#quot; run"]',
        '  M1>"manual"]:::inactive --> P2["Paused"]:::inactive',
        '  S1(("daily 07:00 America/New_York")):::inactive --> P2["Paused"]:::inactive',
        "  classDef inactive stroke-dasharray: 5 5,opacity:0.6",
    ]


def test_unconnected_nodes_get_a_line_of_their_own():
    assert to_mermaid(build_graph([pb("pb_a", "Empty")], [])) == 'flowchart LR\n  P1["Empty"]\n'


@pytest.mark.parametrize(
    ("trigger", "label"),
    [
        ({"frequency": "daily"}, "daily 07:00 America/New_York"),
        ({"frequency": "weekly", "timezone": "Europe/London"}, "weekly Mon 09:00 Europe/London"),
        ({"frequency": "monthly"}, "monthly day 1 08:00 America/New_York"),
        ({"frequency": "quarterly"}, "quarterly Jan/Apr/Jul/Oct day 1 08:00 America/New_York"),
        ({"cron": "30 6 * * 1-5", "timezone": "UTC"}, "30 6 * * 1-5 UTC"),
        (
            {"type": "calendar", "dateField": "customer.birthday", "offsetDays": -3},
            "customer.birthday \u22123d 09:00",
        ),
        (
            {
                "type": "calendar",
                "dateField": "customer.signupDate",
                "offsetDays": 2,
                "at": "10:30",
            },
            "customer.signupDate +2d 10:30",
        ),
        ({"type": "calendar", "dateField": "customer.birthday"}, "customer.birthday 09:00"),
    ],
)
def test_schedule_and_calendar_labels(trigger, label):
    definition = pb("pb_a", triggers=[{"type": "schedule", **trigger}]).definition
    assert trigger_label(definition.triggers[0], "America/New_York") == label


def test_calendar_and_schedule_nodes_carry_the_playbook_status():
    calendar = {"type": "calendar", "id": "bday", "dateField": "customer.birthday"}
    graph = build_graph([pb("pb_a", "A", [calendar], status="draft")], [], "Europe/Paris")
    assert graph["nodes"][0] == {
        "id": "calendar:pb_a:bday",
        "kind": "calendar",
        "label": "customer.birthday 09:00",
        "status": "draft",
    }
    assert to_mermaid(graph).splitlines()[1] == (
        '  C1(("customer.birthday 09:00")):::inactive --> P1["A"]:::inactive'
    )


def test_two_triggers_on_one_event_are_one_edge():
    big = on("order.created", filters=[{"path": "data.total", "op": "gte", "value": 100}])
    vip = on("order.created", filters=[{"path": "customer.tags", "op": "contains", "value": "vip"}])
    graph = build_graph([pb("pb_a", "A", [big, vip])], [])
    assert graph["edges"] == [
        {
            "from": "event:order.created",
            "to": "playbook:pb_a",
            "kind": "listens",
            "label": 'data.total gte 100 or customer.tags contains "vip"',
        }
    ]
    unfiltered = build_graph([pb("pb_a", "A", [big, on("order.created")])], [])
    assert "label" not in unfiltered["edges"][0]
