"""The demo org and the scripted demo of `make dev` (api.md §2), through the public HTTP API.

Everything the dashboard API can do goes through the gateway, as the existing Next.js app calls
it: system calls with `X-Cron-Secret`, the rest as the org's editor with an unsigned emulator
token (api.md §3). Shopify's deliveries go to `webhook_shopify`, signed with the demo source's
secret as Shopify signs them (domain.md §6.1), and everything after that is the real pipeline:
Pub/Sub push → `on_event_published` → Cloud Tasks → `execute_step` → the agent harness and
Mailjet stand-ins. Only what no route covers touches Firestore directly: the demo customers and
the org's name (`customers`, `organizations`: the existing app's collections), written so that
they reach the same Firestore triggers a real write would, and one read of a listener document
(what the dashboard's live view would show). Seeding is idempotent: a second run against the same
state changes nothing, apart from the webhook sources' `updatedAt` (registering a store is the
API's create-or-update; there is no route to read one). Playing again reuses the playbooks it
made and sends fresh orders (new order and event ids), so the pipeline runs again: within 24 h
the same customer's thank-you is then skipped as `deduped` (domain.md §7.8), which it says.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from emulators import wiring
from emulators.stack import DEFAULT_STATE_DIR, ROOT, cron_secret
from playbook_core import catalog
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.service_tokens import OidcToken
from playbook_core.domain.collections import CUSTOMERS, LISTENERS, ORGANIZATIONS
from playbook_core.domain.consent import consent_record, derived_record_id
from playbook_core.domain.executions import TERMINAL
from playbook_core.domain.ids import h
from playbook_core.domain.sync import listener_id
from playbook_core.domain.tiers import Tier, ids_for_tier
from playbook_core.domain.validation import E164, EMAIL
from playbook_core.domain.webhooks import shopify_source_id, signature
from playbook_core.ports import DocumentStore
from playbook_core.runtime.manifest import FirestoreTrigger, load_manifest
from playbook_core.service.compliance.consent import append_record

SPEC_PATH = Path(__file__).resolve().parent / "seed" / "demo_org.yaml"
EMBEDDED_DB = "playbooks.sqlite3"  # in PLAYBOOKS_DATA_DIR, which the stack sets to its state dir
TIMEOUT_S = 30.0
CUSTOM_NAME = "Big-order VIP thank-you"
CUSTOM_EVENT = "order.completed"
CUSTOM_YAML = f"""\
name: {CUSTOM_NAME}
description: Thank customers whose completed order is $150 or more, and tell the team.
agent: craig
category: marketing
tags: [demo, vip, post-purchase]
triggers:
  - id: big_order
    type: event
    eventName: {CUSTOM_EVENT}
    filters:
      - {{path: data.total, op: gte, value: 150}}
steps:
  - id: compose
    action: delegate
    params:
      agent: craig
      task: Write a warm VIP thank-you note for this order with one perk for the next visit.
      input:
        order: "{{{{ event.data }}}}"
        customer: "{{{{ customer }}}}"
  - id: email
    action: send_email
    condition: {{path: customer.email, op: exists}}
    params:
      to: "{{{{ customer.email }}}}"
      subject: "{{{{ steps.compose.output.title }}}}"
      body: "{{{{ steps.compose.output.body }}}}"
  - id: tell_team
    action: notify
    params:
      channel: dashboard
      to: role:admin
      message: "VIP thank-you on its way for order {{{{ event.data.orderNumber }}}}."
"""
BAD_YAML = """\
name: Broken thank-you
agent: craig
triggers:
  - {type: event, eventName: order.completed}
steps:
  - action: send_email
    params:
      to: "{{ customer.email | lower }}"
      subject: Thanks!
      body: Thanks for your order.
