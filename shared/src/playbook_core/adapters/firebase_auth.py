"""Firebase ID tokens: Google's keys in production; unsigned tokens only for the local emulator."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from playbook_core.adapters.service_tokens import CachedCertsRequest, require_rs256_with_kid
from playbook_core.domain.errors import Unauthenticated, Unavailable

ISSUER = "https://securetoken.google.com/"
MAX_SUBJECT = 128  # Firebase uids; the Admin SDKs refuse a longer `sub`
CLOCK_SKEW_S = 10  # as service_tokens: the emulator runs on this machine, on this clock


def _b64url_json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Unauthenticated("the token is not a JWT") from exc
    if not isinstance(value, dict):
        raise Unauthenticated("the token is not a JWT")
    return value


def _seconds(value: Any) -> TypeGuard[int]:
    """A JWT NumericDate as Firebase writes it: an int (a bool is no timestamp)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _require_subject(claims: dict[str, Any]) -> None:
    """Firebase's uid: a string of 1–128 characters (the Admin SDKs refuse any other)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
        raise Unauthenticated("the token has no subject")


def unsigned_token(claims: dict[str, Any]) -> str:
    """An `alg: none` token as the Firebase Auth emulator issues them (local use only)."""

    def encode(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{encode({'alg': 'none', 'typ': 'JWT'})}.{encode(claims)}."


def local_claims(
    project: str, uid: str, role: str, org_ids: list[str], **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER + project, "aud": project, "sub": uid, "user_id": uid,
        "auth_time": now, "iat": now, "exp": now + 3600, "role": role,
    }  # fmt: skip
    if org_ids:
        claims["orgId"] = org_ids[0]
        claims["orgIds"] = org_ids
    claims.update(extra)
    return claims


class EmulatorTokens:
    """Accepts unsigned tokens: constructed only when FIREBASE_AUTH_EMULATOR_HOST is configured.

    Exactly what the Firebase Auth emulator issues (firebase-tools, docs/operations.md §17):
    header `{"alg": "none", "typ": "JWT"}`, an empty signature, `iss`
    `https://securetoken.google.com/<project>` and `aud` `<project>` of this project, `sub` a
    string of 1–128 characters, integer `iat`/`auth_time` not in the future and `exp` not past;
    custom claims (`role`, `orgId`, …) at the top level. Every check FirebaseTokens makes
    deployed, but the signature: the emulator signs nothing.
    """

    def __init__(self, project: str, clock: Callable[[], float] = time.time) -> None:
        self.project = project
        self._clock = clock

    def verify(self, token: str) -> dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:  # header.payload.signature
            raise Unauthenticated("the token is not a JWT")
        header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        if header.get("alg") != "none" or header.get("typ") != "JWT" or parts[2]:
            raise Unauthenticated("only unsigned emulator tokens are accepted locally")
        if claims.get("aud") != self.project or claims.get("iss") != ISSUER + self.project:
            raise Unauthenticated("the token is for another project")
        now = self._clock()
        if not _seconds(claims.get("exp")) or claims["exp"] < now:
            raise Unauthenticated("the token has expired")
        for name in ("iat", "auth_time"):
            if not _seconds(claims.get(name)) or claims[name] > now + CLOCK_SKEW_S:
                raise Unauthenticated(f"the token's {name} is missing or in the future")
        _require_subject(claims)
        return claims


class FirebaseTokens:
    """Verifies Firebase ID tokens as Firebase documents them.

    RS256 signature by a key of `certs_url` (chosen by `kid`), audience and issuer of this
    project, `exp`/`iat`, `auth_time` in the past and a non-empty `sub`. The certificates are
    fetched once per instance per 5 minutes, and again for a key they lack (at most every 30 s).
    """

    def __init__(
        self, project: str, certs_url: str, clock: Callable[[], float] = time.time
    ) -> None:

        self.project = project
        self._certs_url = certs_url
        self._clock = clock
        self._request = CachedCertsRequest(300.0, clock)

    def verify(self, token: str) -> dict[str, Any]:
        from google.auth import exceptions  # noqa: PLC0415 - cold-start cost only when used
        from google.oauth2 import id_token  # noqa: PLC0415

        self._request.expect_key(self._certs_url, require_rs256_with_kid(token))
        try:
            claims = id_token.verify_token(
                token, self._request, audience=self.project, certs_url=self._certs_url,
                clock_skew_in_seconds=CLOCK_SKEW_S,
            )  # fmt: skip
        except exceptions.TransportError as exc:  # not the caller's fault: 503, retry later
            raise Unavailable("Google's token keys are unreachable") from exc
        except (ValueError, exceptions.GoogleAuthError) as exc:
            raise Unauthenticated("the ID token could not be verified") from exc
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER + self.project:
            raise Unauthenticated("the token is for another project")
        auth_time = claims.get("auth_time")
        if not _seconds(auth_time) or auth_time > self._clock() + CLOCK_SKEW_S:
            raise Unauthenticated("the token's auth_time is missing or in the future")
        _require_subject(claims)
        return claims
