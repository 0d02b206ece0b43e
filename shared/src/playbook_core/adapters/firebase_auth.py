"""Firebase ID tokens: Google's keys in production; unsigned tokens only for the local emulator."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from playbook_core.domain.errors import Unauthenticated

ISSUER = "https://securetoken.google.com/"


def _b64url_json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Unauthenticated("the token is not a JWT") from exc
    if not isinstance(value, dict):
        raise Unauthenticated("the token is not a JWT")
    return value


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
        "iat": now, "exp": now + 3600, "role": role,
    }  # fmt: skip
    if org_ids:
        claims["orgId"] = org_ids[0]
        claims["orgIds"] = org_ids
    claims.update(extra)
    return claims


class EmulatorTokens:
    """Accepts unsigned tokens: constructed only when FIREBASE_AUTH_EMULATOR_HOST is configured."""

    def __init__(self, project: str) -> None:
        self.project = project

    def verify(self, token: str) -> dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:  # header.payload.signature
            raise Unauthenticated("the token is not a JWT")
        header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        if header.get("alg") != "none":
            raise Unauthenticated("only unsigned emulator tokens are accepted locally")
        if claims.get("aud") != self.project or claims.get("iss") != ISSUER + self.project:
            raise Unauthenticated("the token is for another project")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise Unauthenticated("the token has expired")
        if not claims.get("sub"):
            raise Unauthenticated("the token has no subject")
        return claims


class FirebaseTokens:
    """Verifies signatures, audience, issuer and expiry against Google's published keys."""

    def __init__(self, project: str) -> None:
        self.project = project

    def verify(self, token: str) -> dict[str, Any]:
        from google.auth import exceptions  # noqa: PLC0415 - cold-start cost only when used
        from google.auth.transport import requests  # noqa: PLC0415
        from google.oauth2 import id_token  # noqa: PLC0415

        try:
            claims = id_token.verify_firebase_token(  # type: ignore[no-untyped-call]
                token, requests.Request(), audience=self.project
            )
        except (ValueError, exceptions.GoogleAuthError) as exc:
            raise Unauthenticated("the ID token could not be verified") from exc
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER + self.project:
            raise Unauthenticated("the token is for another project")
        return claims
