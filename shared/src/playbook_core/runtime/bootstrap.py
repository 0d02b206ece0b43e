"""Build the app once per instance from Settings: adapters chosen by PLAYBOOKS_BACKEND."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from playbook_core import logging as json_logging
from playbook_core.adapters.agent_http import HttpAgentHarness
from playbook_core.adapters.blackleaf import BlackleafSms
from playbook_core.adapters.firebase_auth import EmulatorTokens, FirebaseTokens
from playbook_core.adapters.ids import RandomIds
from playbook_core.adapters.mailjet import MailjetMailer
from playbook_core.adapters.secrets import SecretManagerSecrets, StoreSecrets
from playbook_core.adapters.service_tokens import (
    GoogleServiceTokens,
    LocalServiceTokens,
    OidcToken,
    bearer,
)
from playbook_core.adapters.slack import SlackWebhook
from playbook_core.config import SHOPIFY_ADMIN_API_VERSION, Caller, Settings, load_settings
from playbook_core.domain.errors import BadRequest, Forbidden, Unavailable
from playbook_core.domain.ids import is_plain_id
from playbook_core.domain.unsubscribe_tokens import MIN_KEY as MIN_UNSUBSCRIBE_KEY
from playbook_core.domain.unsubscribe_tokens import UnsubscribeClaim
from playbook_core.ports import (
    AgentHarness,
    Clock,
    DocumentStore,
    EventBus,
    IdFactory,
    Secrets,
    ServiceTokenVerifier,
    SmsSender,
    StoreOrders,
    TaskQueue,
    TokenVerifier,
)
from playbook_core.runtime.cloudevents import DocumentChange, PubsubMessage
from playbook_core.runtime.manifest import FirestoreTrigger, Manifest, PubsubTrigger, load_manifest
from playbook_core.runtime.tasks import TaskAttempt
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.compliance.unsubscribe import UnsubscribeLinks
from playbook_core.service.execution import step_task
from playbook_core.service.execution.pacing import OrgPacer
from playbook_core.service.execution.provider_alerts import Alerter
from playbook_core.service.execution.run_start import Runs, StepTarget
from playbook_core.service.execution.send_step import Senders
from playbook_core.service.execution.step_handler import Engine
from playbook_core.service.execution.step_handler import run_step as run_engine_step
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.ingress.recent import Recent
from playbook_core.service.reporting.health import check_health, report_configuration

_log = logging.getLogger("playbooks.bootstrap")

# The internal entry points and the caller identities whose OIDC tokens each accepts: the same
# pairs infra/ grants run.invoker (tests/unit/test_infra.py compares them). The manifest is not
# deployed with the code, so the list lives here.
INTERNAL_CALLERS: dict[str, tuple[Caller, ...]] = {
    "execute_step": ("cloud_tasks",),
    "cron_playbooks": ("cloud_scheduler", "cloud_tasks"),  # calendar sweeps are tasks (§8.4)
    "on_event_published": ("pubsub_push",),
    "on_order_event": ("pubsub_push",),
    "on_event_dead_lettered": ("pubsub_push",),
}

# Provider → the functions whose code builds its client. Infra mounts a provider's secrets into
# these functions only (never the API's), so each reports its own configuration and health reads
# the reports (tests/unit/test_provider_users.py holds this to infra's secret consumers).
PROVIDER_USERS: dict[str, tuple[str, ...]] = {
    "mailjet": ("execute_step",),
    "blackleaf": ("execute_step", "webhook_blackleaf"),  # webhook_blackleaf: STOP confirmations
    "harness": ("execute_step", "playbooks_api"),  # playbooks_api: generating drafts
    "slack": ("execute_step", "on_event_dead_lettered"),  # ops' alerts when no org webhook
}
# A running instance reports again after this, so its report stays fresh for health.
STATUS_REPORT_EVERY = timedelta(hours=1)


def _service_name(function: str) -> str:
    """Cloud Run names a function's service (K_SERVICE) in lower case with hyphens."""
    return function.lower().replace("_", "-")


