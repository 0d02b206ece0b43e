"""Page tokens: whatever a client sends back, the codec answers with values or BadRequest."""

import base64
import json
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from playbook_core.domain import page_tokens
from playbook_core.domain.errors import BadRequest

_TAG_TEXT = st.sampled_from([
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59",
    "2026-11-24T12:00:00+00:00", "nan", "inf", "1e999", "",
]) | st.text(max_size=8)  # fmt: skip
_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | _TAG_TEXT
_JSON = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["$t", "$f", "$m", "v", "id", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _token(raw: object) -> str:
    text = json.dumps(raw, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@given(values=st.lists(_JSON, max_size=3), doc_id=_JSON)
@example(values=[{"$t": "0001-01-01T00:00:00+01:00"}], doc_id="d")  # was OverflowError: a 500
@example(values=[{"$f": 10**400}], doc_id="d")  # was OverflowError: a 500
def test_any_token_decodes_or_is_a_bad_request(values, doc_id):
    token = _token({"v": values, "id": doc_id})
    try:
        decoded = page_tokens.decode(token, any_id=True)
    except BadRequest as refused:  # anything else escaping here is a 500
        decoded, code = None, refused.code
    else:
        code = page_tokens.CODE
    assert code == page_tokens.CODE
    if decoded is not None:
        assert page_tokens.encode(*decoded) == token  # only a token encode could have made


def test_an_issued_token_round_trips():
    at = datetime(2026, 11, 24, 12, tzinfo=UTC)
    token = page_tokens.encode([at, 3, "x"], "pb_1")
    assert page_tokens.decode(token, 3) == ([at, 3, "x"], "pb_1")
