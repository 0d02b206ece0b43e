"""Input gaps (hardening issue, defect 7): text that must be refused however it is written."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain import strict_json
from playbook_core.domain.errors import BadRequest, PayloadTooLarge, PlaybookInvalid
from playbook_core.domain.loading import load_data, load_text
from playbook_core.domain.text import CONTROL, LINE_BREAK, one_line, utf8
from playbook_core.service.authoring.versions_and_templates import parse_import
from playbook_core.service.execution.actions import ActionContext
from playbook_core.service.execution.deliveries import render_message

HEAD = "name: T\nagent: craig\n"
EMAIL = (
    "steps:\n"
    "  - action: send_email\n"
    '    params: {to: "{{ customer.email }}", subject: "Hi {{ customer.firstName }}", body: B}\n'
)
# Every character the rule refuses: C0 but tab/LF/CR, DEL, C1 (NEL included), U+2028, U+2029.
REFUSED = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n\r"]
REFUSED += ["\u2028", "\u2029"]


def issues(text=None, data=None):
    with pytest.raises(PlaybookInvalid) as caught:
        load_text(text) if data is None else load_data(data)
    return [(e.code, e.path, e.line, e.column) for e in caught.value.errors]


# --- escaped control characters ----------------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\0", "\\a", "\\x07", "\\u0000", "\\e", "\\N", "\\L", "\\P"])
def test_yaml_escapes_that_make_control_characters_are_refused_with_a_position(escape):
    # Was: the rule looked at raw text only, so "\0" in a double-quoted scalar became a NUL.
    text = f'name: "Sale{escape}"\nagent: craig\n'
    assert issues(text) == [("invalid_encoding", "name", 1, 7)]


def test_json_escaped_nul_is_refused_with_its_path():
    data = json.loads('{"name": "T", "agent": "craig", "tags": ["ok", "b\\u0000d"]}')
    assert issues(data=data) == [("invalid_encoding", "tags[1]", None, None)]


def test_escaped_controls_in_keys_and_deep_values_are_refused():
    text = HEAD + 'steps:\n  - action: delegate\n    params: {agent: pops, task: "a\\x1bb"}\n'
    assert issues(text) == [("invalid_encoding", "steps[0].params.task", 5, 33)]
    assert issues(HEAD + '"na\\0me": x\n') == [("invalid_encoding", "na\x00me", 3, 1)]


def test_raw_nel_and_line_separator_are_refused_where_they_stand():
    # Was: YAML reads them as line breaks: a confusing syntax error, or a U+2028 kept in a value.
    assert issues(HEAD + 'description: "x\u2028y"\n') == [("invalid_encoding", "", 3, 16)]
    assert issues("name: a\x85b\nagent: craig\n") == [("invalid_encoding", "", 1, 8)]


def test_multi_line_fields_keep_newlines_and_one_line_fields_refuse_them():
    step = "steps:\n  - action: send_email\n    params:\n      to: a@b.co\n      body: |\n        1\n        2\n"
    folded = HEAD + "description: |\n  one\n  two\n" + step + "      subject: >\n        Folded\n"
    assert load_text(folded).definition.steps[0].params.subject == "Folded\n"  # YAML's final LF
    broken = HEAD + step + '      subject: "S\\r\\nBcc: x@evil.io"\n'
    assert issues(broken) == [("invalid_value", "steps[0].params.subject", 10, 16)]


@given(
    text=st.text(max_size=20),
    bad=st.sampled_from(REFUSED),
    field=st.sampled_from(["name", "description"]),
)
def test_no_string_with_a_control_character_is_accepted(text, bad, field):
    data = {"name": "T", "agent": "craig", field: text[:10] + bad + text[10:]}
    with pytest.raises(PlaybookInvalid) as caught:
        load_data(data)
    assert (caught.value.errors[0].code, caught.value.errors[0].path) == ("invalid_encoding", field)


def test_the_catalog_idiom_of_plain_unicode_text_still_loads():
    assert load_text(HEAD + "description: Café — 20% off ✨\n").definition.description


# --- subjects ------------------------------------------------------------------------------------


def render_subject(first_name):
    definition = load_text(HEAD + EMAIL).definition
    ctx = ActionContext(
        execution={}, definition=definition, index=0, attempt=1, previous=None,
        render={"customer": {"email": "jo@x.io", "firstName": first_name}},
        now=datetime(2026, 11, 24, tzinfo=UTC),
    )  # fmt: skip
    step = definition.steps[0]
    return render_message("email", step.params, step.params.to, ctx, "US").subject


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\x0c", "\x85", "\u2028", "\r\n", "\t"])
def test_customer_data_cannot_put_a_control_character_into_a_subject(bad):
    # Was: only CR and LF were replaced; NUL, VT, FF, NEL and U+2028 reached the header.
    assert render_subject(f"Jo{bad}Bcc: x@evil.io") == "Hi Jo Bcc: x@evil.io"


@given(st.text())
def test_no_string_with_a_control_character_survives_into_a_subject(name):
    subject = render_subject(name)
    assert not CONTROL.search(subject)
    assert not LINE_BREAK.search(subject)


SMS = (
    "steps:\n"
    "  - action: send_sms\n"
    '    params: {to: "+14155550100", body: "Hi {{ customer.firstName }}", transactional: true}\n'
)


@given(st.text())
def test_an_sms_body_keeps_line_feeds_and_no_other_control_character(name):
    definition = load_text(HEAD + SMS).definition
    ctx = ActionContext(
        execution={}, definition=definition, index=0, attempt=1, previous=None,
        render={"customer": {"firstName": name}}, now=datetime(2026, 11, 24, tzinfo=UTC),
    )  # fmt: skip
    step = definition.steps[0]
    body = render_message("sms", step.params, step.params.to, ctx, "US").body
    assert not CONTROL.search(body)
    assert body.count("\n") == name.count("\n")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))))
def test_one_line_leaves_ordinary_text_alone_but_for_the_ends(text):
    assert one_line(text) == text.strip()


# --- strict JSON ---------------------------------------------------------------------------------


def test_json_duplicate_keys_are_found_with_path_line_and_column_first_value_kept():
    data, repeated = strict_json.decode(b'[{"name": "a"},\n {"steps": [{"id": 1, "id": 2}]}]')
    assert data == [{"name": "a"}, {"steps": [{"id": 1}]}]
    assert [(i.code, i.path, i.line, i.column, i.message) for i in repeated] == [
        ("duplicate_key", "[1].steps[0].id", 2, 23, "'id' appears twice")
    ]
    grouped = strict_json.by_document(repeated, array=True)
    assert [(index, [i.path for i in found]) for index, found in grouped.items()] == [
        (1, ["steps[0].id"])
    ]


def test_json_and_yaml_duplicates_are_the_same_issue():
    yaml_issue = issues('{"name": "a", "agent": "craig", "name": "b"}')
    with pytest.raises(strict_json.RepeatedKeys) as caught:
        strict_json.loads('{"name": "a", "agent": "craig", "name": "b"}')
    json_issue = [(e.code, e.path, e.line, e.column) for e in caught.value.issues]
    assert json_issue == yaml_issue == [("duplicate_key", "name", 1, 33)]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"a": NaN}', "NaN and Infinity are not JSON numbers (line 1, column 7)"),
        (b'{"a": [-Infinity]}', "(line 1, column 8)"),
        (b'{"a": "\\ud800"}', "unpaired surrogate escape (line 1, column 7)"),
        (b'{"a": "\\\\ud800\\udc00"}', "unpaired surrogate"),
        (b'{"a":\n "\xff"}', "not valid UTF-8 (line 2, column 3)"),
        (b"1" * 5000, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b'{"a": 1,}', "not valid JSON"),
    ],
)
def test_json_that_is_not_interoperable_text_is_a_400_with_a_position(body, says):
    with pytest.raises(BadRequest) as caught:
        strict_json.loads(body)
    assert says in caught.value.detail


def test_escaped_surrogate_pairs_and_a_byte_order_mark_are_fine():
    assert strict_json.loads('\ufeff{"e": "\\ud83d\\ude00", "k": "\\\\ud800"}') == {
        "e": "\U0001f600",
        "k": "\\ud800",
    }


# --- UTF-8 and the import --------------------------------------------------------------------------


def test_invalid_utf8_is_reported_at_its_line_and_column():
    assert issues(b"name: T\nagent: cr\xe9ig\n") == [("invalid_encoding", "", 2, 10)]
    with pytest.raises(ValueError, match="line 1, column 2"):
        utf8("é".encode() + b"\x80")


def test_import_refuses_invalid_utf8_instead_of_replacing_it():
    # Was: decoded with errors="replace": U+FFFD written into the imported playbook.
    with pytest.raises(PlaybookInvalid) as caught:
        parse_import(
            b"name: ok\nagent: craig\n---\nname: caf\xe9\nagent: craig\n", "application/yaml"
        )
    assert [(e.code, e.line, e.column) for e in caught.value.errors] == [
        ("invalid_encoding", 4, 10)
    ]


@pytest.mark.parametrize("kind", ["application/yaml", "application/json"])
def test_import_of_more_than_200_documents_is_refused_not_truncated(kind):
    # Was: documents 201 and on were dropped without a word.
    docs = [{"name": f"P{n}", "agent": "craig"} for n in range(201)]
    body = json.dumps(docs) if "json" in kind else "\n---\n".join(json.dumps(d) for d in docs)
    with pytest.raises(PayloadTooLarge) as caught:
        parse_import(body.encode(), kind)
    assert "at most 200 documents and this one has 201" in caught.value.detail
    assert len(parse_import(json.dumps(docs[:200]).encode(), "application/json")) == 200


def test_json_import_fails_only_the_document_with_a_repeated_key():
    body = b'[{"name": "A", "agent": "craig"}, {"name": "B", "agent": "craig", "agent": "leo"}]'
    first, second = parse_import(body, "application/json")
    assert not isinstance(first[1], list)
    assert second[0] == 1
    assert [(e.code, e.path, e.line, e.column) for e in second[1]] == [
        ("duplicate_key", "agent", 1, 67)
    ]


def test_a_repeated_yaml_key_in_the_json_wrapper_refuses_the_import():
    with pytest.raises(PlaybookInvalid) as caught:
        parse_import(b'{"yaml": "name: A\\nagent: craig\\n", "yaml": ""}', "application/json")
    assert [(e.code, e.path) for e in caught.value.errors] == [("duplicate_key", "yaml")]
