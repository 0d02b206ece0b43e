"""The unsubscribe link end to end (consent.md §4) through `email_unsubscribe`, on both stores.

POST (RFC 8058 one-click) records an email revocation; GET only shows the button; anything but a
token we signed is a 4xx problem+json that writes nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from playbook_core.domain.collections import CUSTOMERS
from playbook_core.service.compliance.consent import current_consent, record_consent
from tests.integration.consent.conftest import PUBLIC_BASE

ONE_CLICK = {"data": "List-Unsubscribe=One-Click",
             "content_type": "application/x-www-form-urlencoded"}  # fmt: skip
ADA = "em:ada@example.com"


def link(rig, identity=ADA, delivery="dl_1", org=None):
    return rig.app.unsubscribe_links.link(
        org_id=org or rig.org, identity_key=identity, delivery_id=delivery
    )


def token_of(url):
    return parse_qs(urlsplit(url).query)["token"][0]


def post(rig, token, **options):
    headers = {"User-Agent": "Mail/1.0 (one-click)", **options.pop("headers", {})}
    return rig.client("email_unsubscribe").post(
        "/", query_string={"token": token}, headers=headers, **{**ONE_CLICK, **options}
    )


def email_consent(rig, identity=ADA):
    return current_consent(rig.store, org_id=rig.org, identity_key=identity, channel="email")


def test_the_link_and_headers_point_at_the_public_function(rig):
    url = link(rig)
    assert url.startswith(f"{PUBLIC_BASE}/email_unsubscribe?token=")
    headers = rig.app.unsubscribe_links.headers(
        org_id=rig.org, identity_key=ADA, delivery_id="dl_1"
    )
    assert headers == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_one_click_post_revokes_email_once(rig):
    rig.store.set(CUSTOMERS, f"cus_{rig.org}", {"orgId": rig.org, "email": "ada@example.com"})
    token = token_of(link(rig))
    answered = post(rig, token)
    assert answered.status_code == 200
    assert answered.get_json() == {"unsubscribed": True, "already": False}
    assert answered.headers["Cache-Control"] == "no-store"
    current = email_consent(rig)
    assert (current["state"], current["source"], current["method"]) == (
        "revoked", "unsubscribe_link", "one-click unsubscribe",
    )  # fmt: skip
    assert current["customerId"] == f"cus_{rig.org}"
    assert current["userAgent"] == "Mail/1.0 (one-click)"
    assert current["ip"] == "127.0.0.1"
    again = post(rig, token)
    assert again.status_code == 200
    assert again.get_json()["already"] is True
    assert len(rig.records()) == 1


def test_a_regrant_can_be_revoked_again_by_the_same_link(rig):
    token = token_of(link(rig))
    post(rig, token)
    rig.clock.advance(days=1)
    record_consent(
        rig.store, rig.clock, rig.app.ids, org_id=rig.org, identity_key=ADA, customer_id=None,
        channel="email", state="granted", source="form", method="preference centre",
        disclosure="Email me offers",
    )  # fmt: skip
    rig.clock.advance(minutes=1)
    assert post(rig, token).get_json()["already"] is False
    assert email_consent(rig)["state"] == "revoked"
    assert sorted(r["state"] for r in rig.records()) == ["granted", "revoked", "revoked"]


def test_get_shows_a_form_and_never_unsubscribes(rig):
    token = token_of(link(rig))
    for _ in range(3):  # a scanner prefetching the link, twice, and the person
        page = rig.client("email_unsubscribe").get("/", query_string={"token": token})
        assert page.status_code == 200
        assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<form method="post"' in html
    assert 'name="List-Unsubscribe" value="One-Click"' in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert rig.records() == []


def test_the_pages_button_posts_and_answers_a_page(rig):
    token = token_of(link(rig))
    answered = post(rig, token, headers={"Accept": "text/html,application/xhtml+xml"})
    assert answered.status_code == 200
    assert "You are unsubscribed" in answered.get_data(as_text=True)
    assert email_consent(rig)["state"] == "revoked"


def tampered(token):
    payload, signature = token.split(".")
    return f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda _: "", 400),
        (lambda _: "garbage", 400),
        (tampered, 400),
        (lambda token: token + ".x", 400),
        (lambda token: token.split(".")[0], 400),
        (lambda _: "é" * 10 + "." + "a", 400),
        (lambda _: "a" * 5000, 400),
    ],
    ids=["missing", "garbage", "tampered", "extra-part", "unsigned", "non-ascii", "overlong"],
)
def test_a_bad_token_is_a_4xx_problem_and_writes_nothing(rig, make, status):
    bad = make(token_of(link(rig)))
    before = rig.trace()
    for method in ("get", "post"):
        answered = getattr(rig.client("email_unsubscribe"), method)(
            "/",
            query_string={"token": bad} if bad else {},
            **(ONE_CLICK if method == "post" else {}),
        )
        assert answered.status_code == status
        assert answered.mimetype == "application/problem+json"
        assert answered.get_json()["type"].endswith("/invalid-unsubscribe-token")
    assert rig.trace() == before


def test_another_keys_token_is_refused(rig):
    from playbook_core.service.compliance.unsubscribe import unsubscribe_link

    forged = unsubscribe_link(
        base_url=PUBLIC_BASE, org_id=rig.org, identity_key=ADA, delivery_id="dl_1",
        key="an-attackers-own-key-0123456789",
    )  # fmt: skip
    assert post(rig, token_of(forged)).status_code == 400
    assert rig.records() == []


@pytest.mark.parametrize(
    "options",
    [
        {"data": ""},
        {"data": "List-Unsubscribe=Yes"},
        {"data": "anything"},
        {"data": b"\xff\xfe"},
        {"data": "List-Unsubscribe=One-Click&" + "x=1&" * 400},
        {"data": "List-Unsubscribe=One-Click&List-Unsubscribe=One-Click"},
    ],
    ids=["empty", "wrong-value", "not-a-form", "not-utf8", "too-large", "repeated"],
)
def test_a_post_without_the_one_click_body_is_refused_and_writes_nothing(rig, options):
    answered = post(rig, token_of(link(rig)), **options)
    assert answered.status_code in (400, 413)
    assert answered.mimetype == "application/problem+json"
    assert rig.records() == []


def test_other_methods_are_405(rig):
    token = token_of(link(rig))
    answered = rig.client("email_unsubscribe").put("/", query_string={"token": token})
    assert answered.status_code == 405
    assert answered.mimetype == "application/problem+json"


def test_a_rotated_key_keeps_old_links_working(rig):
    old = token_of(link(rig))
    keys = f"a-brand-new-key-0123456789abcdef,{rig.app.settings.unsubscribe_key.get_secret_value()}"
    rig.app.settings = rig.app.settings.model_copy(update={"unsubscribe_key": SecretStr(keys)})
    assert token_of(link(rig)) != old  # the new key signs
    assert post(rig, old).status_code == 200


def test_without_a_key_the_function_is_unavailable_and_writes_nothing(rig):
    token = token_of(link(rig))
    rig.app.settings = rig.app.settings.model_copy(update={"unsubscribe_key": None})
    assert rig.app.unsubscribe_links is None  # the send pipeline can make no link
    answered = post(rig, token)
    assert answered.status_code == 503
    assert answered.mimetype == "application/problem+json"
    assert rig.records() == []


def test_a_key_too_short_to_be_one_is_no_key(rig):
    token = token_of(link(rig))
    rig.app.settings = rig.app.settings.model_copy(update={"unsubscribe_key": SecretStr("short")})
    assert rig.app.unsubscribe_links is None
    assert post(rig, token).status_code == 503
    assert rig.records() == []
