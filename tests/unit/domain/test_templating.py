import pytest

from playbook_core.domain import templating
from playbook_core.domain.templating import TemplateError, UnresolvedVariable, parse, render


@pytest.mark.parametrize(
    ("text", "message_start"),
    [
        ("{{ customer.email | lower }}", "filters are not allowed"),
        ("{{ __import__('os').system('id') }}", "function calls are not allowed"),
        ("{{ a + b }}", "expressions are not allowed"),
        ("{{ customer['email'] }}", "expressions are not allowed"),
        ("{{ secrets.token }}", "unknown placeholder root"),
        ("{{ customer.email", "a '{{' placeholder is not closed"),
        ("{% if x %}", "template markers"),
        ("{# comment #}", "template markers"),
        ("{{ }}", "a placeholder must name a path"),
        ("{{ customer..email }}", "'customer..email' is not a dotted path"),
        ("{{ {{ customer.email }} }}", "placeholders cannot be nested"),
        ("{{ event." + ".".join(["a"] * 10) + " }}", "a placeholder path may be at most 10"),
    ],
)
def test_anything_but_a_dotted_path_is_rejected(text, message_start):
    with pytest.raises(TemplateError) as caught:
        parse(text)
    assert str(caught.value).startswith(message_start)


def test_more_than_fifty_placeholders_is_rejected():
    with pytest.raises(TemplateError):
        parse("{{ customer.a }}" * 51)


def test_single_braces_are_plain_text():
    assert parse("a {b} c") == []


def test_whole_placeholder_yields_typed_value():
    context = {"event": {"data": {"lineItems": [{"sku": "A"}], "total": 20}}}
    assert render("{{ event.data.lineItems }}", context) == [{"sku": "A"}]
    assert render(" {{ event.data.total }} ", context) == 20


def test_embedded_placeholders_are_stringified():
    context = {"customer": {"vip": True, "tags": ["a", "b"], "n": 1.5}}
    text = "vip={{ customer.vip }} tags={{ customer.tags }} n={{ customer.n }}"
    assert render(text, context) == 'vip=true tags=["a","b"] n=1.5'


def test_array_index_segments():
    assert render("{{ event.items.1 }}", {"event": {"items": ["x", "y"]}}) == "y"


def test_html_values_are_escaped_when_asked():
    context = {"customer": {"name": "<b>Tom & 'Jerry'</b>"}}
    assert render("Hi {{ customer.name }}", context, html_escape=True) == (
        "Hi &lt;b&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/b&gt;"
    )


def test_unresolved_is_an_error_when_strict_and_empty_otherwise():
    with pytest.raises(UnresolvedVariable) as caught:
        render("Hi {{ customer.name }}", {"customer": {}})
    assert caught.value.path == "customer.name"
    assert render("Hi {{ customer.name }}", {}, strict=False) == "Hi "
    assert render("{{ customer.name }}", {}, strict=False) is None


def test_render_never_evaluates_text():
    text = "{{ customer.name }} __import__('os')"
    assert render(text, {"customer": {"name": "x"}}) == "x __import__('os')"


def test_render_value_walks_free_maps():
    value = {"a": ["{{ org.name }}", 3], "b": {"c": "x {{ org.name }}"}}
    assert templating.render_value(value, {"org": {"name": "Acme"}}, strict=True) == {
        "a": ["Acme", 3],
        "b": {"c": "x Acme"},
    }