@dataclass
class App:
    settings: Settings
    store: DocumentStore
    bus: EventBus
    queue: TaskQueue
    clock: Clock
    ids: IdFactory = field(default_factory=RandomIds)
    verifier: TokenVerifier | None = None
    caller_tokens: ServiceTokenVerifier | None = None
    agents: AgentHarness | None = None
    vault: Secrets | None = None
    built_engine: Engine | None = None
    texts: SmsSender | None = None  # built on first use from the Blackleaf settings
    orders_reader: StoreOrders | None = None  # the store APIs, built on first catch-up
    status_reported_at: datetime | None = None
    recent: Recent = field(default_factory=Recent, repr=False)  # what webhooks read, kept
    pacer: OrgPacer = field(init=False, repr=False)  # this instance's per-org run starts
    _status_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.pacer = OrgPacer(self.settings.org_run_starts_per_second)

    def secrets(self) -> Secrets:
        if self.vault is None:
            settings = self.settings
            # Deployed, or the deployed-shape tests' Secret Manager emulator.
            emulated = settings.secret_manager_emulator_host
            self.vault = (
                SecretManagerSecrets(settings.project, emulator_host=emulated)
                if settings.deployed_service is not None or emulated
                else StoreSecrets(self.store)
            )
        return self.vault

    def harness(self) -> AgentHarness:
        if self.agents is None:
            url = self.settings.agent_harness_url
            if not url:
                raise Unavailable("the agent harness is not configured (AGENT_HARNESS_URL)")
            token = self.settings.agent_harness_token
            self.agents = HttpAgentHarness(url, token.get_secret_value() if token else None)
        return self.agents

    @property
    def tokens(self) -> TokenVerifier:
        if self.verifier is None:
            self.verifier = _token_verifier(self.settings)
        return self.verifier

    @property
    def service_tokens(self) -> ServiceTokenVerifier:
        if self.caller_tokens is None:
            self.caller_tokens = _service_token_verifier(self.settings)
        return self.caller_tokens

    def check_caller(self, function: str, authorization: str | None) -> dict[str, Any]:
        """Check an internal entry point's caller before its request body is read.

        The OIDC token must be for this function's URL and name one of its callers' identities;
        raises Unauthenticated or Forbidden.
        """
        callers = INTERNAL_CALLERS.get(function)
        if callers is None:
            raise Forbidden(f"{function} is not an internal entry point")
        return self.service_tokens.verify(
            bearer(authorization),
            audience=self.settings.function_url(function),
            callers=frozenset(self.settings.invoker(caller) for caller in callers),
        )

    def health(self) -> dict[str, Any]:
        return check_health(
            probes={
                "firestore": self.store.ping,
                "pubsub": self.bus.ping,
                "tasks": self.queue.ping,
            },
            store=self.store,
            provider_users=PROVIDER_USERS,
            now=self.clock.now(),
        )

    def providers_configured(self) -> dict[str, bool]:
        """Which providers this instance's settings configure: booleans, never a value."""
        s = self.settings
        return {
            "mailjet": bool(s.mailjet_api_key and s.mailjet_secret_key),
            "blackleaf": bool(s.blackleaf_api_base and s.blackleaf_api_key),
            "harness": bool(s.agent_harness_url),
            "slack": bool(s.slack_alert_webhook_url),
        }

    def served_functions(self) -> tuple[str, ...]:
        """The provider-using functions this instance runs.

        Deployed: the one K_SERVICE names. Locally: all of them (the gateway's process, or each
        function's own process behind it, reports them all).
        """
        known = sorted({function for users in PROVIDER_USERS.values() for function in users})
        service = self.settings.deployed_service
        if service is None:
            return tuple(known)
        return tuple(f for f in known if _service_name(f) == _service_name(service))

    def report_status(self) -> None:
        """Report each served function's provider configuration (see PROVIDER_USERS).

        At most once per STATUS_REPORT_EVERY per instance; a failed write is logged, never raised.
        """
        now = self.clock.now()
        with self._status_lock:
            last = self.status_reported_at
            if last is not None and now - last < STATUS_REPORT_EVERY:
                return
            self.status_reported_at = now
        configured = self.providers_configured()
        for function in self.served_functions():
            uses = [p for p, users in PROVIDER_USERS.items() if function in users]
            report_configuration(
                self.store, function, {p: configured[p] for p in uses}, now=now,
                revision=self.settings.deployed_revision,
            )  # fmt: skip

    @property
    def step_target(self) -> StepTarget:
        base = self.settings.functions_base_url.rstrip("/")
        return StepTarget(
            queue=self.settings.steps_queue, url=f"{base}/execute_step/",
            shards=self.settings.step_shards, pacer=self.pacer,
        )  # fmt: skip

    @property
    def runs(self) -> Runs:
        """The ports use cases that start or move runs take, bundled (service/execution)."""
        return Runs(store=self.store, queue=self.queue, target=self.step_target, clock=self.clock)

    @property
    def authoring(self) -> Authoring:
        """The ports use cases that write playbooks take, bundled (service/authoring)."""
        return Authoring(store=self.store, clock=self.clock, ids=self.ids)

    @property
    def publishing(self) -> Publishing:
        """The ports use cases that publish events take, bundled (service/ingress)."""
        return Publishing(
            store=self.store, bus=self.bus, topic=self.settings.events_topic, clock=self.clock,
            recent=self.recent,
        )  # fmt: skip

    def document_changed(self, change: DocumentChange) -> dict[str, Any]:
        from playbook_core.service.ingress import document_changes  # noqa: PLC0415

        return document_changes.document_changed(
            change,
            publishing=self.publishing,
        )

    def event_published(self, message: PubsubMessage) -> dict[str, Any]:
        from playbook_core.service.dispatch import dispatcher  # noqa: PLC0415

        return dispatcher.dispatch_message(
            message,
            runs=self.runs,
        )

    def event_dead_lettered(self, message: PubsubMessage) -> dict[str, Any]:
        from playbook_core.service.dispatch import dead_letters  # noqa: PLC0415

        return dead_letters.record_dead_letter(
            message, store=self.store, clock=self.clock, alerts=self.alerter()
        )

    def alerter(self) -> Alerter:
        """Slack alerts: an org's own webhook, else ops' (SLACK_ALERT_WEBHOOK_URL)."""
        fallback = self.settings.slack_alert_webhook_url
        return Alerter(
            self.store,
            SlackWebhook(),
            self.secrets(),
            fallback.get_secret_value() if fallback else None,
        )

    def order_event(self, message: PubsubMessage) -> dict[str, Any]:
        from playbook_core.service.reporting import attribution  # noqa: PLC0415

        return attribution.handle_order_message(message, store=self.store, clock=self.clock)

    def receive_webhook(
        self,
        platform: str,
        *,
        headers: dict[str, str],
        body: bytes,
        remote_ip: str | None,
        query_org_id: str | None,
    ) -> tuple[int, dict[str, Any]]:
        from playbook_core.service.ingress import webhooks  # noqa: PLC0415

        s = self.settings
        fallback = (
            s.shopify_webhook_secret if platform == "shopify" else s.woocommerce_webhook_secret
        )
        return webhooks.receive_webhook(
            platform,
            headers=headers,
            body=body,
            remote_ip=remote_ip,
            query_org_id=query_org_id,
            publishing=self.publishing,
            secrets=self.secrets(),
            fallback_secret=fallback.get_secret_value() if fallback else None,
        )

    def sms_sender(self) -> SmsSender | None:
        """Blackleaf, when configured (the engine builds its own for steps)."""
        s = self.settings
        if self.texts is None and s.blackleaf_api_base and s.blackleaf_api_key:
            self.texts = BlackleafSms(s.blackleaf_api_base, s.blackleaf_api_key.get_secret_value())
        return self.texts

    def receive_sms(
        self, *, headers: dict[str, str], body: bytes, query_org_id: str | None
    ) -> dict[str, Any]:
        """`webhook_blackleaf`: one signed inbound text (consent.md §3)."""
        from playbook_core.service.compliance import sms_inbound  # noqa: PLC0415

        inbound = sms_inbound.SmsInbound(
            store=self.store, clock=self.clock, ids=self.ids, secrets=self.secrets(),
            sms=self.sms_sender(),
        )  # fmt: skip
        return sms_inbound.receive_sms(
            headers=headers, body=body, query_org_id=query_org_id, inbound=inbound
        )

    def unsubscribe_keys(self) -> tuple[str, ...]:
        """The configured keys; Unavailable when there is none, or one too short to be a key."""
        keys = self.settings.unsubscribe_keys()
        if not keys or any(len(key) < MIN_UNSUBSCRIBE_KEY for key in keys):
            raise Unavailable(
                f"unsubscribe links are not configured (UNSUBSCRIBE_KEY: comma-separated keys of "
                f"at least {MIN_UNSUBSCRIBE_KEY} characters)"
            )
        return keys

    @property
    def unsubscribe_links(self) -> UnsubscribeLinks | None:
        """What the send pipeline signs unsubscribe links with (consent.md §4).

        None when no UNSUBSCRIBE_KEY is configured: then no marketing email can carry a link.
        """
        try:
            keys = self.unsubscribe_keys()
        except Unavailable:
            return None
        return UnsubscribeLinks(base_url=self.settings.public_base, keys=keys)

    def unsubscribe_claim(self, token: str) -> UnsubscribeClaim:
        """The verified claim of an unsubscribe token; BadRequest for one we did not sign."""
        from playbook_core.service.compliance import unsubscribe  # noqa: PLC0415

        return unsubscribe.verified(token, self.unsubscribe_keys())

    def unsubscribe(self, token: str, ip: str | None, user_agent: str | None) -> dict[str, Any]:
        """`email_unsubscribe` POST: record the revocation the token names (idempotent)."""
        from playbook_core.service.compliance import unsubscribe  # noqa: PLC0415

        return unsubscribe.unsubscribe(
            token, ip, user_agent, keys=self.unsubscribe_keys(), store=self.store,
            clock=self.clock, ids=self.ids,
        )  # fmt: skip

    def cron(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        from playbook_core.service.scheduling import tick  # noqa: PLC0415

        if path == "/catchup":
            return self.catch_up(body.get("sourceId"))
        summary = tick.handle_cron(path, body, runs=self.runs, publishing=self.publishing)
        if path in tick.TICK_PATHS and self.clock.now().minute % 15 == 0:
            try:  # every quarter hour, one task per source; the tick's own work is done already
                summary["catchUp"] = self.catch_up(None)
            except Unavailable:
                summary["catchUp"] = {"queued": 0, "error": "unavailable"}
        return summary

    def catch_up(self, source_id: object) -> dict[str, Any]:
        """`cron_playbooks /catchup` (issue #16): one source's pass, or a task for each source."""
        from playbook_core.service.ingress import catch_up  # noqa: PLC0415

        if source_id is None:
            base = self.settings.functions_base_url.rstrip("/")
            return catch_up.fan_out(
                store=self.store, clock=self.clock, queue=self.queue,
                queue_name=self.settings.steps_queue, url=f"{base}/cron_playbooks/catchup",
            )  # fmt: skip
        if not is_plain_id(source_id):  # a hostile id is refused before any read
            raise BadRequest("sourceId is a webhook source id")
        ports = catch_up.CatchUp(
            self.publishing, self.secrets(), self.store_orders(), alerts=self.alerter()
        )
        return catch_up.run_pass(source_id, ports=ports)

    def store_orders(self) -> StoreOrders:
        if self.orders_reader is None:
            from playbook_core.adapters.store_apis import StoreApiOrders  # noqa: PLC0415

            self.orders_reader = StoreApiOrders(
                shopify_base=self.settings.shopify_admin_api_base,
                shopify_version=SHOPIFY_ADMIN_API_VERSION,
                woocommerce_base=self.settings.woocommerce_api_base,
            )
        return self.orders_reader

    def engine(self) -> Engine:
        """Built once per instance (provider clients are costly); jitter is drawn per step."""
        if self.built_engine is None:
            self.built_engine = self._build_engine()
        return dataclasses.replace(self.built_engine, jitter=random.uniform(0.8, 1.2))  # noqa: S311

    def _build_engine(self) -> Engine:
        s = self.settings
        mailer = None
        if s.mailjet_api_key and s.mailjet_secret_key:
            mailer = MailjetMailer(
                s.mailjet_api_base,
                s.mailjet_api_key.get_secret_value(),
                s.mailjet_secret_key.get_secret_value(),
                s.mailjet_from_email,
                s.mailjet_from_name,
            )
        sms = None
        if s.blackleaf_api_base and s.blackleaf_api_key:
            sms = BlackleafSms(s.blackleaf_api_base, s.blackleaf_api_key.get_secret_value())
        alerts = self.alerter()
        try:
            harness: AgentHarness | None = self.harness()
        except Unavailable:
            harness = None
        return Engine(
            store=self.store,
            queue=self.queue,
            target=self.step_target,
            clock=self.clock,
            bus=self.bus,
            topic=s.events_topic,
            secrets=self.secrets(),
            slack=SlackWebhook(),
            senders=Senders(
                mailer=mailer, sms=sms, alerts=alerts, unsubscribe=self.unsubscribe_links
            ),
            harness=harness,
            jitter=random.uniform(0.8, 1.2),  # noqa: S311
        )

    def run_step(self, task: step_task.StepTask, attempt: TaskAttempt) -> dict[str, Any]:
        del attempt  # the payload's own attempt number is authoritative (§7.3)
        return run_engine_step(task, self.engine())


def _token_verifier(settings: Settings) -> TokenVerifier:
    """Unsigned emulator tokens only when the auth emulator is configured (never when deployed)."""
    if settings.firebase_auth_emulator_host:
        return EmulatorTokens(settings.project)
    return FirebaseTokens(settings.project, settings.firebase_certs_url)


def _service_token_verifier(settings: Settings) -> ServiceTokenVerifier:
    """Unsigned local tokens only under PLAYBOOKS_LOCAL_OIDC (config refuses it when deployed)."""
    if settings.local_oidc:
        return LocalServiceTokens()
    return GoogleServiceTokens(settings.google_oidc_certs_url)


def _trigger_urls(settings: Settings, manifest: Manifest) -> dict[str, str]:
    """Firestore document pattern (`orders/{orderId}`) → the gateway's trigger route."""
    base, project = settings.functions_base_url, settings.project
    return {
        f.trigger.document: f"{base}/functions/projects/{project}/triggers/{project}:{f.name}"
        for f in manifest.functions
        if isinstance(f.trigger, FirestoreTrigger)
    }


def _build_embedded(settings: Settings) -> App:
    from playbook_core.adapters.clock import SystemClock  # noqa: PLC0415 - per-backend imports
    from playbook_core.adapters.embedded import EmbeddedStore  # noqa: PLC0415
    from playbook_core.adapters.firestore_events import FirestoreTriggerPoster  # noqa: PLC0415
    from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue  # noqa: PLC0415

    manifest = load_manifest()
    urls = _trigger_urls(settings, manifest)

    def url_for(path: str) -> str | None:
        # Patterns are `collection/{id}`: only top-level documents of that collection match.
        parts = path.split("/")
        if len(parts) != 2:
            return None
        return next((url for doc, url in urls.items() if doc.split("/")[0] == parts[0]), None)

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    store = EmbeddedStore(
        str(Path(settings.data_dir) / "playbooks.sqlite3"),
        on_commit=FirestoreTriggerPoster(url_for),
    )
    bus = InProcessBus()
    for function in manifest.functions:
        if isinstance(function.trigger, PubsubTrigger):
            delivery = manifest.delivery(function.trigger)
            bus.subscribe(
                function.trigger.topic,
                f"{settings.functions_base_url}/{function.name}/",
                max_delivery_attempts=delivery.max_delivery_attempts,
                dead_letter=delivery.dead_letter,
                oidc=OidcToken(
                    settings.invoker("pubsub_push"), settings.function_url(function.name)
                ),
            )
    queue = InProcessTaskQueue(
        service_account_email=settings.invoker("cloud_tasks"),
        audience_base=settings.functions_base_url,
    )
    for config in manifest.queue_configs():
        queue.create_queue(config)
    return App(settings, store, bus, queue, SystemClock())


def _build_google(settings: Settings) -> App:
    from playbook_core.adapters.clock import SystemClock  # noqa: PLC0415 - per-backend imports
    from playbook_core.adapters.cloud_tasks import CloudTasksQueue  # noqa: PLC0415
    from playbook_core.adapters.firestore import FirestoreStore  # noqa: PLC0415
    from playbook_core.adapters.pubsub import PubsubBus  # noqa: PLC0415

    return App(
        settings,
        FirestoreStore(settings.project),
        PubsubBus(settings.project),
        CloudTasksQueue(
            settings.project,
            settings.region,
            emulator_host=settings.cloud_tasks_emulator_host,
            service_account_email=settings.invoker("cloud_tasks"),
            audience_base=settings.functions_base_url,
        ),
        SystemClock(),
    )


def build(settings: Settings) -> App:
    json_logging.configure()
    built = _build_embedded(settings) if settings.backend == "embedded" else _build_google(settings)
    _log.info("playbooks app built", extra={"fields": {"backend": settings.backend}})
    return built


_app: App | None = None
_lock = threading.Lock()


def app() -> App:
    """The instance's app, built on first use (never at import: cold starts stay cheap).

    Its provider report is written on the first use and refreshed when due, outside the lock.
    """
    global _app  # noqa: PLW0603 - one app per function instance, by design
    with _lock:
        if _app is None:
            _app = build(load_settings())
        current = _app
    current.report_status()
    return current


def use(prebuilt: App | None) -> None:
    """Install a prebuilt app (tests, the local stack) or clear it; an installed one reports."""
    global _app  # noqa: PLW0603
    with _lock:
        _app = prebuilt
    if prebuilt is not None:
        prebuilt.report_status()