"""
POST_PURCHASE = "post-purchase-thank-you"  # the registry playbook api.md §2's story is about
PIPELINE_TIMEOUT_S = 30.0  # webhook → pending_approval, approval → completed
ATTRIBUTION_TIMEOUT_S = 15.0
POLL_S = 0.2
# Recorded Shopify deliveries (the shapes Shopify sends); the demo re-addresses them.
WEBHOOK_FIXTURES = ROOT / "tests" / "data" / "webhooks"
ORDER_FIXTURES = {
    "orders/fulfilled": "shopify_orders_fulfilled.json",
    "orders/create": "shopify_orders_create.json",
}
ATTRIBUTION_ISSUE = "the attribution issue (last-touch attribution, analytics)"
T = TypeVar("T")


class DemoError(RuntimeError):
    """A seeding or demo call answered something other than what the demo relies on."""


# --- the demo org (emulators/seed/demo_org.yaml) ----------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class OrgSpec(_Spec):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")]
    name: Annotated[str, Field(min_length=1, max_length=120)]
    tier: Tier
    timezone: str
    admin_email: Annotated[str, Field(pattern=EMAIL.pattern)]
    compliance: dict[str, Any] | None = None  # settings.compliance, checked by the API


class EditorSpec(_Spec):
    uid: str
    role: Literal["brand", "brand_admin", "dispensary", "dispensary_admin"]
    email: Annotated[str, Field(pattern=EMAIL.pattern)]


class SourceSpec(_Spec):
    platform: Literal["shopify", "woocommerce"]
    shop_domain: str | None = None
    source_url: str | None = None
    secret: Annotated[str, Field(min_length=8)]
    # Admin API access for the catch-up pass (issue #16); the stand-in's own test token.
    admin_access_token: Annotated[str, Field(min_length=8)] | None = None

    @model_validator(mode="after")
    def _one_address(self) -> SourceSpec:
        shopify = self.platform == "shopify"
        if (self.shop_domain is None) == shopify or (self.source_url is None) != shopify:
            raise ValueError("shopify sources take shopDomain, woocommerce sources sourceUrl")
        return self

    def body(self) -> dict[str, str | None]:
        address = "shopDomain" if self.platform == "shopify" else "sourceUrl"
        value = self.shop_domain if self.platform == "shopify" else self.source_url
        body = {"platform": self.platform, address: value, "secret": self.secret}
        if self.admin_access_token is not None:
            body["adminAccessToken"] = self.admin_access_token
        return body


class Consent(_Spec):
    email: bool | None = None
    sms: bool | None = None


class CustomerSpec(_Spec):
    name: Annotated[str, Field(min_length=1)]
    email: Annotated[str, Field(pattern=EMAIL.pattern)]
    phone: Annotated[str, Field(pattern=E164.pattern)] | None = None
    consent: Consent = Consent()
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    age_verified: bool | None = None
    sms_consent_text: str | None = None  # seeded as an SMS consent record (source import)


class DemoSpec(_Spec):
    org: OrgSpec
    editor: EditorSpec
    webhook_sources: list[SourceSpec]
    # Signs the stand-in's inbound texts to webhook_blackleaf (docs/consent.md §3).
    sms_webhook_secret: Annotated[str, Field(min_length=8)] | None = None
    customers: list[CustomerSpec]
    demo_customer: Annotated[str, Field(pattern=EMAIL.pattern)]

    @model_validator(mode="after")
    def _playable(self) -> DemoSpec:
        if not any(source.platform == "shopify" for source in self.webhook_sources):
            raise ValueError("the demo sends Shopify orders: declare a shopify webhook source")
        found = [c for c in self.customers if c.email.lower() == self.demo_customer.lower()]
        if not found:
            raise ValueError("demoCustomer must be the email of one of the customers")
        if found[0].consent.email is False:
            raise ValueError("demoCustomer must not have refused email: the demo emails them")
        return self

    @property
    def secrets(self) -> list[str]:
        inbound = [self.sms_webhook_secret] if self.sms_webhook_secret else []
        tokens = [s.admin_access_token for s in self.webhook_sources if s.admin_access_token]
        return [source.secret for source in self.webhook_sources] + tokens + inbound

    @property
    def shopify(self) -> SourceSpec:
        return next(source for source in self.webhook_sources if source.platform == "shopify")

    @property
    def story_customer(self) -> CustomerSpec:
        wanted = self.demo_customer.lower()
        return next(c for c in self.customers if c.email.lower() == wanted)


def load_spec(path: Path = SPEC_PATH) -> DemoSpec:
    return DemoSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def customer_documents(spec: DemoSpec) -> dict[str, dict[str, Any]]:
    """`customers/{id}` content; ids as the dispatcher mints them, `cus_`+h(orgId, email)."""
    documents: dict[str, dict[str, Any]] = {}
    for customer in spec.customers:
        first, _, last = customer.name.partition(" ")
        email = customer.email.strip().lower()
        documents[f"cus_{h(spec.org.id, email)}"] = {
            "orgId": spec.org.id, "email": email, "phone": customer.phone,
            "firstName": first, "lastName": last or None,
            "consent": customer.consent.model_dump(), "source": "demo", "createdBy": "demo-seed",
        }  # fmt: skip
        place: dict[str, Any] = {"state": customer.state, "ageVerified": customer.age_verified}
        known = {key: value for key, value in place.items() if value is not None}
        documents[f"cus_{h(spec.org.id, email)}"] |= known
    return documents


def shopify_order(
    topic: str,
    *,
    order_id: int,
    email: str,
    name: str = "",
    phone: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """A recorded Shopify order delivery, re-addressed: this order id, customer and time.

    The recorded bodies are of a cancelled 2021 order; the copy is a paid order of now (fulfilled
    now and created two hours ago for `orders/fulfilled`), since attribution is anchored on the
    order's own time. Re-serialised: whoever sends it signs exactly these bytes.
    """
    body: dict[str, Any] = json.loads((WEBHOOK_FIXTURES / ORDER_FIXTURES[topic]).read_bytes())
    now = now or datetime.now(UTC)
    fulfilled = topic == "orders/fulfilled"
    created = now - timedelta(hours=2) if fulfilled else now
    first, _, last = name.partition(" ")
    number = order_id % 1_000_000

    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat(timespec="milliseconds") if moment else None

    body.update(
        id=order_id, admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
        name=f"#{number}", number=number, order_number=number,
        email=email, contact_email=email, phone=phone,
        created_at=stamp(created), processed_at=stamp(created), updated_at=stamp(now),
        closed_at=stamp(now if fulfilled else None), cancelled_at=None, cancel_reason=None,
        confirmed=True, financial_status="paid",
        fulfillment_status="fulfilled" if fulfilled else None,
    )  # fmt: skip
    body["customer"].update(
        email=email, phone=phone, first_name=first or None, last_name=last or None
    )
    return json.dumps(body, separators=(",", ":")).encode()


def shopify_headers(
    source: SourceSpec, topic: str, body: bytes, event_key: str, *, secret: str | None = None
) -> dict[str, str]:
    """The headers Shopify sends: the HMAC of the exact bytes, topic, shop and the event id."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": signature(secret or source.secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": str(source.shop_domain),
        "X-Shopify-Event-Id": event_key,
        "X-Shopify-Webhook-Id": f"wh-{event_key}",
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "X-Shopify-API-Version": "2025-01",
    }


# --- the API as the dashboard calls it ---------------------------------------------------------


