"""Who called an internal entry point: the OIDC ID token of a Google service account.

Cloud Tasks, Cloud Scheduler and Pub/Sub push attach it as `Authorization: Bearer …` (issuer
accounts.google.com). Deployed, `GoogleServiceTokens` verifies it with google-auth against
Google's keys (or, in the deployed-shape tests, keys the tests publish, with our emulators
signing by them). Locally, our emulators and the in-process bus and queue attach unsigned
(`alg: none`) tokens with the same claims (`mint_unsigned`), and `LocalServiceTokens` checks those
claims the same way: audience, issuer, `exp`/`iat`/`nbf`, then the email. Only one of the two is
ever built (config decides).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from google.auth import crypt, transport

from playbook_core.domain.errors import Forbidden, Unauthenticated, Unavailable

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
TOKEN_LIFETIME_S = 3600  # what Google mints: one hour
CLOCK_SKEW_S = 10


@dataclass(frozen=True)
class OidcToken:
    """What a push config, job or task asks for: a token of this account for this audience.

    Without an audience, Google uses the target URL itself; so do we.
    """

    service_account_email: str
    audience: str | None = None

    def authorization(self, url: str, now: float, signer: crypt.Signer | None = None) -> str:
        """The header Google would attach; signed by `signer` (RS256) or else unsigned."""
        audience = self.audience or url
        if signer is None:
            return f"Bearer {mint_unsigned(self.service_account_email, audience, now)}"
        return f"Bearer {mint_signed(signer, self.service_account_email, audience, now)}"


def id_token_claims(email: str, audience: str, now: float) -> dict[str, Any]:
    """The claims Google puts in a service account's ID token."""
    issued = int(now)
    return {
        "iss": "https://accounts.google.com", "aud": audience, "azp": email, "sub": email,
        "email": email, "email_verified": True,
        "iat": issued, "nbf": issued, "exp": issued + TOKEN_LIFETIME_S,
    }  # fmt: skip


