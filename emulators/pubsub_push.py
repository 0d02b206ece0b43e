"""Authenticated Pub/Sub push for the official emulator, which never sends a token itself.

The emulator keeps a push config's `oidc_token` but sends no Authorization header at all (checked
against emulator 0.8.20). The stack therefore points each push subscription at this relay,
`<relay>/push?endpoint=<function URL>`, with the subscription's `oidc_token` set as in
production. For every push the relay reads that subscription back from the emulator (its name is
in the push body), mints the token Google would attach (unsigned, `alg: none`, for
`oidc_token.audience` or else the endpoint) and forwards the body unchanged. It answers with the
function's own status, so acks, redelivery with backoff and dead-lettering stay the emulator's.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
import httpx
from google.api_core import exceptions as gexc
from google.auth import crypt
from google.pubsub_v1 import SubscriberClient
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from emulators import grpc_server as gs
from emulators.grpc_server import run_until_signalled
from playbook_core.adapters.service_tokens import OidcToken

HOST = "127.0.0.1"
PATH = "/push"
_LOOKUP_TIMEOUT_S = 5.0


def relay_url(relay: str, endpoint: str) -> str:
    """The push endpoint to give a subscription so that `endpoint` receives its pushes."""
    return str(httpx.URL(f"{relay.rstrip('/')}{PATH}", params={"endpoint": endpoint}))


class PushRelay:
    """Forwards the emulator's pushes with the subscription's OIDC token (see the module doc)."""

    def __init__(
        self, pubsub_host: str, host: str = HOST, port: int = 0, signer: crypt.Signer | None = None
    ) -> None:
        self._signer = signer  # signs the OIDC tokens (deployed-shape tests); None: unsigned
        self._channel = grpc.insecure_channel(pubsub_host)  # the emulator needs no credentials
        self._subscriber = SubscriberClient(
            transport=SubscriberGrpcTransport(channel=self._channel)
        )
        self._http = httpx.Client(trust_env=False)  # never route local pushes through a proxy
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = relay.forward(self.path, body, self.headers.get("Content-Type"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet: the gateway logs every request it receives."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> PushRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
        self._channel.close()

    def forward(self, path: str, body: bytes, content_type: str | None) -> int:
        """The endpoint's status for one push; the emulator pushes again unless it is 2xx.

        400 for a request that is not a relayed push, 502 when the subscription or the endpoint
        cannot be reached.
        """
        parts = urlsplit(path)
        endpoints = parse_qs(parts.query).get("endpoint", [])
        if parts.path != PATH or len(endpoints) != 1:
            return 400
        try:
            subscription = json.loads(body)["subscription"]
        except (ValueError, KeyError, TypeError):
            return 400
        try:
            found = self._subscriber.get_subscription(
                subscription=subscription, timeout=_LOOKUP_TIMEOUT_S
            )
        except gexc.GoogleAPIError:
            return 502
        headers = {"Content-Type": content_type or "application/json"}
        deadline = found.ack_deadline_seconds  # Pub/Sub's push deadline; 0 means the default
        if "oidc_token" in found.push_config:
            given = found.push_config.oidc_token
            token = OidcToken(given.service_account_email, given.audience or None)
            headers["Authorization"] = token.authorization(endpoints[0], time.time(), self._signer)
        try:
            answer = self._http.post(
                endpoints[0], content=body, headers=headers, timeout=max(deadline, 10)
            )
        except httpx.HTTPError:
            return 502
        return answer.status_code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OIDC-authenticated push for the Pub/Sub emulator")
    parser.add_argument("--pubsub-host", required=True, help="the Pub/Sub emulator's host:port")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--signing-key", help="sign tokens with this RSA key (PEM); else unsigned")
    args = parser.parse_args(argv)
    signer = gs.signer_from(args.signing_key)
    relay = PushRelay(args.pubsub_host, port=args.port, signer=signer).start()
    run_until_signalled(relay.url, relay.stop)


if __name__ == "__main__":
    main()
