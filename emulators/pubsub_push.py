"""Authenticated Pub/Sub push for the official emulator, which never sends a token itself.

The emulator keeps a push config's `oidc_token` but sends no Authorization header at all (checked
against emulator 0.8.20). The stack therefore points each push subscription at this relay,
`<relay>/push?endpoint=<function URL>`, with the subscription's `oidc_token` set as in
production. For every push the relay reads that subscription back from the emulator (its name is
in the push body), mints the token Google would attach (unsigned, `alg: none`, for
`oidc_token.audience` or else the endpoint) and forwards the body unchanged. It answers with the
function's own status, so acks, redelivery with backoff and dead-lettering stay the emulator's.

The emulator pushes at most 2 messages of a subscription at once (each subscription runs two push
loops, fixed in its code), where production push scales with the ack rate. So a subscription's
first push also starts `pullers` threads that do what the emulator's push loops do: pull one
message, forward it the same way, ack it on an ack status or else make it due again in 1 s, as a
failed push does. The emulator's backlog still counts every delivery and dead-letters.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
from collections import Counter
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
import httpx
from google.api_core import exceptions as gexc
from google.auth import crypt
from google.pubsub_v1 import ReceivedMessage, SubscriberClient, Subscription
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from emulators import grpc_server as gs
from emulators.grpc_server import run_until_signalled
from playbook_core.adapters.service_tokens import OidcToken

HOST = "127.0.0.1"
PATH = "/push"
_LOOKUP_TIMEOUT_S = 5.0
PULLERS = 6  # with the emulator's 2 push loops, 8 messages of a subscription at once
_PULL_WAIT_S = 20.0  # the emulator holds a pull open until a message comes, checking every 50 ms
_RETRY_AFTER_S = 1  # when the emulator pushes a message again after a refused push
ACK_STATUSES = frozenset({102, 200, 201, 202, 204})  # Pub/Sub push's acknowledgements


def relay_url(relay: str, endpoint: str) -> str:
    """The push endpoint to give a subscription so that `endpoint` receives its pushes."""
    return str(httpx.URL(f"{relay.rstrip('/')}{PATH}", params={"endpoint": endpoint}))


class PushRelay:
    """Forwards the emulator's pushes with the subscription's OIDC token (see the module doc)."""

    def __init__(
        self,
        pubsub_host: str,
        host: str = HOST,
        port: int = 0,
        signer: crypt.Signer | None = None,
    ) -> None:
        self._signer = signer  # signs the OIDC tokens (deployed-shape tests); None: unsigned
        self._pulling: Counter[str] = Counter()  # live pullers per subscription
        self._pulling_lock = threading.Lock()
        self._stopping = threading.Event()
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
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
        self._channel.close()

    def forward(self, path: str, body: bytes, content_type: str | None) -> int:
        """The endpoint's status for one push; the emulator pushes again unless it is 2xx.

        400 for a request that is not a relayed push, 502 when the subscription or the endpoint
        cannot be reached.
        """
        endpoint = _endpoint(path)
        if endpoint is None:
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
        self._pull_too(subscription)
        return self._post(found, endpoint, body, content_type)

    def _post(
        self, found: Subscription, endpoint: str, body: bytes, content_type: str | None
    ) -> int:
        headers = {"Content-Type": content_type or "application/json"}
        deadline = found.ack_deadline_seconds  # Pub/Sub's push deadline; 0 means the default
        if "oidc_token" in found.push_config:
            given = found.push_config.oidc_token
            token = OidcToken(given.service_account_email, given.audience or None)
            headers["Authorization"] = token.authorization(endpoint, time.time(), self._signer)
        try:
            answer = self._http.post(
                endpoint, content=body, headers=headers, timeout=max(deadline, 10)
            )
        except httpx.HTTPError:
            return 502
        return answer.status_code

    def _pull_too(self, subscription: str) -> None:
        with self._pulling_lock:
            if self._stopping.is_set():
                return
            missing = PULLERS - self._pulling[subscription]
            self._pulling[subscription] += missing
        for _ in range(missing):
            threading.Thread(target=self._pull_loop, args=(subscription,), daemon=True).start()

    def _pull_loop(self, subscription: str) -> None:
        try:
            self._pull_while_relayed(subscription)
        finally:
            with self._pulling_lock:
                self._pulling[subscription] -= 1

    def _pull_while_relayed(self, subscription: str) -> None:
        while not self._stopping.is_set():
            try:
                pulled = self._subscriber.pull(
                    subscription=subscription, max_messages=1, timeout=_PULL_WAIT_S
                )
            except gexc.DeadlineExceeded:
                continue
            except gexc.NotFound:  # deleted or reset: a new subscription's first push restarts us
                return
            except (gexc.GoogleAPIError, ValueError):  # ValueError: the channel closed on stop
                if self._stopping.wait(_RETRY_AFTER_S):
                    return
                continue
            for received in pulled.received_messages:
                if not self._push_pulled(subscription, received):
                    return

    def _push_pulled(self, subscription: str, received: ReceivedMessage) -> bool:
        """Forward one pulled message as the emulator pushes it.

        False once this relay no longer serves the subscription: the message is handed back.
        """
        try:
            found = self._subscriber.get_subscription(
                subscription=subscription, timeout=_LOOKUP_TIMEOUT_S
            )
            endpoint = _endpoint(found.push_config.push_endpoint, relay=self.url)
            if endpoint is None:
                self._release([received.ack_id], subscription, after_s=0)
                return False
            status = self._post(found, endpoint, push_body(subscription, received), None)
            if status in ACK_STATUSES:
                self._subscriber.acknowledge(
                    subscription=subscription, ack_ids=[received.ack_id], timeout=_LOOKUP_TIMEOUT_S
                )
            else:
                self._release([received.ack_id], subscription, after_s=_RETRY_AFTER_S)
        except gexc.GoogleAPIError:
            pass  # its lease runs out and the emulator hands it out again
        return True

    def _release(self, ack_ids: list[str], subscription: str, *, after_s: int) -> None:
        self._subscriber.modify_ack_deadline(
            subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=after_s,
            timeout=_LOOKUP_TIMEOUT_S,
        )  # fmt: skip


def _endpoint(path_or_url: str, relay: str | None = None) -> str | None:
    """The function URL that a relay URL (or its path) names.

    None when it names none, or when `relay` is given and the URL is not that relay's.
    """
    parts = urlsplit(path_or_url)
    if relay is not None and f"{parts.scheme}://{parts.netloc}" != relay:
        return None
    endpoints = parse_qs(parts.query).get("endpoint", [])
    if parts.path != PATH or len(endpoints) != 1:
        return None
    return endpoints[0]


def push_body(subscription: str, received: ReceivedMessage) -> bytes:
    """The JSON the emulator pushes for a message (HttpEndpointPusher.toJsonStringForPush)."""
    message = received.message
    published = message.publish_time.astimezone(UTC)
    stamp = published.strftime("%Y-%m-%dT%H:%M:%S.") + f"{published.microsecond // 1000:03d}Z"
    wrapped = {
        "attributes": dict(message.attributes),
        "data": base64.b64encode(message.data).decode(),
        "messageId": message.message_id,
        "message_id": message.message_id,
        "publishTime": stamp,
        "publish_time": stamp,
    }
    return json.dumps({"message": wrapped, "subscription": subscription}).encode()


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
