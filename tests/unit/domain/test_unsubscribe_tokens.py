"""Unsubscribe tokens (consent.md §4): they round-trip, and nothing else is ever accepted."""

import base64
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import is_plain_id
from playbook_core.domain.unsubscribe_tokens import CODE, UnsubscribeClaim, decode, encode

KEY = "k" * 32
OTHER = "o" * 32
CLAIM = UnsubscribeClaim("org_a", "em:ada@example.com", "email", "dl_9a8b")
plain = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.:-", min_size=1, max_size=40).filter(
    is_plain_id  # what a token may carry: no `.`, `..` or `__x__`
)
identities = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300)
claims = st.builds(
    UnsubscribeClaim, plain, identities, st.sampled_from(["email", "sms"]), st.none() | plain
)


def refused(token, keys=(KEY,)):
    with pytest.raises(BadRequest) as caught:
        decode(token, keys)
    assert caught.value.code == CODE
    return True


@given(claims)
def test_every_claim_round_trips(claim):
    token = encode(claim, KEY)
    assert decode(token, [KEY]) == claim
    assert token.isascii()
    assert not {" ", "="} & set(token)


def test_rotation_the_old_key_still_verifies_and_a_stranger_does_not():
    old = encode(CLAIM, OTHER)
    assert decode(old, [KEY, OTHER]) == CLAIM
    assert refused(old, [KEY])


@given(claims, st.data())
def test_any_single_change_to_a_token_is_refused(claim, data):
    token = encode(claim, KEY)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("AZaz09-_.=+/ "))
    assume(token[index] != replacement)
    tampered = token[:index] + replacement + token[index + 1 :]
    try:
        decoded = decode(tampered, [KEY])
    except BadRequest as error:
        decoded, code = None, error.code
    else:  # base64's last character can carry unused bits: the same bytes, the same claim
        code = None
    assert decoded == claim if code is None else code == CODE


@given(st.text(max_size=200))
def test_garbage_is_refused_never_an_error(text):
    try:
        decode(text, [KEY])
    except BadRequest as error:
        code = error.code
    else:
        code = "accepted"
    assert code == CODE


def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_signed_payload_we_would_not_have_written_is_refused():
    from playbook_core.domain import unsubscribe_tokens

    for fields in (
        {"c": "email", "i": "em:a@b.c", "o": "org_a", "x": 1},  # an extra field
        {"c": "push", "i": "em:a@b.c", "o": "org_a"},  # an unknown channel
        {"c": "email", "i": "em:a@b.c", "o": "a/b"},  # an org id no document can have
        {"c": "email", "i": "", "o": "org_a"},
        {"c": "email", "i": "em:a@b.c", "o": "org_a", "d": None},  # not canonical: d omitted
    ):
        payload = b64(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
        token = f"{payload}.{unsubscribe_tokens._signature(KEY, payload)}"
        assert refused(token)
    padded = encode(CLAIM, KEY).replace(".", "==.", 1)
    assert refused(padded)


def test_a_claim_no_token_may_carry_and_a_short_key_are_refused_when_signing():
    with pytest.raises(ValueError, match="plain"):
        encode(UnsubscribeClaim("a/b", "em:x", "email"), KEY)
    with pytest.raises(ValueError, match="at least"):
        encode(CLAIM, "short")
    with pytest.raises(ValueError, match="no unsubscribe key"):
        decode(encode(CLAIM, KEY), [])


def test_an_overlong_token_is_refused_before_any_work():
    assert refused("a" * 5000 + "." + "b")
