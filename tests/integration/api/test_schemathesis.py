"""A bounded schemathesis run of the checked-in OpenAPI document against playbooks_api.

Every documented operation is called in process (WSGI, no network) through the deployed entry
point over an embedded store. Credentials are valid (a local token of the seeded org, or the
system secret for system routes) and most generated paths and enumerated query values are steered
to the seeded org, playbook and valid choices, so the deep code runs and not only the tenancy and
argument checks. Checks: never a 5xx, and status codes, content types and problem bodies as
documented. Derandomized and bounded (about 20 s): the same cases every run.
"""

import json
import os
import zlib
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import hypothesis
import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.core import media_types
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emulators.standins import HARNESS_TEST_TOKEN, start_agents
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.config import load_settings
from playbook_core.domain.collections import SETTINGS
from playbook_core.domain.loading import load_text
from playbook_core.runtime import bootstrap, openapi
from playbook_core.runtime.manifest import load_manifest
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.testing import FrozenClock

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
EXAMPLE = Path(__file__).parents[2] / "data" / "playbooks" / "post_purchase_example.yaml"
DOCUMENT = json.loads(Path(openapi.__file__).with_name("openapi.json").read_text())
ORG = "org_fuzz"
SEEDED = {
    "pb_fuzz_example": EXAMPLE.read_text(),
    "pb_fuzz_minimal": "name: Minimal\nagent: craig\n",
}
CRON_SECRET = "fuzz-cron-secret"
MAX_EXAMPLES = 25  # per operation, fuzzing phase; the examples and coverage phases add their own
SYSTEM_ROUTES = {
    "POST /v1/admin/seed-playbooks",
    "POST /v1/orgs/{orgId}:changeTier",
    "POST /v1/orgs/{orgId}/events",
}
# Path parameters and query values the deep code understands; generated values replace them in
# one case in ten (and always when the coverage phase built the case around that parameter).
KNOWN_PATH = {"orgId": [ORG], "playbookId": list(SEEDED), "version": ["1"]}
KNOWN_QUERY = {
    "view": ["auto", "brand", "dispensary", "all"],
    "status": ["draft", "active", "paused", "disabled", "archived"],
    "format": ["yaml", "json"],
    "confirm": ["true"],
    "pageSize": ["1", "2", "50"],
    "agent": ["craig", "smokey"],
}
KNOWN_BODY = {"templateId": ["daily_intel", "lead_followup", "weekly_kpi", "low_stock_alert"]}
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261124,
        "base-url": "http://localhost",  # the document's server names the gateway prefix
        "generation": {
            "mode": "all",  # valid and invalid inputs; invalid ones must be 4xx, never 5xx
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "with-security-parameters": False,  # credentials come from the test, not generated
        },
        "phases": {"stateful": {"enabled": False}},
        # Create and replace parse bodies with the same validator as :validate, whose coverage
        # phase already sends ~1,300 schema-violating definitions; theirs stays positive only.
        "operations": [
            {
                "include-operation-id": ["create_playbook", "update_playbook"],
                "phases": {"coverage": {"generation": {"mode": "positive"}}},
            }
        ],
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = functions_framework.create_app("playbooks_api", MAIN, "http")


def _steer(value: object, choices: list[str]) -> object:
    """A known choice nine times in ten, picked by a checksum so every run sends the same."""
    digest = zlib.crc32(str(value).encode())
    return choices[digest // 10 % len(choices)] if digest % 10 else value


def _covered_parameter(case) -> str | None:
    data = case.meta.phase.data if case.meta is not None else None
    return getattr(data, "parameter", None)


@schema.hook
def map_case(_context, case):
    covered = _covered_parameter(case)
    body = case.body if isinstance(case.body, dict) else None
    for container, known in (
        (case.path_parameters, KNOWN_PATH), (case.query, KNOWN_QUERY), (body, KNOWN_BODY),
    ):  # fmt: skip
        for name, choices in known.items():
            if container and name in container and name != covered:
                container[name] = _steer(container[name], choices)
    return case


@schemathesis.deserializer(*media_types.YAML_MEDIA_TYPES)  # replaces the single-document one
def _yaml_documents(_context, response):
    """An export of every playbook is a YAML stream (one document per playbook)."""
    documents = list(yaml.safe_load_all(response.content))
    return documents[0] if len(documents) == 1 else documents


@pytest.fixture(scope="module")
def harness():
    """:generate reaches the agent harness stand-in, so drafts are generated, not refused."""
    with start_agents() as server:
        yield server


@pytest.fixture
def fuzzed_app(harness, monkeypatch):
    monkeypatch.setenv("AGENT_HARNESS_URL", harness.url)
    monkeypatch.setenv("AGENT_HARNESS_TOKEN", HARNESS_TEST_TOKEN)
    os.environ.update(
        {
            "PLAYBOOKS_BACKEND": "embedded",
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "CRON_SECRET": CRON_SECRET,
            "GOOGLE_CLOUD_PROJECT": "demo-playbooks",
            "PLAYBOOKS_FUNCTIONS_BASE_URL": "http://127.0.0.1:9",  # the tasks it starts go nowhere
        }
    )
    store = EmbeddedStore(":memory:")
    bus, queue = InProcessBus(), InProcessTaskQueue()
    manifest = load_manifest()
    for config in manifest.queue_configs():  # as bootstrap wires them, shards included
        queue.create_queue(config)
    clock = FrozenClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    app = bootstrap.App(load_settings(), store, bus, queue, clock)
    store.set(SETTINGS, ORG, {"orgId": ORG, "tier": "growth"})
    for playbook_id, text in SEEDED.items():
        playbooks.create_playbook(
            org_id=ORG, validated=load_text(text.encode()), actor="uid_seed",
            source={"kind": "user"}, reason="create", authoring=Authoring(store=store, clock=clock, ids=app.ids),
            playbook_id=playbook_id,
        )  # fmt: skip
    bootstrap.use(app)
    yield app
    bootstrap.use(None)
    bus.close()
    queue.close()
    store.close()


def _credentials(operation: str) -> dict[str, str]:
    if operation in SYSTEM_ROUTES:
        return {"X-Cron-Secret": CRON_SECRET}
    claims = local_claims("demo-playbooks", "uid_fuzz", "brand_admin", [ORG])
    return {"Authorization": f"Bearer {unsigned_token(claims)}"}


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_and_never_fails_with_5xx(case, fuzzed_app):
    assert bootstrap.app() is fuzzed_app
    case.call_and_validate(
        headers=_credentials(case.operation.label),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
