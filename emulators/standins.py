"""Local stand-ins for Mailjet, Blackleaf, the agent harness, Slack and the store APIs (§11.5)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from emulators.standin_blackleaf import BlackleafStandIn
from emulators.standin_harness import HarnessStandIn
from emulators.standin_mailjet import MailjetStandIn
from emulators.standin_masking import MaskingStandIn
from emulators.standin_server import StandIn
from emulators.standin_shopify_admin import TOKEN_HEADER, ShopifyAdminStandIn
from emulators.standin_slack import SlackStandIn
from emulators.standin_woocommerce_api import WooCommerceApiStandIn

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = [
    "BLACKLEAF_TEST_KEY",
    "HARNESS_TEST_TOKEN",
    "MAILJET_TEST_KEY",
    "MAILJET_TEST_SECRET",
    "SHOPIFY_ADMIN_TEST_TOKEN",
    "WOOCOMMERCE_TEST_CONSUMER_KEY",
    "WOOCOMMERCE_TEST_CONSUMER_SECRET",
    "StandIn",
    "main",
    "start_agents",
    "start_blackleaf",
    "start_mailjet",
    "start_shopify_admin",
    "start_slack",
    "start_standins",
    "start_woocommerce_api",
]

# Local-only credentials: the stand-ins check them so a misconfigured adapter fails loudly.
MAILJET_TEST_KEY = "mj-test-key"
MAILJET_TEST_SECRET = "mj-test-secret"  # noqa: S105 - a stand-in credential, not a secret
BLACKLEAF_TEST_KEY = "bl-test-key"
HARNESS_TEST_TOKEN = "harness-test-token"  # noqa: S105 - a stand-in credential, not a secret
# Shaped like the real ones (shpat_, ck_, cs_) so log scans and masking see realistic values.
SHOPIFY_ADMIN_TEST_TOKEN = "shpat_local_test_admin_token_0000"  # noqa: S105 - a stand-in credential
WOOCOMMERCE_TEST_CONSUMER_KEY = "ck_local_test_consumer_key_0000"
WOOCOMMERCE_TEST_CONSUMER_SECRET = "cs_local_test_consumer_secret_0000"  # noqa: S105 - a stand-in credential
HOST = "127.0.0.1"
NAMES = ("mailjet", "blackleaf", "agents", "slack", "shopifyAdmin", "woocommerceApi")


def start_mailjet(
    *,
    api_key: str = MAILJET_TEST_KEY,
    secret_key: str = MAILJET_TEST_SECRET,
    port: int = 0,
    timeout_sleep_s: float | None = None,
) -> StandIn:
    provider = MailjetStandIn(api_key, secret_key)
    return StandIn(provider, host=HOST, port=port, timeout_sleep_s=timeout_sleep_s)


def start_blackleaf(
    *, api_key: str = BLACKLEAF_TEST_KEY, port: int = 0, timeout_sleep_s: float | None = None
) -> StandIn:
    provider = BlackleafStandIn(api_key)
    return StandIn(provider, host=HOST, port=port, timeout_sleep_s=timeout_sleep_s)


def start_agents(
    *, token: str = HARNESS_TEST_TOKEN, port: int = 0, timeout_sleep_s: float | None = None
) -> StandIn:
    provider = HarnessStandIn(token)
    return StandIn(provider, host=HOST, port=port, timeout_sleep_s=timeout_sleep_s)


def start_slack(*, port: int = 0, timeout_sleep_s: float | None = None) -> StandIn:
    return StandIn(SlackStandIn(), host=HOST, port=port, timeout_sleep_s=timeout_sleep_s)


def start_shopify_admin(
    *, token: str = SHOPIFY_ADMIN_TEST_TOKEN, port: int = 0, timeout_sleep_s: float | None = None
) -> StandIn:
    return MaskingStandIn(
        ShopifyAdminStandIn(token), masked_headers=[TOKEN_HEADER, "Authorization"],
        host=HOST, port=port, timeout_sleep_s=timeout_sleep_s,
    )  # fmt: skip


def start_woocommerce_api(
    *,
    consumer_key: str = WOOCOMMERCE_TEST_CONSUMER_KEY,
    consumer_secret: str = WOOCOMMERCE_TEST_CONSUMER_SECRET,
    port: int = 0,
    timeout_sleep_s: float | None = None,
) -> StandIn:
    return MaskingStandIn(
        WooCommerceApiStandIn(consumer_key, consumer_secret), masked_headers=["Authorization"],
        masked_params=["consumer_key", "consumer_secret"], host=HOST, port=port,
        timeout_sleep_s=timeout_sleep_s,
    )  # fmt: skip


def start_standins(
    *,
    mailjet_key: str = MAILJET_TEST_KEY,
    mailjet_secret: str = MAILJET_TEST_SECRET,
    blackleaf_key: str = BLACKLEAF_TEST_KEY,
    harness_token: str = HARNESS_TEST_TOKEN,
    shopify_token: str = SHOPIFY_ADMIN_TEST_TOKEN,
    woocommerce_key: str = WOOCOMMERCE_TEST_CONSUMER_KEY,
    woocommerce_secret: str = WOOCOMMERCE_TEST_CONSUMER_SECRET,
    ports: dict[str, int] | None = None,
) -> dict[str, StandIn]:
    """Start every stand-in in NAMES (free ports unless `ports` names one); `.stop()` each."""
    wanted = ports or {}
    starters = {
        "mailjet": lambda: start_mailjet(
            api_key=mailjet_key, secret_key=mailjet_secret, port=wanted.get("mailjet", 0)
        ),
        "blackleaf": lambda: start_blackleaf(
            api_key=blackleaf_key, port=wanted.get("blackleaf", 0)
        ),
        "agents": lambda: start_agents(token=harness_token, port=wanted.get("agents", 0)),
        "slack": lambda: start_slack(port=wanted.get("slack", 0)),
        "shopifyAdmin": lambda: start_shopify_admin(
            token=shopify_token, port=wanted.get("shopifyAdmin", 0)
        ),
        "woocommerceApi": lambda: start_woocommerce_api(
            consumer_key=woocommerce_key,
            consumer_secret=woocommerce_secret,
            port=wanted.get("woocommerceApi", 0),
        ),
    }
    started: dict[str, StandIn] = {}
    try:
        for name in NAMES:
            started[name] = starters[name]()
    except BaseException:
        # A port clash half-way must not leave the earlier servers running.
        for handle in started.values():
            handle.stop()
        raise
    return started


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.standins",
        description="Run the provider stand-ins until SIGINT/SIGTERM; print their URLs as JSON.",
    )
    for name in NAMES:
        parser.add_argument(f"--{name}-port", type=int, default=0, help="0 picks a free port")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # Credentials follow the adapters' own env vars so one environment configures both sides.
    handles = start_standins(
        mailjet_key=os.environ.get("MAILJET_API_KEY") or MAILJET_TEST_KEY,
        mailjet_secret=os.environ.get("MAILJET_SECRET_KEY") or MAILJET_TEST_SECRET,
        blackleaf_key=os.environ.get("BLACKLEAF_API_KEY") or BLACKLEAF_TEST_KEY,
        harness_token=os.environ.get("AGENT_HARNESS_TOKEN") or HARNESS_TEST_TOKEN,
        ports={name: getattr(args, f"{name}_port") for name in NAMES},
    )
    stopping = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(json.dumps({name: handles[name].url for name in NAMES}), flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        for name in reversed(NAMES):
            handles[name].stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
