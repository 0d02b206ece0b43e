from pathlib import Path

import pytest

from playbook_core.domain.errors import PlaybookInvalid
from playbook_core.domain.loading import dump_yaml, load_data, load_text

DATA = Path(__file__).parents[2] / "data" / "playbooks"

NOTIFY = '{channel: dashboard, to: "role:admin", message: hi}'
HEAD = "name: T\nagent: craig\n"


def errors_of(text: str) -> list[tuple[str, str, int | None, int | None]]:
    with pytest.raises(PlaybookInvalid) as caught:
        load_text(text)
    return [(e.code, e.path, e.line, e.column) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("invalid_1_indentation.yaml", ("yaml_syntax", "", 6, 4)),
        ("invalid_2_unknown_field.yaml", ("unknown_field", "steps[0].script", 5, 5)),
        ("invalid_3_filter.yaml", ("invalid_template", "steps[0].params.to", 6, 11)),
        ("invalid_4_injected.yaml", ("forbidden_construct", "steps[0].params.task", 7, 13)),
    ],
)
def test_domain_md_invalid_examples_report_exact_positions(filename, expected):
    assert errors_of((DATA / filename).read_text()) == [expected]


def test_filter_message_names_the_problem():
    with pytest.raises(PlaybookInvalid) as caught:
        load_text((DATA / "invalid_3_filter.yaml").read_text())
    assert caught.value.errors[0].message == "filters are not allowed in placeholders"


MALFORMED = [
    # each case: name, YAML text, then the expected code, path, line and column
    ("syntax", "name: [unclosed\nagent: craig\n", "yaml_syntax", "", 2, 6),
    ("wrong_type", HEAD + "maxRetries: three\n", "invalid_type", "maxRetries", 3, 13),
    ("negative_max_retries", HEAD + "maxRetries: -1\n", "invalid_value", "maxRetries", 3, 13),
    (
        "unknown_action",
        HEAD + "steps:\n  - action: launch\n    params: {}\n",
        "invalid_enum",
        "steps[0].action",
        4,
        13,
    ),
    ("missing_action", HEAD + "steps:\n  - params: {}\n", "missing_field", "steps[0].action", 4, 5),
    (
        "unknown_trigger_type",
        HEAD + "triggers:\n  - type: webhook\n",
        "invalid_enum",
        "triggers[0].type",
        4,
        11,
    ),
    (
        "bad_cron",
        HEAD + "triggers:\n  - type: schedule\n    cron: 0 7 * *\n",
        "invalid_cron",
        "triggers[0].cron",
        5,
        11,
    ),
    (
        "too_frequent_cron",
        HEAD + "triggers:\n  - type: schedule\n    cron: '*/5 * * * *'\n",
        "invalid_cron",
        "triggers[0].cron",
        5,
        11,
    ),
    (
        "unknown_timezone",
        HEAD + "triggers:\n  - type: schedule\n    frequency: daily\n    timezone: Mars/Olympus\n",
        "invalid_timezone",
        "triggers[0].timezone",
        6,
        15,
    ),
    (
        "import_in_param",
        HEAD
        + "steps:\n  - action: notify\n    params: {channel: dashboard, to: 'role:admin', message: \"{{ __import__('os').system('id') }}\"}\n",
        "invalid_template",
        "steps[0].params.message",
        5,
        61,
    ),
    (
        "python_tag",
        HEAD + "description: !!python/object/apply:os.system ['id']\n",
        "forbidden_tag",
        "",
        3,
        14,
    ),
    (
        "unknown_event",
        HEAD + "triggers:\n  - type: event\n    eventName: order.exploded\n",
        "unknown_event",
        "triggers[0].eventName",
        5,
        16,
    ),
    ("missing_name", "agent: craig\n", "missing_field", "name", 1, 1),
    ("bad_agent", "name: T\nagent: hal9000\n", "invalid_enum", "agent", 2, 8),
    ("duplicate_key", HEAD + "name: Again\n", "duplicate_key", "name", 3, 1),
    ("yaml11_boolean_key", HEAD + "on: true\n", "invalid_key", "on", 3, 1),
    (
        "jinja_block",
        HEAD + "description: '{% if x %}hi{% endif %}'\n",
        "invalid_template",
        "description",
        3,
        14,
    ),
    (
        "unclosed_placeholder",
        HEAD
        + "steps:\n  - action: notify\n    params: {channel: dashboard, to: 'role:admin', message: 'hi {{ customer.name'}\n",
        "invalid_template",
        "steps[0].params.message",
        5,
        61,
    ),
    (
        "unknown_root",
        HEAD
        + "steps:\n  - action: notify\n    params: {channel: dashboard, to: 'role:admin', message: '{{ secrets.key }}'}\n",
        "invalid_template",
        "steps[0].params.message",
        5,
        61,
    ),
    (
        "later_step_reference",
        HEAD
        + "steps:\n  - action: notify\n    params: {channel: dashboard, to: 'role:admin', message: '{{ steps.later.output }}'}\n  - id: later\n    action: wait\n    params: {duration: 1h}\n",
        "invalid_reference",
        "steps[0].params.message",
        5,
        61,
    ),
    (
        "delegate_only_field",
        HEAD + "steps:\n  - action: wait\n    timeoutSeconds: 30\n    params: {duration: 1h}\n",
        "invalid_field_for_action",
        "steps[0].timeoutSeconds",
        5,
        5,
    ),
    (
        "duplicate_step_id",
        HEAD
        + f"steps:\n  - id: a\n    action: notify\n    params: {NOTIFY}\n  - id: a\n    action: notify\n    params: {NOTIFY}\n",
        "duplicate_id",
        "steps[1].id",
        7,
        9,
    ),
    (
        "literal_bad_email",
        HEAD
        + "steps:\n  - action: send_email\n    params: {to: not-an-email, subject: s, body: b}\n",
        "invalid_recipient",
        "steps[0].params.to",
        5,
        18,
    ),
    (
        "role_in_send",
        HEAD + "steps:\n  - action: send_sms\n    params: {to: 'role:admin', body: b}\n",
        "invalid_recipient",
        "steps[0].params.to",
        5,
        18,
    ),
    (
        "wait_too_long",
        HEAD + "steps:\n  - action: wait\n    params: {duration: 31d}\n",
        "invalid_value",
        "steps[0].params.duration",
        5,
        24,
    ),
    ("multiple_documents", HEAD + "---\n" + HEAD, "multiple_documents", "", None, None),
    ("not_a_mapping", "- just\n- a list\n", "invalid_type", "", 1, 1),
    (
        "emit_cycle",
        HEAD
        + "triggers:\n  - type: event\n    eventName: order.created\nsteps:\n  - action: emit\n    params: {eventName: order.created}\n",
        "emit_cycle",
        "steps[0].params.eventName",
        8,
        25,
    ),
    (
        "script_tag",
        HEAD + "description: '<script>alert(1)</script>'\n",
        "forbidden_construct",
        "description",
        3,
        14,
    ),
    (
        "email_body_and_template",
        HEAD
        + "steps:\n  - action: send_email\n    params: {to: a@b.co, subject: s, body: b, template: {id: 1}}\n",
        "invalid_value",
        "steps[0].params",
        5,
        13,
    ),
    ("snake_case_key", HEAD + "max_retries: 3\n", "unknown_field", "max_retries", 3, 1),
]


