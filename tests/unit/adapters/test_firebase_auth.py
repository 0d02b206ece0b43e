"""EmulatorTokens accepts exactly what the Firebase Auth emulator issues, and nothing more.

GOOD is a token of firebase-tools 15.34.2's Auth emulator (after accounts:update set custom
claims), field for field; tests/e2e/test_auth_emulator.py takes real ones from the emulator.
"""

import base64
import json

import pytest

from playbook_core.adapters.firebase_auth import (
    EmulatorTokens,
    local_claims,
    unsigned_token,
)
from playbook_core.domain.errors import Unauthenticated

PROJECT = "demo-playbooks"
NOW = 1_796_217_873
GOOD = {
    "role": "brand_admin", "orgId": "org_a", "email": "a@example.com", "email_verified": False,
    "auth_time": NOW, "user_id": "YWzORo61ftlnNLSSVWadb0UpN71S",
    "firebase": {"identities": {"email": ["a@example.com"]}, "sign_in_provider": "password"},
    "iat": NOW, "exp": NOW + 3600, "aud": PROJECT,
    "iss": f"https://securetoken.google.com/{PROJECT}", "sub": "YWzORo61ftlnNLSSVWadb0UpN71S",
}  # fmt: skip
HEADER = {"alg": "none", "typ": "JWT"}


def b64(value):
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims=None, header=None, signature=""):
    return f"{b64(header or HEADER)}.{b64(GOOD if claims is None else claims)}.{signature}"


def verify(token, now=NOW + 60):
    return EmulatorTokens(PROJECT, clock=lambda: now).verify(token)


def changed(**changes):
    claims = {**GOOD, **changes}
    return {name: value for name, value in claims.items() if value is not None}


def test_the_emulators_token_is_accepted_with_its_custom_claims_at_the_top_level():
    claims = verify(jwt())
    assert claims == GOOD
    assert (claims["role"], claims["orgId"], claims["sub"]) == ("brand_admin", "org_a", GOOD["sub"])


def test_the_local_token_helpers_mint_what_the_emulator_issues():
    token = unsigned_token(local_claims(PROJECT, "uid-1", "brand", ["org_a", "org_b"]))
    header, _, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == HEADER
    assert signature == ""
    claims = EmulatorTokens(PROJECT).verify(token)  # the real clock
    assert {name: claims[name] for name in ("sub", "user_id", "role", "orgIds")} == {
        "sub": "uid-1", "user_id": "uid-1", "role": "brand", "orgIds": ["org_a", "org_b"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(jwt(changed(aud="demo-other")), id="another project's audience"),
        pytest.param(
            jwt(changed(iss="https://securetoken.google.com/demo-other")), id="another issuer"
        ),
        pytest.param(
            jwt(changed(aud="demo-other", iss="https://securetoken.google.com/demo-other")),
            id="a whole token of another project",
        ),
        pytest.param(jwt(changed(aud=[PROJECT])), id="audience as a list"),
        pytest.param(jwt(changed(iss="https://accounts.google.com")), id="a Google OIDC issuer"),
        pytest.param(jwt(changed(aud=None)), id="no audience"),
    ],
)
def test_a_token_for_another_project_is_refused(token):
    with pytest.raises(Unauthenticated, match="another project"):
        verify(token)


@pytest.mark.parametrize(
    ("header", "signature"),
    [
        pytest.param({"alg": "RS256", "typ": "JWT", "kid": "k"}, "c2ln", id="signed"),
        pytest.param(HEADER, "c2ln", id="alg none with a signature"),
        pytest.param({"alg": "None", "typ": "JWT"}, "", id="alg None"),
        pytest.param({"alg": "none"}, "", id="no typ"),
        pytest.param({"alg": "none", "typ": "JWS"}, "", id="another typ"),
        pytest.param({"typ": "JWT"}, "", id="no alg"),
    ],
)
def test_anything_but_the_emulators_unsigned_header_and_empty_signature_is_refused(
    header, signature
):
    with pytest.raises(Unauthenticated, match="only unsigned emulator tokens"):
        verify(jwt(header=header, signature=signature))


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        pytest.param(changed(exp=NOW - 1), "expired", id="expired"),
        pytest.param(changed(exp=None), "expired", id="no exp"),
        pytest.param(changed(exp=str(NOW + 3600)), "expired", id="exp as a string"),
        pytest.param(changed(exp=True), "expired", id="exp as a bool"),
        pytest.param(changed(exp=float(NOW + 3600)), "expired", id="exp as a float"),
        pytest.param(changed(iat=None), "iat", id="no iat"),
        pytest.param(changed(iat=NOW + 3600), "iat", id="issued in the future"),
        pytest.param(changed(iat="x"), "iat", id="iat not a time"),
        pytest.param(changed(auth_time=None), "auth_time", id="no auth_time"),
        pytest.param(changed(auth_time=NOW + 3600), "auth_time", id="signed in in the future"),
        pytest.param(changed(sub=None), "subject", id="no sub"),
        pytest.param(changed(sub=""), "subject", id="empty sub"),
        pytest.param(changed(sub=42), "subject", id="numeric sub"),
        pytest.param(changed(sub={"uid": "u"}), "subject", id="object sub"),
        pytest.param(changed(sub="u" * 129), "subject", id="sub longer than a Firebase uid"),
    ],
)
def test_times_and_subject_are_held_to_what_the_emulator_writes(claims, message):
    with pytest.raises(Unauthenticated, match=message):
        verify(jwt(claims))


def test_the_clock_allows_ten_seconds_of_skew_on_issue_times_and_none_past_expiry():
    assert verify(jwt(changed(iat=NOW + 10, auth_time=NOW + 10)), now=NOW)
    with pytest.raises(Unauthenticated, match="iat"):
        verify(jwt(changed(iat=NOW + 11)), now=NOW)
    assert verify(jwt(), now=NOW + 3600)
    with pytest.raises(Unauthenticated, match="expired"):
        verify(jwt(), now=NOW + 3600.5)
    assert verify(jwt(changed(sub="u" * 128)))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        f"{b64(HEADER)}.{b64(b'[]')}.",
        f"{b64(b'[1]')}.{b64(GOOD)}.",
        f"{b64(HEADER)}.%%%.",
        f"{b64(HEADER)}.{b64(b'not json')}.",
    ],
)
def test_what_is_no_jwt_is_refused_as_such(token):
    with pytest.raises(Unauthenticated, match="not a JWT"):
        verify(token)
