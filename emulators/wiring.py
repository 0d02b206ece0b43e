"""Manifest → topics, push subscriptions, queues, scheduler jobs and Firestore triggers, locally.

Push subscriptions and scheduler jobs carry OIDC tokens of the caller identities, for the target
function's own URL, as infra/ declares them; `invoker` names the identities the gateway accepts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emulators import official, pubsub_push
from playbook_core.adapters.service_tokens import OidcToken
from playbook_core.config import Caller, caller_account
from playbook_core.runtime.manifest import (
    FirestoreTrigger,
    Manifest,
    PubsubTrigger,
    SchedulerTrigger,
)

if TYPE_CHECKING:
    from playbook_core.adapters.pubsub import PubsubBus

PROJECT = official.PROJECT


@dataclass(frozen=True)
class Targets:
    """Where the wiring points things and which emulators it talks to (None: not running)."""

    gateway: str
    region: str
    scheduler: str
    firestore: official.Emulator | None = None
    pubsub: str | None = None
    tasks: str | None = None
    push_relay: str | None = None  # emulators/pubsub_push: the token the Pub/Sub emulator omits


def invoker(caller: Caller) -> str:
    """The service account a local caller's tokens name (the gateway gets the same values)."""
    return caller_account(caller, PROJECT)


@contextmanager
def _pubsub_env(host: str) -> Iterator[None]:
    # The official Pub/Sub client finds the emulator only through this variable.
    saved = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = saved


def wire_pubsub(manifest: Manifest, targets: Targets) -> list[str]:
    from playbook_core.adapters.pubsub import PubsubBus  # noqa: PLC0415 - emulators backend only

    # Callers pass both for the emulators backend: without the relay no push would carry a token.
    assert targets.pubsub is not None  # noqa: S101
    assert targets.push_relay is not None  # noqa: S101
    with _pubsub_env(targets.pubsub):
        bus = PubsubBus(PROJECT)
        try:
            return _wire_topics(bus, manifest, targets.gateway, targets.push_relay)
        finally:
            bus.close()


def _wire_topics(bus: PubsubBus, manifest: Manifest, gateway: str, relay: str) -> list[str]:
    done: list[str] = []
    for topic in manifest.topics:
        bus.ensure_topic(topic.name, topic.dead_letter)
        done.append(f"topic {topic.name} (dead letter {topic.dead_letter})")
    for function in manifest.functions:
        if not isinstance(function.trigger, PubsubTrigger):
            continue
        delivery = manifest.delivery(function.trigger)  # a dead-letter topic's: none of its own
        push_url = f"{gateway}/{function.name}/"
        bus.ensure_push_subscription(
            function.trigger.topic, function.trigger.subscription,
            pubsub_push.relay_url(relay, push_url),
            delivery.dead_letter, delivery.max_delivery_attempts,
            oidc=OidcToken(invoker("pubsub_push"), f"{gateway}/{function.name}"),
        )  # fmt: skip
        done.append(
            f"subscription {function.trigger.subscription} → {push_url} (OIDC, via {relay})"
        )
    return done


def wire_queues(manifest: Manifest, targets: Targets) -> list[str]:
    from playbook_core.adapters.cloud_tasks import CloudTasksQueue  # noqa: PLC0415

    queue = CloudTasksQueue(PROJECT, targets.region, emulator_host=targets.tasks)
    done: list[str] = []
    for config in manifest.queue_configs():
        queue.ensure_queue(config)
        limit = config.max_concurrent_dispatches or "default"
        done.append(f"queue {config.name} (max {config.max_attempts} attempts, {limit} at once)")
    return done


def wire_scheduler(manifest: Manifest, targets: Targets) -> list[str]:
    wanted = [
        (job, f"{targets.gateway}/{function.name}", f"{targets.gateway}/{function.name}{job.path}")
        for function in manifest.functions
        if isinstance(function.trigger, SchedulerTrigger)
        for job in function.trigger.jobs
    ]
    if not wanted:
        return []
    from playbook_core.adapters.scheduler import SchedulerJobs  # noqa: PLC0415

    jobs = SchedulerJobs(PROJECT, targets.region, targets.scheduler, invoker("cloud_scheduler"))
    for job, function_url, url in wanted:
        jobs.ensure_http_job(job.job, job.schedule, job.timezone, url, audience=function_url)
    return [
        f"job {job.job} ({job.schedule} {job.timezone}) → {url} (OIDC)" for job, _, url in wanted
    ]


def wire_firestore(manifest: Manifest, targets: Targets) -> list[str]:
    assert targets.firestore is not None  # noqa: S101 - callers pass it for the emulators backend
    done: list[str] = []
    for function in manifest.functions:
        if isinstance(function.trigger, FirestoreTrigger):
            trigger = function.trigger
            official.register_firestore_trigger(
                targets.firestore, function.name, trigger.document, trigger.event
            )
            done.append(f"trigger {trigger.document} ({trigger.event}) → {function.name}")
    return done


def wire(manifest: Manifest, backend: str, targets: Targets) -> list[str]:
    """Idempotent, so a re-run after an emulator reset restores everything; returns what it did.

    Embedded: the gateway's in-process bus and queue subscribe themselves at bootstrap and the
    embedded store posts trigger events itself, so only the Scheduler jobs are external.
    """
    done: list[str] = []
    if backend == "emulators":
        done += wire_pubsub(manifest, targets)
        done += wire_queues(manifest, targets)
        done += wire_firestore(manifest, targets)
    done += wire_scheduler(manifest, targets)
    return done