@pytest.mark.parametrize(
    ("text", "code", "path", "line", "column"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_input_gets_one_precise_error(text, code, path, line, column):
    assert errors_of(text) == [(code, path, line, column)]


def test_at_least_twenty_malformed_cases_are_covered():
    assert len(MALFORMED) >= 20


def test_alias_bomb_is_rejected_without_expanding():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 2) + "]"
        for i in range(18)
    ]
    errors = errors_of(HEAD + "\n".join(lines) + "\n")
    assert [e[0] for e in errors] == ["alias_limit"]


def test_too_many_aliases_is_rejected():
    text = HEAD + "tags: &t [x]\n" + "".join(f"k{i}: *t\n" for i in range(21))
    assert [e[0] for e in errors_of(text)] == ["alias_limit"]


def test_oversized_document_is_rejected_before_parsing():
    text = HEAD + "description: '" + "x" * (256 * 1024) + "'\n"
    assert errors_of(text) == [("too_large", "", None, None)]


def test_invalid_utf8_is_rejected():
    with pytest.raises(PlaybookInvalid) as caught:
        load_text(b"name: \xff\n")
    assert caught.value.errors[0].code == "invalid_encoding"


def test_deep_nesting_is_rejected():
    text = HEAD + "description: " + "[" * 25 + "]" * 25 + "\n"
    assert [e[0] for e in errors_of(text)] == ["too_deep"]


def test_several_schema_errors_are_all_reported_sorted_by_position():
    text = "name: T\nagent: nobody\nmaxRetries: 99\ncolour: red\n"
    assert errors_of(text) == [
        ("invalid_enum", "agent", 2, 8),
        ("invalid_value", "maxRetries", 3, 13),
        ("unknown_field", "colour", 4, 1),
    ]


def test_server_managed_keys_are_ignored_with_a_warning():
    result = load_text(HEAD + "requiresApproval: false\nstatus: active\n")
    assert [(w.code, w.path, w.line) for w in result.warnings if w.code == "ignored_field"] == [
        ("ignored_field", "requiresApproval", 3),
        ("ignored_field", "status", 4),
    ]


def test_missing_steps_is_a_draft_with_a_warning():
    result = load_text("name: Draft\nagent: craig\n")
    assert result.definition.steps == []
    assert {(w.code, w.message.split(":")[0]) for w in result.warnings} == {
        ("missing_field", "no steps"),
        ("missing_field", "no triggers"),
    }


def test_complete_example_is_valid_and_requires_approval():
    result = load_text((DATA / "post_purchase_example.yaml").read_text())
    assert result.requires_approval is True
    assert [s.id for s in result.definition.steps] == [
        "compose",
        "pause",
        "email",
        "text",
        "tell_team",
    ]
    assert result.warnings == []


def test_alias_event_name_is_stored_canonical():
    text = (
        HEAD
        + f"triggers:\n  - type: event\n    eventName: customer.created\nsteps:\n  - action: notify\n    params: {NOTIFY}\n"
    )
    trigger = load_text(text).definition.triggers[0]
    assert trigger.model_dump()["eventName"] == "customer.signup"
    assert trigger.id == "trigger_1"


def test_json_input_has_no_positions():
    with pytest.raises(PlaybookInvalid) as caught:
        load_data({"name": "T", "agent": "craig", "bogus": 1})
    assert [(e.code, e.path, e.line, e.column) for e in caught.value.errors] == [
        ("unknown_field", "bogus", None, None)
    ]


def test_export_then_load_gives_an_equal_playbook():
    original = load_text((DATA / "post_purchase_example.yaml").read_text()).definition
    exported = dump_yaml(original, header=["id: pb_x", "version: 1"])
    reloaded = load_text(exported).definition
    assert reloaded == original
    assert dump_yaml(reloaded) == dump_yaml(original)
