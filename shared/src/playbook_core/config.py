"""Settings: the only reader of environment variables. Fails closed in a deployed runtime."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from playbook_core.domain.errors import PlaybooksError


class ConfigError(PlaybooksError):
    code = "configuration"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


# Where Google publishes the keys that sign the tokens we verify: service accounts' OIDC ID tokens
# (Cloud Tasks, Scheduler, Pub/Sub push) and Firebase ID tokens. Settings, so that the
# deployed-shape tests can run the real verification against keys of their own.
GOOGLE_OIDC_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
FIREBASE_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)


# The Shopify Admin API version the catch-up pass speaks (a supported, stable release).
SHOPIFY_ADMIN_API_VERSION = "2025-01"


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _https_or_loopback(url: str) -> bool:
    return urlsplit(url).scheme == "https" or _loopback(url)


# The identities that call the internal entry points with a Google-signed OIDC token, named as
# infra/iam.tf's `google_service_account.caller` keys (and infra/modules/manifest `invokers`).
Caller = Literal["cloud_tasks", "cloud_scheduler", "pubsub_push"]


def caller_account(caller: Caller, project: str) -> str:
    """The email infra/iam.tf gives a caller identity (`pb-<caller>`): the default when unset."""
    return f"pb-{caller.replace('_', '-')}@{project}.iam.gserviceaccount.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLAYBOOKS_", extra="ignore", frozen=True)

    backend: Literal["emulators", "embedded"] = "emulators"
    data_dir: str = ".local"
    gateway_port: int = 8080
    # Where task and push targets point: the local gateway, or the deployed functions' base URL.
    functions_base_url: str = "http://127.0.0.1:8080"
    # Where people reach the public functions (unsubscribe links in email, the inbound SMS URL
    # an editor configures at Blackleaf): a custom domain in front of them; unset, the above.
    public_base_url: str | None = None
    steps_queue: str = "playbook-steps"
    # How many org shards the steps queue has (the manifest's `shards`; Terraform and the local
    # stack set it), and how many runs of one org an instance starts per second before it
    # schedules the rest later (service/execution/pacing.py).
    step_shards: Annotated[int, Field(ge=1, le=32)] = 1
    org_run_starts_per_second: Annotated[float, Field(gt=0)] = 20.0
    events_topic: str = "playbook-events"
    region: str = "us-central1"
    # Caller identities whose OIDC tokens the internal entry points accept (and which the task
    # and scheduler adapters request); unset: `caller_account`'s name in this project.
    tasks_invoker: str | None = None
    scheduler_invoker: str | None = None
    push_invoker: str | None = None
    # Accept unsigned (`alg: none`) OIDC tokens from the local emulators; refused when deployed.
    local_oidc: bool = False
    google_oidc_certs_url: str = GOOGLE_OIDC_CERTS_URL
    firebase_certs_url: str = FIREBASE_CERTS_URL

    project: str = Field("demo-playbooks", validation_alias=_env("GOOGLE_CLOUD_PROJECT"))
    deployed_service: str | None = Field(None, validation_alias=_env("K_SERVICE"))
    deployed_revision: str | None = Field(None, validation_alias=_env("K_REVISION"))
    firestore_emulator_host: str | None = Field(
        None, validation_alias=_env("FIRESTORE_EMULATOR_HOST")
    )
    pubsub_emulator_host: str | None = Field(None, validation_alias=_env("PUBSUB_EMULATOR_HOST"))
    cloud_tasks_emulator_host: str | None = Field(
        None, validation_alias=_env("CLOUD_TASKS_EMULATOR_HOST")
    )
    cloud_scheduler_emulator_host: str | None = Field(
        None, validation_alias=_env("CLOUD_SCHEDULER_EMULATOR_HOST")
    )
    firebase_auth_emulator_host: str | None = Field(
        None, validation_alias=_env("FIREBASE_AUTH_EMULATOR_HOST")
    )
    secret_manager_emulator_host: str | None = Field(
        None, validation_alias=_env("SECRET_MANAGER_EMULATOR_HOST")
    )
    shopify_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("SHOPIFY_WEBHOOK_SECRET")
    )
    woocommerce_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("WOOCOMMERCE_WEBHOOK_SECRET")
    )
    cron_secret: SecretStr | None = Field(None, validation_alias=_env("CRON_SECRET"))
    mailjet_api_base: str = Field(
        "https://api.mailjet.com", validation_alias=_env("MAILJET_API_BASE")
    )
    mailjet_api_key: SecretStr | None = Field(None, validation_alias=_env("MAILJET_API_KEY"))
    mailjet_secret_key: SecretStr | None = Field(None, validation_alias=_env("MAILJET_SECRET_KEY"))
    mailjet_from_email: str = Field(
        "playbooks@bakedbot.ai", validation_alias=_env("MAILJET_FROM_EMAIL")
    )
    mailjet_from_name: str = Field("BakedBot AI", validation_alias=_env("MAILJET_FROM_NAME"))
    # Where the catch-up pass reads orders (issue #16): unset, each shop's own
    # `https://{shop}/admin/api/...` and each WooCommerce store's own URL; set (the local stack),
    # one stand-in serving every shop at `{base}/{shop}/admin/api/...` and every store at
    # `{base}/{storeHost}/wp-json/...`.
    shopify_admin_api_base: str | None = Field(
        None, validation_alias=_env("SHOPIFY_ADMIN_API_BASE")
    )
    woocommerce_api_base: str | None = Field(None, validation_alias=_env("WOOCOMMERCE_API_BASE"))
    blackleaf_api_base: str | None = Field(None, validation_alias=_env("BLACKLEAF_API_BASE"))
    blackleaf_api_key: SecretStr | None = Field(None, validation_alias=_env("BLACKLEAF_API_KEY"))
    agent_harness_url: str | None = Field(None, validation_alias=_env("AGENT_HARNESS_URL"))
    agent_harness_token: SecretStr | None = Field(
        None, validation_alias=_env("AGENT_HARNESS_TOKEN")
    )
    slack_alert_webhook_url: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_ALERT_WEBHOOK_URL")
    )
    # Signs unsubscribe links (consent.md §4): one or more keys separated by commas, the first
    # signs and all verify, so a rotation keeps old links working (prepend, drop after 30 days).
    unsubscribe_key: SecretStr | None = Field(None, validation_alias=_env("UNSUBSCRIBE_KEY"))

    @model_validator(mode="after")
    def _fail_closed_when_deployed(self) -> Settings:
        if self.deployed_service:
            if self.backend != "emulators":
                raise ConfigError("PLAYBOOKS_BACKEND=embedded is refused in a deployed runtime")
            if self.firebase_auth_emulator_host:
                raise ConfigError("FIREBASE_AUTH_EMULATOR_HOST is refused in a deployed runtime")
            if self.local_oidc:
                raise ConfigError("PLAYBOOKS_LOCAL_OIDC is refused in a deployed runtime")
        defaults = {"google_oidc_certs_url": GOOGLE_OIDC_CERTS_URL,
                    "firebase_certs_url": FIREBASE_CERTS_URL}  # fmt: skip
        for name, google in defaults.items():
            url = getattr(self, name)
            if not _https_or_loopback(url):
                # Keys fetched in clear text from another host would let anyone sign our tokens.
                raise ConfigError(f"PLAYBOOKS_{name.upper()} must be https (or http on loopback)")
            if self.deployed_service and url != google and not _loopback(url):
                # Deployed, only Google's keys (or the deployed-shape tests' own, on loopback).
                raise ConfigError(f"PLAYBOOKS_{name.upper()} must be Google's when deployed")
        return self

    def invoker(self, caller: Caller) -> str:
        """The service account email whose OIDC tokens `caller` attaches."""
        configured = {
            "cloud_tasks": self.tasks_invoker,
            "cloud_scheduler": self.scheduler_invoker,
            "pubsub_push": self.push_invoker,
        }[caller]
        return configured or caller_account(caller, self.project)

    def function_url(self, function: str) -> str:
        """A function's own URL (`<base>/<name>`): the audience of the tokens its callers carry."""
        return f"{self.functions_base_url.rstrip('/')}/{function}"

    @property
    def public_base(self) -> str:
        """The base of the URLs people are given (links in email, webhook URLs to configure)."""
        return (self.public_base_url or self.functions_base_url).rstrip("/")

    def unsubscribe_keys(self) -> tuple[str, ...]:
        """The unsubscribe keys, the signing one first; empty when none is configured."""
        configured = self.unsubscribe_key.get_secret_value() if self.unsubscribe_key else ""
        return tuple(key.strip() for key in configured.split(",") if key.strip())


def load_settings() -> Settings:
    """Read the environment once; a bad value stops bootstrap with one clear message."""
    return Settings()