def mint_unsigned(email: str, audience: str, now: float) -> str:
    """An unsigned ID token with the claims Google puts in a service account's (local use only)."""

    def part(data: Mapping[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = id_token_claims(email, audience, now)
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def mint_signed(signer: crypt.Signer, email: str, audience: str, now: float) -> str:
    """The same token signed RS256 by a key of our own (the deployed-shape tests' emulators)."""
    from google.auth import jwt  # noqa: PLC0415

    token = jwt.encode(signer, id_token_claims(email, audience, now))  # type: ignore[no-untyped-call]
    return bytes(token).decode()


def function_audience(url: str, base_url: str | None) -> str | None:
    """`<base>/<function>/…` → `<base>/<function>`, the function's own URL; None elsewhere."""
    if not base_url:
        return None
    base = base_url.rstrip("/") + "/"
    if not url.startswith(base):
        return None
    function = url.removeprefix(base).split("/", 1)[0].split("?", 1)[0]
    return base + function if function else None


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthenticated."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an OIDC bearer token is required")
    return token.strip()


def _identity(claims: Mapping[str, Any], callers: Collection[str]) -> dict[str, Any]:
    """A token that verified is still refused unless it names one of the expected callers."""
    email = claims.get("email")
    if (
        not isinstance(email, str)
        or email not in callers
        or claims.get("email_verified") is not True
    ):
        raise Forbidden("the token's service account may not call this function")
    return dict(claims)


class LocalServiceTokens:
    """Unsigned tokens from the local emulators: built only under PLAYBOOKS_LOCAL_OIDC."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def verify(self, token: str, *, audience: str, callers: Collection[str]) -> dict[str, Any]:
        from google.auth import exceptions, jwt  # noqa: PLC0415 - cold-start cost only when used

        try:
            header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
            claims = jwt.decode(token, verify=False)  # type: ignore[no-untyped-call]
        except (ValueError, exceptions.GoogleAuthError) as exc:
            raise Unauthenticated("the token is not a JWT") from exc
        if header.get("alg") != "none":
            raise Unauthenticated("only the emulators' unsigned tokens are accepted locally")
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthenticated("the token was not issued by accounts.google.com")
        if claims.get("aud") != audience:
            raise Unauthenticated("the token is for another audience")
        now = self._clock()
        times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
        if not all(isinstance(times[name], int) for name in ("exp", "iat")):
            raise Unauthenticated("the token has no exp or iat")
        if times["nbf"] is not None and not isinstance(times["nbf"], int):
            raise Unauthenticated("the token's nbf is not a time")
        if now > times["exp"] + CLOCK_SKEW_S:
            raise Unauthenticated("the token has expired")
        if max(times["iat"], times["nbf"] or 0) > now + CLOCK_SKEW_S:
            raise Unauthenticated("the token is not valid yet")
        return _identity(claims, callers)


def require_rs256_with_kid(token: str) -> str:
    """Google signs ID tokens RS256 and names the key (`kid`): anything else is refused here.

    Without a `kid` google-auth would try every published certificate; Google and Firebase
    document the `kid` as required, so a token without one is not theirs.
    """
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
        raise Unauthenticated("the token is not a JWT") from exc
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        raise Unauthenticated("the token is not signed with RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated("the token names no signing key (kid)")
    return kid


class CachedCertsRequest(transport.Request):
    """google-auth's transport, remembering the certificates: one fetch per instance per TTL.

    Google rotates the signing keys with days of overlap; a fetch per call would add a round trip
    to every task and push. A token signed by a key the remembered certificates lack asks for
    them again (`expect_key`), at most once per REFETCH_AFTER_S: a key published just before its
    first use is accepted within that, not after the TTL, and made-up key ids cannot make us fetch
    more. A fetch that fails keeps the certificates we had, for as long as they were good.
    """

    REFETCH_AFTER_S = 30.0

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        from google.auth.transport import requests  # noqa: PLC0415

        self._inner = requests.Request()
        self._ttl_s, self._clock = ttl_s, clock
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[float, Any, frozenset[str]]] = {}  # (until, answer, kids)
        self._asked_at: dict[str, float] = {}  # the last fetch tried, answered or not
        self._stale: set[str] = set()  # a key they lack was asked for

    def expect_key(self, url: str, kid: str) -> None:
        """Mark the certificates of `url` stale if they lack `kid` and were asked for long ago."""
        with self._lock:
            hit = self._cached.get(url)
            if hit is None or kid in hit[2]:
                return
            if self._clock() >= self._asked_at[url] + self.REFETCH_AFTER_S:
                self._stale.add(url)

    def __call__(
        self,
        url: Any,
        method: Any = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = 10.0,  # bounded: a hung fetch must not hold the request
        **kwargs: Any,
    ) -> Any:
        from google.auth import exceptions  # noqa: PLC0415

        kwargs.update(body=body, headers=headers, timeout=timeout)
        if method != "GET" or body is not None:
            return self._inner(url, method=method, **kwargs)
        with self._lock:
            now = self._clock()
            hit = self._cached.get(url)
            good = hit if hit is not None and hit[0] > now else None
            if good is not None and url not in self._stale:
                return good[1]
            self._stale.discard(url)
            self._asked_at[url] = now
        try:
            response = self._inner(url, method=method, **kwargs)
        except exceptions.TransportError:
            if good is None:
                raise
            return good[1]
        if response.status != 200:  # only a good answer is remembered
            return response if good is None else good[1]
        kids = _key_ids(response)
        with self._lock:
            self._cached[url] = (self._clock() + self._ttl_s, response, kids)
        return response


def _key_ids(response: Any) -> frozenset[str]:
    """The key ids a certificates answer (`{kid: PEM}`) names, read once when it is kept."""
    try:
        published = json.loads(response.data)
    except (ValueError, TypeError, AttributeError):
        return frozenset()
    return frozenset(published) if isinstance(published, dict) else frozenset()


class GoogleServiceTokens:
    """Google-signed ID tokens, verified by google-auth (signature, `exp`/`iat`, audience).

    `certs_url` is Google's OAuth2 certificate endpoint (config); tests point it at their own keys.
    """

    def __init__(
        self,
        certs_url: str,
        *,
        certs_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._certs_url = certs_url
        self._request = CachedCertsRequest(certs_ttl_s, clock)

    def verify(self, token: str, *, audience: str, callers: Collection[str]) -> dict[str, Any]:
        from google.auth import exceptions  # noqa: PLC0415 - cold-start cost only when used
        from google.oauth2 import id_token  # noqa: PLC0415

        self._request.expect_key(self._certs_url, require_rs256_with_kid(token))
        try:
            claims = id_token.verify_token(
                token, self._request, audience=audience, certs_url=self._certs_url,
                clock_skew_in_seconds=CLOCK_SKEW_S,
            )  # fmt: skip
        except exceptions.TransportError as exc:  # not the caller's fault: answer 503, retry later
            raise Unavailable("Google's token keys are unreachable") from exc
        except (ValueError, exceptions.GoogleAuthError) as exc:
            raise Unauthenticated("the OIDC token could not be verified") from exc
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthenticated("the token was not issued by accounts.google.com")
        return _identity(claims, callers)
