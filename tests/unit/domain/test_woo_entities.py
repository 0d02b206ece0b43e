"""WooCommerce signs with wp_specialchars_decode($secret, ENT_QUOTES) (domain.md §6.1 row 5).

The table follows WordPress's documented behaviour (wp-includes/formatting.php): the named
entities &amp; &lt; &gt; &quot; (case-sensitive), decimal &#39; &#34; &#60; &#62; &#38; with any
number of leading zeros, and hex &#x27; &#x22; &#x26; (zeros allowed, `x` in either case), all in
one pass. Nothing else is decoded: not &nbsp;, not &apos;, not hex < and >, not other code points.
"""

import pytest

from playbook_core.domain.webhooks import candidate_keys, decode_woo_entities, signature_matches
from playbook_core.domain.webhooks import signature as sign

DECODED = [
    # named
    ("&amp;", "&"),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    # decimal, as WordPress stores them and zero-padded or not
    ("&#038;", "&"),
    ("&#38;", "&"),
    ("&#0038;", "&"),
    ("&#000000038;", "&"),
    ("&#060;", "<"),
    ("&#60;", "<"),
    ("&#062;", ">"),
    ("&#62;", ">"),
    ("&#034;", '"'),
    ("&#34;", '"'),
    ("&#039;", "'"),
    ("&#39;", "'"),
    ("&#0039;", "'"),
    # hex: only ' " and &
    ("&#x26;", "&"),
    ("&#X26;", "&"),
    ("&#x026;", "&"),
    ("&#x22;", '"'),
    ("&#X0022;", '"'),
    ("&#x27;", "'"),
    ("&#X27;", "'"),
]
KEPT = [
    "&nbsp;",
    "&apos;",
    "&AMP;",  # named entities are case-sensitive (strtr)
    "&Amp;",
    "&LT;",
    "&#065;",  # A: not one of the five
    "&#x41;",
    "&#x3c;",  # WordPress has no hex form for < and >
    "&#x3e;",
    "&#X3C;",
    "&#39",  # no semicolon
    "&amp",
    "&#x;",
    "&#;",
    "& amp;",
    "&#-38;",
    "&#+38;",
    "&#3 8;",
    "&#380;",  # a different code point, not 38 followed by 0
    "&#x260;",
    "&#0x26;",
    "&#x-26;",
    "",
    "no entities at all",
]


@pytest.mark.parametrize(("stored", "decoded"), DECODED)
def test_each_form_wordpress_decodes(stored, decoded):
    assert decode_woo_entities(stored) == decoded
    assert decode_woo_entities(f"a{stored}b") == f"a{decoded}b"


@pytest.mark.parametrize("stored", KEPT)
def test_everything_else_is_kept_as_is(stored):
    assert decode_woo_entities(stored) == stored


@pytest.mark.parametrize(
    ("stored", "decoded"),
    [
        ("&amp;lt;", "&lt;"),  # one pass: the & it produces starts nothing
        ("&#038;lt;", "&lt;"),
        ("&#x26;#38;", "&#38;"),
        ("&amp;amp;", "&amp;"),
        ("&&amp;;", "&&;"),
        ("&#038;&#038;", "&&"),
        ("a&#038;b&lt;c&#X22;d&#0039;e&gt;f", "a&b<c\"d'e>f"),
        ("&#038;&nbsp;&#065;", "&&nbsp;&#065;"),
    ],
)
def test_one_pass_over_mixed_text(stored, decoded):
    assert decode_woo_entities(stored) == decoded


def test_a_secret_stored_with_numeric_entities_verifies_what_woocommerce_signs():
    body = b'{"id":1}'
    for stored, signing in [
        ("abc&#038;def", "abc&def"),
        ("abc&#x26;def", "abc&def"),
        ("q&#034;t&#x22;", 'q"t"'),
        ("lt&#060;gt&#062;", "lt<gt>"),
        ("it&#039;s&#x27;", "it's'"),
        ("pad&#0038;", "pad&"),
    ]:
        assert candidate_keys(stored, "woocommerce") == [stored, signing]
        assert signature_matches(body, sign(signing, body), [stored], "woocommerce")
        assert not signature_matches(body, sign(signing, body), [stored], "shopify")


def test_an_entity_wordpress_keeps_is_not_decoded_for_signing():
    body = b'{"id":1}'
    assert candidate_keys("abc&#065;def", "woocommerce") == ["abc&#065;def"]
    assert not signature_matches(body, sign("abcAdef", body), ["abc&#065;def"], "woocommerce")
