"""A rig that runs executions step by step through the real engine, against the stand-ins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from emulators.standins import (
    HARNESS_TEST_TOKEN,
    MAILJET_TEST_KEY,
    MAILJET_TEST_SECRET,
    start_agents,
    start_mailjet,
    start_slack,
)
from playbook_core.adapters.agent_http import HttpAgentHarness
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.mailjet import MailjetMailer
from playbook_core.adapters.memory import MemoryBus, MemoryTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.adapters.slack import SlackWebhook
from playbook_core.domain.collections import EXECUTIONS, SETTINGS
from playbook_core.domain.executions import event_execution_id
from playbook_core.domain.loading import load_text
from playbook_core.ports import QueueConfig
from playbook_core.service.authoring.playbooks import Authoring, change_status, create_playbook
from playbook_core.service.compliance.unsubscribe import UnsubscribeLinks
from playbook_core.service.execution.provider_alerts import Alerter
from playbook_core.service.execution.run_start import Runs, StepTarget, start_run
from playbook_core.service.execution.send_step import Senders
from playbook_core.service.execution.step_handler import Engine, run_step
from playbook_core.service.execution.step_task import StepTask
from playbook_core.testing import FrozenClock

ORG = "org_a"
# A complete profile, so the compliance guard's footer satisfies what the rules require.
COMPLIANCE = {
    "states": ["CO"], "licenses": {"CO": "402-00001"}, "legalName": "Store Example LLC",
    "postalAddress": "1 Main St, Denver, CO 80202", "smsBrandName": "StoreExample",
}  # fmt: skip
UNSUBSCRIBE = UnsubscribeLinks(base_url="http://127.0.0.1:9/", keys=("rig-unsubscribe-key",))
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Ids:
    """Unique across tests: the Firestore emulator is shared by the whole session."""

    def random(self, prefix):
        return f"{prefix}{uuid.uuid4().hex[:16]}"


class Rig:
    """Creates playbooks and runs, then drives queued step tasks through `run_step`."""

    def __init__(self, store, queue, clock, standins, org=ORG):
        self.store, self.queue, self.clock, self.standins = store, queue, clock, standins
        self.org = org
        self.target = StepTarget(queue="playbook-steps", url="http://127.0.0.1:9/execute_step/")
        self.bus = MemoryBus()
        self.harness = HttpAgentHarness(standins["agents"].url, HARNESS_TEST_TOKEN)
        self.mailer = MailjetMailer(
            standins["mailjet"].url,
            MAILJET_TEST_KEY,
            MAILJET_TEST_SECRET,
            "playbooks@bakedbot.ai",
            "BakedBot AI",
        )
        self.last = None
        self.sms = None  # a test that sends texts sets a BlackleafSms here
        self.ids = Ids()
        self.alerts = Alerter(
            store, SlackWebhook(), StoreSecrets(store), f"{standins['slack'].url}/alerts"
        )

    @property
    def engine(self):
        return Engine(
            store=self.store,
            queue=self.queue,
            target=self.target,
            clock=self.clock,
            bus=self.bus,
            topic="playbook-events",
            secrets=StoreSecrets(self.store),
            slack=SlackWebhook(),
            senders=Senders(
                mailer=self.mailer, sms=self.sms, alerts=self.alerts, unsubscribe=UNSUBSCRIBE
            ),
            harness=self.harness,
            jitter=1.0,
        )

    def playbook(self, text, *, activate=True):
        document = create_playbook(
            org_id=self.org,
            validated=load_text(text),
            actor="u1",
            reason="create",
            source={"kind": "user"},
            authoring=Authoring(store=self.store, clock=self.clock, ids=self.ids),
        )
        if activate:
            document = change_status(
                org_id=self.org,
                playbook_id=document["id"],
                operation="toggle_on",
                actor="u1",
                store=self.store,
                clock=self.clock,
            )
        return document

    def start(self, playbook, *, event_id=None, customer=None, dry_run=False, mock_agents=False):
        # Unique per test: the module-wide Mailjet stand-in remembers CustomIDs across tests.
        event_id = event_id or f"e_{uuid.uuid4().hex[:10]}"
        execution, _ = start_run(
            execution_id=event_execution_id(event_id, playbook["id"])
            if not dry_run
            else f"dry_{event_id}",
            playbook=playbook,
            trigger={"type": "event", "triggerId": "t", "eventId": event_id},
            customer=customer,
            event={"data": {"orderNumber": "#1001"}},
            causation=None,
            user_id="system",
            dry_run=dry_run,
            runs=Runs(store=self.store, queue=self.queue, target=self.target, clock=self.clock),
        )
        if mock_agents:
            self.store.update(EXECUTIONS, execution["id"], {"mockAgents": True})
        return execution["id"]

    def step(self):
        """Run the next due task (advancing the clock to it); False when nothing is left."""
        task = self.queue.take()
        if task is None:
            return False
        if task.schedule_time and task.schedule_time > self.clock.now():
            self.clock.current = task.schedule_time
        self.last = run_step(StepTask.model_validate(task.body), self.engine)
        return True

    def run_all(self, limit=50):
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("the run did not settle")

    def execution(self, execution_id):
        return self.store.get(EXECUTIONS, execution_id)

    def sent_emails(self):
        requests = httpx.get(f"{self.standins['mailjet'].url}/__requests", timeout=5).json()
        return [r for r in requests if r["path"] == "/v3.1/send" and r.get("responseStatus") == 200]

    def harness_calls(self):
        return [
            r
            for r in httpx.get(f"{self.standins['agents'].url}/__requests", timeout=5).json()
            if r["path"] == "/v1/run"
        ]

    def requests(self, name):
        return httpx.get(f"{self.standins[name].url}/__requests", timeout=5).json()

    def behave(self, name, **mode):
        httpx.post(
            f"{self.standins[name].url}/__behaviour", json=mode, timeout=5
        ).raise_for_status()

    def script_agent(self, *replies):
        for reply in replies:
            httpx.post(
                f"{self.standins['agents'].url}/__responses", json=reply, timeout=5
            ).raise_for_status()


@pytest.fixture(scope="module")
def standins():
    servers = {
        "mailjet": start_mailjet(),
        "agents": start_agents(timeout_sleep_s=2.0),
        "slack": start_slack(),
    }
    yield servers
    for server in servers.values():
        server.stop()


def _reset(standins):
    for server in standins.values():
        httpx.delete(f"{server.url}/__requests", timeout=5)
        httpx.delete(f"{server.url}/__behaviour", timeout=5)
        httpx.delete(f"{server.url}/__responses", timeout=5)


def _rig(store, standins, org=ORG):
    queue = MemoryTaskQueue()
    queue.create_queue(QueueConfig("playbook-steps"))
    store.set(SETTINGS, org, {
        "orgId": org, "adminEmail": "admin@store.example", "compliance": COMPLIANCE,
    })  # fmt: skip
    return Rig(store, queue, FrozenClock(NOW), standins, org)


@pytest.fixture
def rig(standins):
    _reset(standins)
    store = EmbeddedStore(":memory:")
    yield _rig(store, standins)
    store.close()


@pytest.fixture
def firestore_rig(standins, emulator_env):
    """The same rig on the official Firestore emulator (its own org id per test)."""
    from playbook_core.adapters.firestore import FirestoreStore

    _reset(standins)
    return _rig(FirestoreStore("demo-playbooks"), standins, org=f"org_{uuid.uuid4().hex[:10]}")
