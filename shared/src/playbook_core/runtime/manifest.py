"""Typed view of functions/manifest.yaml, the one list of deployables every tool reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from playbook_core.domain.fairness import shard_queue_name
from playbook_core.ports import QueueConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class HttpTrigger(_Strict):
    kind: Literal["http"]
    auth: Literal["firebase", "public"]


class PubsubTrigger(_Strict):
    kind: Literal["pubsub"]
    topic: str
    subscription: str


class TasksTrigger(_Strict):
    kind: Literal["tasks"]
    queue: str


class FirestoreTrigger(_Strict):
    kind: Literal["firestore"]
    document: str
    event: Literal["created", "updated", "deleted", "written"]


class SchedulerJob(_Strict):
    job: str
    path: str
    schedule: str
    timezone: str


class SchedulerTrigger(_Strict):
    kind: Literal["scheduler"]
    jobs: list[SchedulerJob]


Trigger = Annotated[
    HttpTrigger | PubsubTrigger | TasksTrigger | FirestoreTrigger | SchedulerTrigger,
    Field(discriminator="kind"),
]


class Function(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    signature: Literal["http", "cloudevent"]
    trigger: Trigger


class Topic(_Strict):
    name: str
    dead_letter: Annotated[str, Field(alias="deadLetter")]
    max_delivery_attempts: Annotated[int, Field(alias="maxDeliveryAttempts", ge=5, le=100)]


class Retry(_Strict):
    max_attempts: Annotated[int, Field(alias="maxAttempts", ge=1)]
    min_backoff: Annotated[str, Field(alias="minBackoff", pattern=r"^[0-9]+s$")]
    max_backoff: Annotated[str, Field(alias="maxBackoff", pattern=r"^[0-9]+s$")]


class RateLimits(_Strict):
    max_concurrent_dispatches: Annotated[int, Field(alias="maxConcurrentDispatches", ge=1, le=5000)]


class Queue(_Strict):
    name: str
    retry: Retry
    # Step queues are sharded by org (domain/fairness.py): `name`, `name-1` … `name-(shards-1)`.
    shards: Annotated[int, Field(ge=1, le=32)] = 1
    rate_limits: Annotated[RateLimits | None, Field(alias="rateLimits")] = None

    def shard_names(self) -> list[str]:
        return [shard_queue_name(self.name, index) for index in range(self.shards)]

    def configs(self) -> list[QueueConfig]:
        """One QueueConfig per shard, as bootstrap, the local wiring and Terraform create them."""
        limits = self.rate_limits
        return [
            QueueConfig(
                name=name,
                max_attempts=self.retry.max_attempts,
                min_backoff_s=float(self.retry.min_backoff.removesuffix("s")),
                max_backoff_s=float(self.retry.max_backoff.removesuffix("s")),
                max_concurrent_dispatches=limits.max_concurrent_dispatches if limits else None,
            )
            for name in self.shard_names()
        ]


class Delivery(_Strict):
    """How a push subscription gives up: its dead-letter topic (None: none) after N attempts."""

    dead_letter: str | None
    max_delivery_attempts: int


class Manifest(_Strict):
    region: str
    topics: list[Topic]
    queues: list[Queue]
    functions: list[Function]

    @model_validator(mode="after")
    def _pubsub_topics_are_declared(self) -> Manifest:
        known = {t.name for t in self.topics} | {t.dead_letter for t in self.topics}
        for function in self.functions:
            if isinstance(function.trigger, PubsubTrigger) and function.trigger.topic not in known:
                raise ValueError(f"{function.name} listens on an undeclared topic")
        return self

    def steps_queue(self) -> Queue:
        """The queue tasks triggers are fed by (Settings.steps_queue; one, as Terraform checks)."""
        names = {f.trigger.queue for f in self.functions if isinstance(f.trigger, TasksTrigger)}
        (name,) = names
        return next(q for q in self.queues if q.name == name)

    def document_triggered(self) -> list[str]:
        """Functions that Firestore document events reach (the only ones the hook may call)."""
        return [f.name for f in self.functions if isinstance(f.trigger, FirestoreTrigger)]

    def queue_configs(self) -> list[QueueConfig]:
        """Every queue to create, shards included."""
        return [config for queue in self.queues for config in queue.configs()]

    def delivery(self, trigger: PubsubTrigger) -> Delivery:
        """How a pubsub trigger's subscription gives up: as its topic says.

        One on a dead-letter topic has no dead-letter topic of its own (it would feed itself):
        deployed, Pub/Sub retries it until the message expires; locally it gives up after its
        source topic's attempts.
        """
        for topic in self.topics:
            if trigger.topic == topic.name:
                return Delivery(
                    dead_letter=topic.dead_letter,
                    max_delivery_attempts=topic.max_delivery_attempts,
                )
        source = next(t for t in self.topics if t.dead_letter == trigger.topic)
        return Delivery(dead_letter=None, max_delivery_attempts=source.max_delivery_attempts)


def _manifest_path() -> Path:
    """Beside main.py in the deploy artifact (`make package`); in functions/ of the repo.

    The repo is recognised by its layout (shared/src/playbook_core), so an artifact that lacks
    its manifest fails with this path rather than finding a repo's around it.
    """
    package = Path(__file__).resolve().parents[1]
    if package.parent.name == "src" and package.parents[1].name == "shared":
        return package.parents[2] / "functions" / "manifest.yaml"
    return package.parent / "manifest.yaml"


DEFAULT_PATH = _manifest_path()


def load_manifest(path: Path = DEFAULT_PATH) -> Manifest:
    return Manifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
