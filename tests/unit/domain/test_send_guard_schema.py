"""`guard: {inStock: …}` on send steps: what loads, and each refusal with its position."""

import pytest

from playbook_core.domain.errors import PlaybookInvalid
from playbook_core.domain.loading import dump_yaml, load_text

HEAD = (
    "name: T\nagent: craig\ntriggers: [{type: event, eventName: inventory.new_product}]\nsteps:\n"
)
EMAIL = '    params: {to: "{{ customer.email }}", subject: Back, body: It is back}\n'
SMS = '    params: {to: "{{ customer.phone }}", body: It is back}\n'


def step(action, guard, params=EMAIL):
    return HEAD + f"  - id: s\n    action: {action}\n    guard: {guard}\n" + params


def errors_of(text):
    with pytest.raises(PlaybookInvalid) as caught:
        load_text(text)
    return [(e.code, e.path, e.line, e.column, e.message) for e in caught.value.errors]


@pytest.mark.parametrize(("action", "params"), [("send_email", EMAIL), ("send_sms", SMS)])
def test_both_send_actions_take_a_guard(action, params):
    validated = load_text(step(action, '{inStock: "{{ event.data.productId }}"}', params))
    document = validated.definition.to_document()
    assert document["steps"][0]["guard"] == {"inStock": "{{ event.data.productId }}"}
    assert validated.warnings == []


def test_an_unguarded_send_stores_no_guard():
    document = load_text(HEAD + "  - action: send_email\n" + EMAIL).definition.to_document()
    assert "guard" not in document["steps"][0]


def test_a_literal_id_may_be_written_as_a_number_and_is_kept_as_text():
    document = load_text(step("send_email", "{inStock: 8123456}")).definition.to_document()
    assert document["steps"][0]["guard"] == {"inStock": "8123456"}


def test_the_guard_survives_export_and_import_unchanged():
    first = load_text(step("send_sms", '{inStock: " {{ steps.pick.output.id }} "}', SMS).replace(
        "steps:\n", "steps:\n  - {id: pick, action: delegate, params: {agent: craig, task: Pick}}\n"
    ))  # fmt: skip
    exported = dump_yaml(first.definition)
    again = load_text(exported)
    assert dump_yaml(again.definition) == exported
    assert again.definition.steps[1].guard.in_stock == "{{ steps.pick.output.id }}"  # trimmed


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("notify", '    params: {channel: dashboard, to: "role:admin", message: hi}\n'),
        ("delegate", "    params: {agent: craig, task: Write}\n"),
        ("wait", "    params: {duration: 1h}\n"),
    ],
)
def test_a_guard_on_a_step_that_sends_nothing_is_refused_at_the_key(action, params):
    assert errors_of(step(action, "{inStock: p1}", params)) == [
        (
            "invalid_field_for_action",
            "steps[0].guard",
            7,
            5,
            "'guard' is only allowed on send_email and send_sms steps",
        )
    ]


@pytest.mark.parametrize(
    ("guard", "expected"),
    [
        ('{inStock: ""}', ("invalid_value", "steps[0].guard.inStock", 7, 22)),
        ('{inStock: "   "}', ("invalid_value", "steps[0].guard.inStock", 7, 22)),
        ("{}", ("missing_field", "steps[0].guard.inStock", 7, 12)),
        ("{inStock: p1, sku: x}", ("unknown_field", "steps[0].guard.sku", 7, 26)),
        ("{inStock: [p1, p2]}", ("invalid_type", "steps[0].guard.inStock", 7, 22)),
        ("{inStock: true}", ("invalid_type", "steps[0].guard.inStock", 7, 22)),
        ("p1", ("invalid_type", "steps[0].guard", 7, 12)),
        (
            '{inStock: "{{ event.data.productId | lower }}"}',
            ("invalid_template", "steps[0].guard.inStock", 7, 22),
        ),
        (
            '{inStock: "{{ steps.later.output.id }}"}',
            ("invalid_reference", "steps[0].guard.inStock", 7, 22),
        ),
        ('{inStock: "p1\\np2"}', ("invalid_value", "steps[0].guard.inStock", 7, 22)),
        ('{inStock: "{% if x %}"}', ("invalid_template", "steps[0].guard.inStock", 7, 22)),
    ],
)
def test_a_bad_guard_is_refused_with_its_path_line_and_column(guard, expected):
    assert [issue[:4] for issue in errors_of(step("send_email", guard))] == [expected]


def test_a_guard_that_looks_like_code_is_refused():
    found = errors_of(step("send_email", '{inStock: "eval(1)"}'))
    assert [issue[:2] for issue in found] == [("forbidden_construct", "steps[0].guard.inStock")]


def test_an_empty_guard_says_what_it_is_for():
    [(_, _, _, _, message)] = errors_of(step("send_email", '{inStock: ""}'))
    assert message == "inStock names the product the send promotes: an id or a placeholder"