class Api:
    """The gateway's `playbooks_api`; every answer is checked for the webhook secrets.

    The editor signs in with an unsigned local token, or `user_token` (the deployed-shape tests
    pass one signed by their own key, since a deployed function accepts no other).
    """

    def __init__(
        self, stack: Mapping[str, Any], spec: DemoSpec, user_token: str | None = None
    ) -> None:
        editor = spec.editor
        claims = local_claims(
            stack["project"], editor.uid, editor.role, [spec.org.id], email=editor.email
        )
        self._user = {"Authorization": f"Bearer {user_token or unsigned_token(claims)}"}
        self._system = {"X-Cron-Secret": cron_secret()}
        self._secrets = spec.secrets
        self._http = httpx.Client(
            base_url=f"{stack['gateway']}/playbooks_api/v1", timeout=TIMEOUT_S, trust_env=False
        )  # local: never a proxy
        self._plain = httpx.Client(timeout=TIMEOUT_S, trust_env=False)  # webhooks, stand-ins

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()
        self._plain.close()

    def _checked(self, what: str, response: httpx.Response) -> httpx.Response:
        if any(secret in response.text for secret in self._secrets):
            raise DemoError(f"{what}: the answer contains a webhook secret")
        return response

    def post_raw(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """A POST outside the dashboard API (a webhook delivery), as the sender makes it."""
        return self._checked(f"POST {url}", self._plain.post(url, content=body, headers=headers))

    def get_raw(self, url: str) -> httpx.Response:
        return self._checked(f"GET {url}", self._plain.get(url))

    def put_raw(self, url: str, body: Any) -> httpx.Response:
        """A stand-in's control call (its answers never echo what was put)."""
        return self._checked(f"PUT {url}", self._plain.put(url, json=body))

    def post_json(
        self, url: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A JSON POST outside the dashboard API: a stand-in's control call or a cron route."""
        return self._checked(f"POST {url}", self._plain.post(url, json=body, headers=headers))

    def call(
        self,
        method: str,
        path: str,
        *,
        system: bool = False,
        expect: tuple[int, ...] = (200,),
        json: Any = None,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = self._http.request(
            method, path, json=json, content=content, params=params,
            headers={**(self._system if system else self._user), **(headers or {})},
        )  # fmt: skip
        self._checked(f"{method} {path}", response)
        if response.status_code not in expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {_detail(response)}")
        return response


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        errors = [f"{e.get('code')} at {e.get('path')!r}" for e in body.get("errors") or []]
        return "; ".join(filter(None, [str(body.get("detail") or body.get("title")), *errors]))
    return str(body)[:300]


# --- direct storage, only where no route exists -------------------------------------------------


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def _trigger_urls(stack: Mapping[str, Any]) -> Callable[[str], str | None]:
    """Top-level document path → the gateway's trigger route, as the emulator's hook posts."""
    project, gateway = stack["project"], stack["gateway"]
    routes = {
        function.trigger.document.split("/")[0]: (
            f"{gateway}/functions/projects/{project}/triggers/{project}:{function.name}"
        )
        for function in load_manifest().functions
        if isinstance(function.trigger, FirestoreTrigger)
    }

    def url_for(path: str) -> str | None:
        parts = path.split("/")
        return routes.get(parts[0]) if len(parts) == 2 else None

    return url_for


@contextmanager
def open_store(stack: Mapping[str, Any], state_dir: Path) -> Iterator[DocumentStore]:
    """The stack's documents: the Firestore emulator, or its SQLite file with trigger posts."""
    if stack["backend"] == "emulators":
        from playbook_core.adapters.firestore import FirestoreStore  # noqa: PLC0415

        store = FirestoreStore(stack["project"])
        with _environment("FIRESTORE_EMULATOR_HOST", stack["firestore"]):
            client = store.client()  # the official client reads the emulator address once
        try:
            yield store  # the emulator itself posts each write to the gateway's trigger route
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    from playbook_core.adapters.embedded import EmbeddedStore  # noqa: PLC0415
    from playbook_core.adapters.firestore_events import FirestoreTriggerPoster  # noqa: PLC0415

    poster = FirestoreTriggerPoster(_trigger_urls(stack), project=stack["project"])
    embedded = EmbeddedStore(str(state_dir.resolve() / EMBEDDED_DB), on_commit=poster)
    try:
        yield embedded
        poster.drain()  # every trigger event handed to the gateway before we return
    finally:
        embedded.close()
        poster.close()


def _put_if_changed(
    store: DocumentStore, collection: str, doc_id: str, data: dict[str, Any]
) -> bool:
    """Write only when the content differs: a re-seed fires no trigger and moves no stamp."""
    current = store.get(collection, doc_id)
    if current is not None and all(current.get(key) == value for key, value in data.items()):
        return False
    now = datetime.now(UTC)
    created = current.get("createdAt", now) if current else now
    store.set(collection, doc_id, {**data, "createdAt": created, "updatedAt": now})
    return True


# --- seeding -------------------------------------------------------------------------------------


def _say(line: str, lines: list[str] | None = None) -> None:
    print(line, flush=True)
    if lines is not None:
        lines.append(line)


def seed(
    stack: dict[str, Any],
    state_dir: Path = DEFAULT_STATE_DIR,
    spec: DemoSpec | None = None,
    user_token: str | None = None,
) -> str:
    """Seed the demo org into a running stack; returns its id. Idempotent."""
    spec = spec or load_spec()
    org = spec.org
    _say(f"seeding the demo org {org.id} ({org.name}) through {stack['gateway']}")
    with Api(stack, spec, user_token) as api:
        result = api.call("POST", "/admin/seed-playbooks", system=True).json()
        if result["failed"]:
            raise DemoError(f"template seeding failed: {result['failed']}")
        _say(f"  templates: {len(result['seeded'])} seeded, {len(result['skipped'])} already there")
        _settings(api, spec)
        for source in spec.webhook_sources:
            view = api.call(
                "POST", f"/orgs/{org.id}/webhook-sources", json=source.body(), expect=(201,)
            ).json()
            if not view["hasSecret"]:
                raise DemoError(f"webhook source {view['id']} has no secret")
            access = ", Admin API access for catch-up" if view.get("hasApiAccess") else ""
            _say(
                f"  webhook source {view['id']}: {view['status']}, secret kept server side{access}"
            )
        _inbound_sms(api, spec, stack)
        _activate(api, spec)
    with open_store(stack, state_dir) as store:
        organization = {"orgId": org.id, "name": org.name}
        written = _put_if_changed(store, ORGANIZATIONS, org.id, organization)
        _say(f"  {ORGANIZATIONS}/{org.id}: {'written' if written else 'unchanged'} ({org.name})")
        documents = customer_documents(spec)
        changed = [
            doc_id
            for doc_id, data in documents.items()
            if _put_if_changed(store, CUSTOMERS, doc_id, data)
        ]
        _say(
            f"  customers: {len(changed)} written, {len(documents) - len(changed)} unchanged"
            + (" → on_customer_written" if changed else "")
        )
        _consent_evidence(store, spec)
    return org.id


def _consent_evidence(store: DocumentStore, spec: DemoSpec) -> None:
    """The SMS opt-ins the demo customers gave, as consent records (the federal rule needs one)."""
    for customer in spec.customers:
        if customer.sms_consent_text is None:
            continue
        customer_id = f"cus_{h(spec.org.id, customer.email.strip().lower())}"
        record = consent_record(
            record_id=derived_record_id(spec.org.id, customer_id, "demo-seed-sms"),
            org_id=spec.org.id, identity_key=f"cid:{customer_id}", customer_id=customer_id,
            channel="sms", state="granted", at=datetime(2026, 1, 15, 17, 0, tzinfo=UTC),
            source="import", method="demo seed: signup form opt-in",
            disclosure=customer.sms_consent_text, ip=None, user_agent=None,
        )  # fmt: skip
        append_record(store, record)
        _say(f"  consent: {customer.name}'s SMS opt-in on record ({record['id']})")


def _settings(api: Api, spec: DemoSpec) -> None:
    org = spec.org
    current = api.call("GET", f"/orgs/{org.id}/settings").json()
    wanted: dict[str, Any] = {"timezone": org.timezone, "adminEmail": org.admin_email}
    if org.compliance is not None:
        wanted["compliance"] = org.compliance
    changes = {key: value for key, value in wanted.items() if not _same(current.get(key), value)}
    if changes:  # only what differs: a re-seed writes nothing
        api.call("PATCH", f"/orgs/{org.id}/settings", json=changes)
    shown = ", ".join(
        f"{key} {value}" if key != "compliance" else f"compliance for {', '.join(value['states'])}"
        for key, value in wanted.items()
    )
    _say(f"  settings: {shown} ({'set' if changes else 'unchanged'})")


def _same(stored: Any, wanted: Any) -> bool:
    """A stored value equals the wanted one once the defaults it was stored with are ignored."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        return all(_same(stored.get(key), value) for key, value in wanted.items())
    return bool(stored == wanted)


def _inbound_sms(api: Api, spec: DemoSpec, stack: Mapping[str, Any]) -> None:
    """The org's inbound SMS secret, and the Blackleaf stand-in pointed at webhook_blackleaf."""
    secret, org = spec.sms_webhook_secret, spec.org
    if secret is None or not stack.get("blackleaf"):
        return
    view = api.call("PUT", f"/orgs/{org.id}/sms-webhook", json={"secret": secret}).json()
    webhook = {"url": view["webhookUrl"], "secret": secret}
    configured = api.put_raw(f"{stack['blackleaf']}/__inbound/webhook", webhook)
    if configured.status_code != 200:
        raise DemoError(f"the Blackleaf stand-in refused the inbound webhook: {configured.text}")
    _say(f"  inbound SMS: Blackleaf stand-in → {view['webhookUrl']} (signed)")


def _activate(api: Api, spec: DemoSpec) -> None:
    org = spec.org
    result = api.call(
        "POST", f"/orgs/{org.id}:activateTier", system=True, json={"tier": org.tier}
    ).json()
    expected = ids_for_tier(list(catalog.registry()), org.tier)
    if result["failed"] or sorted(result["activated"] + result["skipped"]) != sorted(expected):
        raise DemoError(f"activating {org.tier} answered {result}")
    _say(
        f"  tier {org.tier}: {len(result['activated'])} playbooks activated, "
        f"{len(result['skipped'])} already active"
    )


# --- the demo ------------------------------------------------------------------------------------


def play(
    stack: dict[str, Any],
    org_id: str,
    state_dir: Path = DEFAULT_STATE_DIR,
    spec: DemoSpec | None = None,
) -> list[str]:
    """Play api.md §2's demo; returns the lines it printed."""
    spec = spec or load_spec()
    if org_id != spec.org.id:
        raise DemoError(f"the demo plays {spec.org.id}, not {org_id}")
    lines: list[str] = []

    def say(line: str) -> None:
        _say(line, lines)

    say(f"demo: {spec.org.name} ({org_id}), the API called as its {spec.editor.role} would")
    with Api(stack, spec) as api:
        steps = _Steps(api, f"/orgs/{org_id}", say)
        steps.list_registry(spec.org.tier)
        playbook = steps.create_custom()
        steps.validate_bad_yaml()
        steps.toggle_on(playbook)
        with open_store(stack, state_dir) as store:
            steps.show_listener(store, str(playbook["id"]))
        steps.duplicate(str(playbook["id"]))
        steps.export(str(playbook["id"]))
        _Story(api, stack, spec, say).play()
    return lines


class _Steps:
    """One method per demo step; each prints `n. what: call → result`. Re-runs reuse the work."""

    def __init__(self, api: Api, org: str, say: Callable[[str], None]) -> None:
        self.api, self.org, self.say = api, org, say

    def _pages(self, params: dict[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            cursor = {"pageToken": token} if token else {}
            page = self.api.call(
                "GET", f"{self.org}/playbooks", params={**params, "pageSize": "100", **cursor}
            ).json()
            found += page["playbooks"]
            token = page["nextPageToken"]
            if token is None:
                return found

    def list_registry(self, tier: str) -> None:
        registry = self._pages({"view": "dispensary", "status": "active"})
        agents = ", ".join(f"{a} {n}" for a, n in Counter(p["agent"] for p in registry).items())
        self.say(
            f"  1. the tier's playbooks: GET …/playbooks?view=dispensary&status=active → "
            f"{len(registry)} active registry playbooks for {tier} ({agents})"
        )

    def create_custom(self) -> dict[str, Any]:
        """Created once; later runs find it by name instead of piling up copies."""
        earlier = [
            p
            for p in self._pages({"view": "brand", "q": "vip"})
            if p["name"] == CUSTOM_NAME and p["source"]["kind"] == "user"
        ]
        if earlier:
            found = min(earlier, key=lambda p: str(p["createdAt"]))
            self.say(
                f"  2. a custom playbook from YAML: created by an earlier run, found with "
                f"GET …/playbooks?view=brand&q=vip → {_brief(found)}"
            )
            return found
        created: dict[str, Any] = self.api.call(
            "POST", f"{self.org}/playbooks", content=CUSTOM_YAML,
            headers={"Content-Type": "application/yaml"}, expect=(201,),
        ).json()  # fmt: skip
        self.say(
            f"  2. a custom playbook from YAML: POST …/playbooks (application/yaml) → 201 "
            f"{_brief(created)}, requiresApproval {str(created['requiresApproval']).lower()}"
        )
        return created

    def validate_bad_yaml(self) -> None:
        answer = self.api.call(
            "POST", f"{self.org}/playbooks:validate", content=BAD_YAML,
            headers={"Content-Type": "application/yaml"}, expect=(422,),
        ).json()  # fmt: skip
        errors = answer["errors"]
        if not errors or any(e["line"] is None or e["column"] is None for e in errors):
            raise DemoError(f"validation answered without YAML positions: {answer}")
        self.say("  3. validation catches a bad YAML: POST …/playbooks:validate → 422")
        for error in errors:
            self.say(
                f"       {error['code']} at {error['path']} (line {error['line']}, "
                f"column {error['column']}): {error['message']}"
            )

    def toggle_on(self, playbook: dict[str, Any]) -> None:
        playbook_id = playbook["id"]
        if playbook["status"] == "active":
            self.say("  4. toggle it on: already active since an earlier run")
            return
        toggled = self.api.call(
            "POST", f"{self.org}/playbooks/{playbook_id}:toggle", json={"enabled": True}
        ).json()
        playbook.update(toggled)
        self.say(
            f"  4. toggle it on: POST …/{playbook_id}:toggle {{enabled: true}} → 200, "
            f"{toggled['status']}"
        )

    def show_listener(self, store: DocumentStore, playbook_id: str) -> None:
        # No route lists listeners yet (the graph arrives with analytics): read the document the
        # dashboard's live view would.
        doc_id = listener_id(playbook_id, CUSTOM_EVENT)
        listener = store.get(LISTENERS, doc_id)
        if listener is None or listener["status"] != "active":
            raise DemoError(f"no active {CUSTOM_EVENT} listener for {playbook_id}: {listener}")
        self.say(
            f"  5. its listener: {LISTENERS}/{doc_id} → {listener['eventName']}, "
            f"{listener['status']}, triggers {', '.join(listener['triggerIds'])}"
        )

    def duplicate(self, playbook_id: str) -> None:
        copy_id = f"{playbook_id}_copy_1"
        existing = self.api.call("GET", f"{self.org}/playbooks/{copy_id}", expect=(200, 404))
        if existing.status_code == 200:
            self.say(
                f"  6. duplicate it: made by an earlier run, GET …/{copy_id} → "
                f"{_brief(existing.json())}"
            )
            return
        copy = self.api.call(
            "POST", f"{self.org}/playbooks/{playbook_id}:duplicate", expect=(201,)
        ).json()
        self.say(f"  6. duplicate it: POST …/{playbook_id}:duplicate → 201 {_brief(copy)}")

    def export(self, playbook_id: str) -> None:
        exported = self.api.call(
            "GET", f"{self.org}/playbooks/{playbook_id}:export", params={"format": "yaml"}
        ).text.splitlines()
        self.say(f"  7. export it as YAML: GET …/{playbook_id}:export?format=yaml → 200")
        for line in exported:
            self.say(f"       | {line}")


def _brief(playbook: Mapping[str, Any]) -> str:
    return f'{playbook["id"]} "{playbook["name"]}", {playbook["status"]}, v{playbook["version"]}'


# --- the pipeline: a Shopify order → approval → email → a second order -------------------------


class _Story:
    """Steps 8–15 of the demo: api.md §2's story, through the real pipeline of the stack."""

    def __init__(
        self, api: Api, stack: Mapping[str, Any], spec: DemoSpec, say: Callable[[str], None]
    ) -> None:
        self.api, self.say = api, say
        self.org = f"/orgs/{spec.org.id}"
        self.gateway, self.mailjet = str(stack["gateway"]), str(stack["mailjet"])
        self.shopify_admin = stack.get("shopifyAdmin")
        self.source, self.customer = spec.shopify, spec.story_customer
        self.playbook_id = f"{spec.org.id}_{POST_PURCHASE}"
        self.customer_id = f"cus_{h(spec.org.id, self.customer.email.strip().lower())}"
        self.zone = ZoneInfo(spec.org.timezone)
        # Fresh order and delivery ids per play (ms): a replay is new orders, not a retried one.
        self.run = time.time_ns() // 1_000_000

    def play(self) -> None:
        event_id = self.fulfilled_order()
        run = self.first_pause(event_id)
        if run["status"] == "pending_approval":
            self.approve(run)
            self.show_email(str(run["id"]))
        else:
            self.show_deduped(str(run["id"]))
        self.second_order()
        self.attribution()
        self.blocked()
        self.deferred()
        self.recovered_order()

    # -- helpers --

    def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.api.call("POST", f"{self.org}/compliance:check", json=body).json())

    def _send(
        self, topic: str, order_id: int, key: str | None = None, now: datetime | None = None
    ) -> tuple[int, dict[str, Any], str]:
        customer = self.customer
        body = shopify_order(
            topic, order_id=order_id, email=customer.email, name=customer.name,
            phone=customer.phone, now=now,
        )  # fmt: skip
        key = key or f"demo-{self.run}-{topic.replace('/', '-')}"
        answer = self.api.post_raw(
            f"{self.gateway}/webhook_shopify/", body, shopify_headers(self.source, topic, body, key)
        )
        if answer.status_code != 200 or not answer.json().get("eventId"):
            raise DemoError(f"webhook_shopify answered {answer.status_code}: {answer.text[:300]}")
        return order_id % 1_000_000, answer.json(), key

    def _run_for(self, event_id: str) -> dict[str, Any] | None:
        listed = self.api.call(
            "GET",
            f"{self.org}/executions",
            params={"playbookId": self.playbook_id, "pageSize": "20"},
        ).json()["executions"]
        found = [e for e in listed if (e.get("trigger") or {}).get("eventId") == event_id]
        return found[0] if found else None

    def _follow(
        self, fetch: Callable[[], dict[str, Any] | None], until: frozenset[str]
    ) -> dict[str, Any]:
        """Poll a run, printing each status it passes through, until one of `until`."""
        started = time.monotonic()
        seen: str | None = None
        run: dict[str, Any] | None = None
        while time.monotonic() - started < PIPELINE_TIMEOUT_S:
            run = fetch()
            status = str(run["status"]) if run else "(no run yet)"
            if status != seen:
                seen = status
                self.say(f"       {time.monotonic() - started:4.1f} s  {status}")
            if run is not None and status in until:
                return run
            time.sleep(POLL_S)
        raise DemoError(f"the run was still {seen} after {PIPELINE_TIMEOUT_S:.0f} s: {run}")

    def _deliveries(self, execution_id: str, **params: str) -> list[dict[str, Any]]:
        listed = self.api.call(
            "GET", f"{self.org}/deliveries",
            params={"playbookId": self.playbook_id, "pageSize": "100", **params},
        ).json()["deliveries"]  # fmt: skip
        return [d for d in listed if d.get("executionId") == execution_id]

    def _logged(self, name: str, event_id: str) -> dict[str, Any]:
        def entry() -> dict[str, Any] | None:
            events = self.api.call(
                "GET", f"{self.org}/events", params={"name": name, "pageSize": "20"}
            ).json()["events"]
            return next((e for e in events if e.get("eventId") == event_id), None)

        found = _poll(entry, PIPELINE_TIMEOUT_S)
        if found is None:
            raise DemoError(f"{event_id} never reached the event log")
        return found

    # -- the steps --

    def fulfilled_order(self) -> str:
        number, answer, key = self._send("orders/fulfilled", self.run * 10 + 1)
        self.say(
            f"  8. a signed Shopify orders/fulfilled for {self.customer.name} (order #{number}): "
            f"POST /webhook_shopify (X-Shopify-Event-Id {key}, HMAC-SHA256 of the exact bytes) "
            f"→ 200 {json.dumps(answer)}"
        )
        self.say(f"       event id {answer['eventId']} ({answer['event']}, once per order)")
        return str(answer["eventId"])

    def first_pause(self, event_id: str) -> dict[str, Any]:
        self.say(
            f"  9. Pub/Sub push → on_event_published → Cloud Tasks → execute_step: "
            f"GET …/executions?playbookId={self.playbook_id} until it pauses for approval"
        )
        run = self._follow(
            lambda: self._run_for(event_id), frozenset({"pending_approval"}) | TERMINAL
        )
        logged = self._logged("order.completed", event_id)
        for match in logged.get("matches") or []:
            self.say(
                f"       event log: {match.get('playbookId')} → {match.get('outcome')}"
                + (f" {match['executionId']}" if match.get("executionId") else "")
            )
        if run["status"] not in ("pending_approval", "completed"):
            raise DemoError(f"the thank-you run ended {run['status']}: {run.get('statusReason')}")
        return run

    def approve(self, run: dict[str, Any]) -> None:
        execution_id = str(run["id"])
        pending = self.api.call(
            "GET", f"{self.org}/approvals", params={"status": "pending", "pageSize": "100"}
        ).json()["approvals"]
        ours = next((a for a in pending if a.get("executionId") == execution_id), None)
        if ours is None:
            raise DemoError(f"{execution_id} is pending_approval but not in the approval queue")
        names = Counter(str(a.get("playbookName")) for a in pending)
        self.say(
            f"  10. the approval queue: GET …/approvals?status=pending → {len(pending)} pending "
            f"({', '.join(f'{n} × {c}' if c > 1 else n for n, c in names.items())})"
        )
        for item in ours.get("preview") or []:
            self.say(
                f"       preview of {item.get('stepId')}: to {item.get('to')}, "
                f"subject {item.get('subject')!r}"
            )
        approved = self.api.call(
            "POST", f"{self.org}/approvals/{execution_id}:approve",
            json={"notes": "approved by the make dev demo"},
        ).json()  # fmt: skip
        self.say(
            f"       POST …/approvals/{execution_id}:approve (as {approved.get('reviewerId')}) "
            f"→ 200 {approved['status']}; the run resumes:"
        )
        done = self._follow(
            lambda: self.api.call("GET", f"{self.org}/executions/{execution_id}").json(), TERMINAL
        )
        if done["status"] != "completed":
            raise DemoError(f"the approved run ended {done['status']}: {done.get('statusReason')}")

    def show_email(self, execution_id: str) -> None:
        deliveries = self._deliveries(execution_id)
        if [d.get("status") for d in deliveries] != ["sent"]:
            raise DemoError(f"the thank-you run has not one sent delivery: {deliveries}")
        delivery = deliveries[0]

        def captured() -> dict[str, Any] | None:
            recorded = self.api.get_raw(f"{self.mailjet}/__requests").json()
            for request in recorded:
                for message in (request.get("body") or {}).get("Messages") or []:
                    if message.get("CustomID") == delivery["id"]:
                        return dict(message)
            return None

        message = _poll(captured, PIPELINE_TIMEOUT_S)
        if message is None:
            raise DemoError(f"the Mailjet stand-in never received {delivery['id']}")
        to = ", ".join(str(r.get("Email")) for r in message.get("To") or [])
        self.say(
            f"  11. the email, captured by the Mailjet stand-in: GET {self.mailjet}/__requests → "
            f"To {to}, Subject {message.get('Subject')!r} (CustomID {delivery['id']}; "
            f"GET …/deliveries: {delivery['status']})"
        )

    def show_deduped(self, execution_id: str) -> None:
        skipped = self._deliveries(execution_id, status="skipped", reason="deduped")
        if not skipped:
            raise DemoError(f"{execution_id} completed without approval and without a dedup skip")
        self.say(
            f"  10. no approval this time, as expected on a replay: {self.customer.name} got this "
            f"thank-you within the last 24 h (an earlier run) and a playbook reaches a customer "
            f"at most once per 24 h, so the send was skipped before the gate"
        )
        self.say(
            f"       GET …/deliveries?status=skipped&reason=deduped → {skipped[0]['id']} "
            f"(skipReason {skipped[0].get('skipReason')})"
        )
        self.say("  11. the email: none this time (deduped); the earlier run's email stands")

    def second_order(self) -> None:
        number, answer, key = self._send("orders/create", self.run * 10 + 2)
        self.say(
            f"  12. a second signed Shopify orders/create, same customer (order #{number}): "
            f"POST /webhook_shopify (X-Shopify-Event-Id {key}) → 200 {json.dumps(answer)}"
        )
        logged = self._logged("order.created", str(answer["eventId"]))
        summary = logged.get("orderSummary") or {}
        minor = summary.get("totalMinor")
        total = f"{minor // 100}.{minor % 100:02d}" if isinstance(minor, int) else "?"
        self.say(
            f"       GET …/events?name=order.created → {logged['eventId']} {logged['name']}, "
            f"outcome {logged.get('outcome')}, customer {logged.get('customerId')}, "
            f"order {summary.get('orderId')} ({total} {summary.get('currency')})"
        )

    def attribution(self) -> None:
        path = f"{self.org}/analytics/playbooks"
        first = self.api.call("GET", path, expect=tuple(range(200, 600)))
        if first.status_code != 200:
            self.say(
                f"  13. attribution: GET …/analytics/playbooks → {first.status_code}; "
                f"the order's last-touch attribution arrives with {ATTRIBUTION_ISSUE}"
            )
            return

        def attributed() -> dict[str, Any] | None:
            row = _analytics_row(self.api.call("GET", path).json(), self.playbook_id)
            return row if row and (row.get("attributedOrders") or 0) > 0 else None

        row = _poll(attributed, ATTRIBUTION_TIMEOUT_S) or _analytics_row(
            self.api.call("GET", path).json(), self.playbook_id
        )
        if row is None:
            self.say(
                f"  13. attribution: GET …/analytics/playbooks → 200, no row for {POST_PURCHASE}"
            )
            return
        self.say(
            f"  13. attribution: GET …/analytics/playbooks → {POST_PURCHASE}: "
            f"attributedOrders {row.get('attributedOrders')}, "
            f"attributedRevenue {row.get('attributedRevenue')}"
        )

    def blocked(self) -> None:
        body = "Holiday giveaway: a free pre-roll with every order this weekend!"
        answer = self._check({
            "channel": "email", "subject": "Holiday giveaway", "body": body,
            "recipient": {"state": "CA", "email": "sam@example.com"},
        })  # fmt: skip
        term = next(f for f in answer["findings"] if f["kind"] == "forbidden_terms")
        self.say(
            f"  14. the compliance guard on a giveaway email to a Californian: "
            f"POST …/compliance:check → {answer['verdict']}: {term['ruleId']} "
            f"({term['citation']}), '{body[term['start'] : term['end']]}' at {term['start']}"
        )
        others = sorted({f["ruleId"] for f in answer["findings"]} - {term["ruleId"]})
        self.say(
            f"       also {', '.join(others) or 'nothing else'}; rule packs {answer['rulePack']}"
        )

    def deferred(self) -> None:
        local = datetime.now(self.zone).replace(hour=23, minute=0, second=0, microsecond=0)
        answer = self._check({
            "channel": "sms", "body": "New drops at Green Leaf this weekend.",
            "recipient": {"customerId": self.customer_id}, "sendAt": local.isoformat(),
        })  # fmt: skip
        reasons = [f for f in answer["findings"] if f["kind"] in ("send_window", "frequency")]
        until = answer.get("deferUntil")
        shown = datetime.fromisoformat(until).astimezone(self.zone) if until else None
        self.say(
            f"  15. a text to {self.customer.name} at 23:00 {self.zone.key}: "
            f"POST …/compliance:check → {answer['verdict']}"
            + (f" until {shown:%Y-%m-%d %H:%M} local" if shown else "")
            + "".join(f"; {f['ruleId']} ({f['citation']})" for f in reasons)
        )
        if answer["verdict"] != "defer":
            raise DemoError(f"the night-time text was not deferred: {answer['findings']}")

    def recovered_order(self) -> None:
        """An order only the Shopify Admin API knows of, found by the catch-up pass (#16)."""
        if not (self.shopify_admin and self.source.admin_access_token):
            return
        customer, order_id, placed = self.customer, self.run * 10 + 3, datetime.now(UTC)
        order = json.loads(shopify_order(
            "orders/create", order_id=order_id, email=customer.email, name=customer.name,
            phone=customer.phone, now=placed,
        ))  # fmt: skip
        shop = str(self.source.shop_domain)
        added = self.api.post_json(f"{self.shopify_admin}/__orders", {"shop": shop, "order": order})
        if added.status_code != 200:
            raise DemoError(f"the Shopify Admin stand-in refused the order: {added.text[:300]}")
        self.say(
            f"  16. an order whose webhook never came (order #{order_id % 1_000_000}, only in the "
            f"Shopify Admin API stand-in): POST {self.shopify_admin}/__orders → {added.status_code}"
        )
        source_id = shopify_source_id(shop)
        url = f"{self.gateway}/cron_playbooks/catchup"
        # The local stack accepts the emulators' unsigned OIDC tokens of Cloud Scheduler's identity.
        token = OidcToken(wiring.invoker("cloud_scheduler"), f"{self.gateway}/cron_playbooks")
        answer = self.api.post_json(
            url, {"sourceId": source_id}, {"Authorization": token.authorization(url, time.time())}
        )
        summary = answer.json() if answer.status_code == 200 else {}
        if "outcome" not in summary:
            raise DemoError(f"cron_playbooks /catchup answered {answer.status_code}: {answer.text}")
        self.say(
            f"       the catch-up pass: POST /cron_playbooks/catchup {{sourceId: {source_id}}} "
            f"(OIDC, as Cloud Scheduler) → 200 {summary['outcome']}: {summary['orders']} order(s) "
            f"read, {summary['published']} event(s) published"
        )
        recovered = self._order_event("order.created", str(order_id))
        self.say(
            f"       GET …/events?name=order.created → {recovered['eventId']}, outcome "
            f"{recovered.get('outcome')}: the event the webhook would have made"
        )
        _, late, key = self._send(
            "orders/create", order_id, key=f"demo-{self.run}-late", now=placed
        )
        if not late.get("duplicate") or late.get("eventId") != recovered["eventId"]:
            raise DemoError(
                f"the late webhook was not a duplicate of {recovered['eventId']}: {late}"
            )
        self.say(
            f"       the webhook arrives late after all: POST /webhook_shopify (X-Shopify-Event-Id "
            f"{key}) → 200 {json.dumps(late)}"
        )
        health = self.api.call("GET", f"{self.org}/webhook-sources/{source_id}").json()
        self.say(
            f"       GET …/webhook-sources/{source_id} → webhookHealth "
            f"{health.get('webhookHealth')}, missedEvents24h {health.get('missedEvents24h')}, "
            f"lastCatchUpAt {health.get('lastCatchUpAt')}"
        )

    def _order_event(self, name: str, order_id: str) -> dict[str, Any]:
        def entry() -> dict[str, Any] | None:
            events = self.api.call(
                "GET", f"{self.org}/events", params={"name": name, "pageSize": "50"}
            ).json()["events"]
            ours = [
                e for e in events if str((e.get("orderSummary") or {}).get("orderId")) == order_id
            ]
            return ours[0] if ours else None

        found = _poll(entry, PIPELINE_TIMEOUT_S)
        if found is None:
            raise DemoError(f"order {order_id} never reached the event log")
        return found


def _poll(check: Callable[[], T | None], timeout: float) -> T | None:
    """`check()`'s first truthy answer within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() >= deadline:
            return found or None
        time.sleep(POLL_S)


def _analytics_row(body: Any, playbook_id: str) -> dict[str, Any] | None:
    rows = body.get("playbooks") if isinstance(body, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and playbook_id in (row.get("playbookId"), row.get("id")):
            return row
    return None
