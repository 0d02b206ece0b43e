"""Deployed mode's Firebase ID token verification, run for real against keys we publish ourselves.

`FirebaseTokens` is what production builds; only its certificate URL points at
`emulators.google_keys` instead of Google's. Every refusal is a separate case.
"""

import time

import pytest
from google.auth import crypt

from emulators.google_keys import (
    CertsServer,
    firebase_token,
    key_id,
    load_signer,
    write_key,
)
from playbook_core.adapters.firebase_auth import FirebaseTokens, unsigned_token
from playbook_core.config import ConfigError, Settings
from playbook_core.domain.errors import Unauthenticated, Unavailable
from playbook_core.runtime import bootstrap

PROJECT = "prod-1"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    key = write_key(folder / "google.pem")
    other = write_key(folder / "other.pem")
    server = CertsServer(key.read_bytes()).start()
    yield {"server": server, "signer": load_signer(key), "other": other, "key": key}
    server.stop()


def now(offset=0):
    return int(time.time()) + offset


def test_a_token_signed_by_the_published_key_passes_and_the_keys_are_fetched_once(keys):
    verifier = FirebaseTokens(PROJECT, keys["server"].firebase_certs_url)
    before = keys["server"].fetches
    for uid in ("u1", "u2", "u3"):
        token = firebase_token(keys["signer"], PROJECT, uid, role="editor", orgId="org_a")
        claims = verifier.verify(token)
        assert (claims["sub"], claims["role"], claims["orgId"]) == (uid, "editor", "org_a")
    assert keys["server"].fetches - before == 1


def other_key_same_kid(keys):
    # Another key claiming the published key's id: only the signature can tell them apart.
    pem = keys["other"].read_bytes()
    return crypt.RSASigner.from_string(pem, key_id=keys["signer"].key_id)


def other_key_own_kid(keys):
    pem = keys["other"].read_bytes()
    return crypt.RSASigner.from_string(pem, key_id=key_id(pem))


def published_key_without_kid(keys):
    # The published key itself, but a header naming no key: google-auth would try them all.
    return crypt.RSASigner.from_string(keys["key"].read_bytes(), key_id=None)


REFUSED = {
    "no kid": lambda k: firebase_token(published_key_without_kid(k), PROJECT, "u"),
    "wrong signature": lambda k: firebase_token(other_key_same_kid(k), PROJECT, "u"),
    "unknown kid": lambda k: firebase_token(other_key_own_kid(k), PROJECT, "u"),
    "issuer": lambda k: firebase_token(
        k["signer"], PROJECT, "u", iss="https://securetoken.google.com/other"
    ),
    "audience": lambda k: firebase_token(k["signer"], PROJECT, "u", aud="other"),
    "expired": lambda k: firebase_token(k["signer"], PROJECT, "u", now=now(-7200)),
    "issued in the future": lambda k: firebase_token(k["signer"], PROJECT, "u", iat=now(600)),
    "auth_time in the future": lambda k: firebase_token(
        k["signer"], PROJECT, "u", auth_time=now(600)
    ),
    "auth_time missing": lambda k: firebase_token(k["signer"], PROJECT, "u", auth_time=None),
    "empty subject": lambda k: firebase_token(k["signer"], PROJECT, ""),
    "unsigned (the emulator's)": lambda _k: unsigned_token(
        {
            "iss": f"https://securetoken.google.com/{PROJECT}",
            "aud": PROJECT,
            "sub": "u",
            "auth_time": now(),
            "iat": now(),
            "exp": now(3600),
        }
    ),
    "garbage": lambda _k: "not.a.jwt",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused(keys, case):
    verifier = FirebaseTokens(PROJECT, keys["server"].firebase_certs_url)
    with pytest.raises(Unauthenticated):
        verifier.verify(REFUSED[case](keys))


def test_unreachable_keys_are_a_503_not_a_verdict_on_the_user(keys):
    token = firebase_token(keys["signer"], PROJECT, "u")
    with pytest.raises(Unavailable):
        FirebaseTokens(PROJECT, "http://127.0.0.1:9/certs").verify(token)


def test_deployed_settings_verify_against_the_configured_certificates(keys, monkeypatch):
    monkeypatch.setenv("K_SERVICE", "playbooks_api")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("PLAYBOOKS_FIREBASE_CERTS_URL", keys["server"].firebase_certs_url)
    verifier = bootstrap._token_verifier(Settings())
    assert isinstance(verifier, FirebaseTokens)
    assert verifier.verify(firebase_token(keys["signer"], PROJECT, "u"))["sub"] == "u"


@pytest.mark.parametrize(
    ("url", "deployed", "refused"),
    [
        ("http://evil.example/certs", False, True),
        ("http://127.0.0.1@evil.example/certs", False, True),
        ("file:///etc/certs.json", False, True),
        ("https://keys.example/certs", False, False),
        ("https://keys.example/certs", True, True),
        ("http://127.0.0.1:9/certs", True, False),
    ],
)
def test_the_certificate_urls_are_https_or_loopback_and_googles_when_deployed(
    monkeypatch, url, deployed, refused
):
    monkeypatch.setenv("PLAYBOOKS_FIREBASE_CERTS_URL", url)
    if deployed:
        monkeypatch.setenv("K_SERVICE", "playbooks-api")
    if refused:
        with pytest.raises(ConfigError, match="PLAYBOOKS_FIREBASE_CERTS_URL"):
            Settings()
    else:
        assert Settings().firebase_certs_url == url
