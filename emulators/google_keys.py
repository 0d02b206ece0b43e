"""Google's token keys, played locally: one RSA key, published the way Google publishes its own.

Deployed code verifies Firebase ID tokens and service accounts' OIDC ID tokens against
certificate endpoints (`{kid: x509 PEM}`). The deployed-shape tests point those endpoints
(`PLAYBOOKS_FIREBASE_CERTS_URL`, `PLAYBOOKS_GOOGLE_OIDC_CERTS_URL`) at this server and sign
tokens with its key: the Cloud Tasks and Scheduler emulators and the push relay with
`--signing-key`, the tests for the Firebase users they play. So the production verification runs
unchanged; only whose key it trusts differs.

    python -m emulators.google_keys --key KEY.pem [--port N]   → prints `ready http://…`
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt
from google.auth import jwt as google_jwt

from emulators.grpc_server import run_until_signalled
from playbook_core.adapters.firebase_auth import ISSUER

HOST = "127.0.0.1"
OIDC_CERTS_PATH = "/oauth2/v1/certs"
FIREBASE_CERTS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
TOKEN_LIFETIME_S = 3600


def write_key(path: Path) -> Path:
    """A new 2048-bit RSA private key (PKCS#8 PEM), readable by its owner only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def load_signer(path: str | Path) -> crypt.RSASigner:
    """The key at `path` as google-auth's signer, its `kid` derived from the public key."""
    pem = Path(path).read_bytes()
    return crypt.RSASigner.from_string(pem, key_id=key_id(pem))  # type: ignore[no-untyped-call,no-any-return]


def key_id(private_pem: bytes) -> str:
    """A stable `kid`: the same key file gives the same id in every process."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(public).hexdigest()[:40]


def certificates(private_pem: bytes) -> dict[str, str]:
    """`{kid: self-signed x509 PEM}`, the shape of both of Google's endpoints."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the signing key must be RSA (RS256)")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-google-keys")])
    today = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(today - timedelta(days=1)).not_valid_after(today + timedelta(days=7))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return {key_id(private_pem): cert.public_bytes(serialization.Encoding.PEM).decode()}


def firebase_token(
    signer: crypt.Signer, project: str, uid: str, now: float | None = None, **claims: Any
) -> str:
    """A Firebase ID token as Firebase Auth signs it: custom claims at the top level."""
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "iss": ISSUER + project, "aud": project, "sub": uid, "user_id": uid,
        "auth_time": issued, "iat": issued, "exp": issued + TOKEN_LIFETIME_S,
    }  # fmt: skip
    payload.update(claims)
    return bytes(google_jwt.encode(signer, payload)).decode()  # type: ignore[no-untyped-call]


class CertsServer:
    """Serves the certificates at Google's two paths; counts fetches (caching is observable)."""

    def __init__(self, private_pem: bytes, host: str = HOST, port: int = 0) -> None:
        self._published = certificates(private_pem)
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path not in (OIDC_CERTS_PATH, FIREBASE_CERTS_PATH):
                    self.send_error(404)
                    return
                owner.fetches += 1
                body = json.dumps(owner._published).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def publish(self, private_pem: bytes) -> None:
        """Serve this key's certificate too, as Google does ahead of signing with a new key."""
        self._published = {**self._published, **certificates(private_pem)}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def oidc_certs_url(self) -> str:
        return self.url + OIDC_CERTS_PATH

    @property
    def firebase_certs_url(self) -> str:
        return self.url + FIREBASE_CERTS_PATH

    def start(self) -> CertsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Google-style token certificates for a local key")
    parser.add_argument(
        "--key", required=True, help="the RSA private key (PEM) tokens are signed by"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = CertsServer(Path(args.key).read_bytes(), port=args.port).start()
    run_until_signalled(server.url, server.stop)


if __name__ == "__main__":
    main()
