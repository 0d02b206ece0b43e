"""Typed view of functions/manifest.yaml, the one list of deployables every tool reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


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


class Queue(_Strict):
    name: str
    retry: Retry


class Manifest(_Strict):
    region: str
    topics: list[Topic]
    queues: list[Queue]
    functions: list[Function]


DEFAULT_PATH = Path(__file__).resolve().parents[4] / "functions" / "manifest.yaml"


def load_manifest(path: Path = DEFAULT_PATH) -> Manifest:
    return Manifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
