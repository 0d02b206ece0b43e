"""Inbound SMS (consent.md §3): keywords in any casing and spacing, the signature, the one reply."""

import json
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.sms_inbound import (
    MAX_SMS,
    START_WORDS,
    STOP_WORDS,
    confirmation_claim_id,
    keyword,
    parse_inbound,
    receipt_id,
    signature,
    signature_matches,
    stop_confirmation,
)

SPACE = st.text(" \t\r\n", max_size=4)


@st.composite
def spelled(draw, words):
    """One of `words` in random casing, with random whitespace around it and inside it."""
    word = draw(st.sampled_from(words))
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)
    inner = draw(st.text(" \t", min_size=1, max_size=3))
    return draw(SPACE) + cased.replace(" ", inner) + draw(SPACE)


@given(spelled(STOP_WORDS))
def test_every_stop_word_in_any_casing_and_spacing_is_stop(text):
    assert keyword(text) == "stop"


@given(spelled(START_WORDS))
def test_every_start_word_in_any_casing_and_spacing_is_start(text):
    assert keyword(text) == "start"


@given(spelled(STOP_WORDS), st.sampled_from([".", "!", "!!", " .", "?"]))
def test_trailing_punctuation_does_not_hide_an_opt_out(text, mark):
    assert keyword(text + mark) == "stop"


@pytest.mark.parametrize("text", ["optout", "Opt-Out", "stop all", "S T O P", "OPT  OUT"])
def test_an_opt_out_spelled_loosely_still_counts(text):
    # Reading an opt-out too widely costs nothing; missing one is a violation.
    expected = None if text == "Opt-Out" else "stop"
    assert keyword(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "please stop", "stop by the store", "STOP STOP", "yes please", "Y E S",
     "startx", "unsubscribe me", "stopp", "end.of.story", "hello"],
)  # fmt: skip
def test_other_texts_are_no_keyword(text):
    assert keyword(text) is None


@given(st.text(alphabet=string.ascii_letters + " ", max_size=30))
def test_a_keyword_is_the_whole_message_or_nothing(text):
    found = keyword(text)
    squeezed = re.sub(r"\s+", "", text).casefold()
    if found == "stop":
        assert squeezed in {w.replace(" ", "").casefold() for w in STOP_WORDS}
    elif found == "start":
        assert " ".join(text.split()).casefold() in {w.casefold() for w in START_WORDS}


@given(st.text(max_size=300))
def test_the_confirmation_fits_one_sms_whatever_the_brand(brand):
    text = stop_confirmation(brand)
    assert len(text) <= MAX_SMS
    assert text.startswith("You are unsubscribed from ")
    assert text.endswith(". No more messages will be sent. Reply START to resubscribe.")


def test_the_confirmation_names_the_brand():
    assert stop_confirmation("Green Leaf") == (
        "You are unsubscribed from Green Leaf. No more messages will be sent. "
        "Reply START to resubscribe."
    )
    assert "this sender" in stop_confirmation("   ")


def test_the_signature_is_hex_hmac_sha256_of_the_raw_body():
    body = b'{"id":"m1","from":"+14155550101","to":"+14155550199","body":"STOP"}'
    # Computed independently: printf '%s' "$body" | openssl dgst -sha256 -hmac s3cret
    assert signature("s3cret", body) == (
        "d4840f91fbb35459479d10ba018ea3dedc524d9fe2afbab539f9f53a153b3c7d"
    )
    signed = signature("s3cret", body)
    assert signature_matches(body, signed, ["other", "s3cret"])
    assert signature_matches(body, signed.upper(), ["s3cret"])  # hex is case-insensitive
    assert not signature_matches(body + b" ", signed, ["s3cret"])
    assert not signature_matches(body, signed, ["wrong"])
    assert not signature_matches(body, signed, [])
    assert not signature_matches(body, "not-hex", ["s3cret"])


@given(st.binary(max_size=64), st.text(max_size=80))
def test_no_garbled_header_matches(body, header):
    assert not signature_matches(body, header, ["s3cret"]) or header.strip().lower() == signature(
        "s3cret", body
    )


def inbound(**fields):
    return {"id": "m1", "from": "+14155550101", "to": "+14155550199", "body": "STOP",
            "receivedAt": "2026-11-24T12:00:00Z", **fields}  # fmt: skip


def test_a_message_parses_with_numbers_in_e164():
    message, sender, ours = parse_inbound(inbound(**{"from": "(415) 555-0101"}), "US")
    assert (message.id, message.body, sender, ours) == (
        "m1",
        "STOP",
        "+14155550101",
        "+14155550199",
    )
    parsed, _, _ = parse_inbound(inbound(extra="ignored"), "US")  # later fields are ignored
    assert parsed.id == "m1"


@pytest.mark.parametrize(
    "changes",
    [{"id": ""}, {"id": "a/b"}, {"id": 5}, {"from": "12"}, {"to": None}, {"body": 1},
     {"body": "x" * 1601}, {"receivedAt": "yesterday"}, {"receivedAt": "2026-11-24T12:00:00"}],
)  # fmt: skip
def test_a_malformed_message_is_a_bad_request(changes):
    with pytest.raises(BadRequest):
        parse_inbound(inbound(**changes), "US")


@pytest.mark.parametrize("data", [None, [], "STOP", json.dumps(inbound())])
def test_anything_but_an_object_is_a_bad_request(data):
    with pytest.raises(BadRequest):
        parse_inbound(data, "US")


def test_ids_are_per_org_and_per_message():
    assert receipt_id("org_a", "m1") != receipt_id("org_b", "m1")
    assert receipt_id("org_a", "m1") != receipt_id("org_a", "m2")
    assert confirmation_claim_id("org_a", "+1") != confirmation_claim_id("org_b", "+1")
