"""The demo org `make up`/`make dev` seed and the demo `make dev` plays (api.md §2), for real.

The real runner in a private state dir (gateway port 0), once on the official emulators and once
on the embedded backend; every check goes through the gateway's API or the stack's own store.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emulators import demo, processes
from playbook_core import catalog
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.domain.collections import (
    ASSIGNMENTS,
    CUSTOMERS,
    LISTENERS,
    ORGANIZATIONS,
    PLAYBOOKS,
    SECRETS,
    SETTINGS,
    TEMPLATES,
    WEBHOOK_SOURCES,
    versions_path,
)
from playbook_core.domain.tiers import ids_for_tier
from playbook_core.domain.webhooks import shopify_source_id, woocommerce_source_id
from playbook_core.service.paging import iterate
from playbook_core.testing import eventually
from tests.conftest import STACK_BACKENDS, stack_backend
from tests.openapi_conformance import CONFORMING

pytestmark = pytest.mark.stack

ROOT = Path(__file__).parents[2]
SPEC = demo.load_spec()
ORG = SPEC.org.id
POST_PURCHASE = f"{ORG}_{demo.POST_PURCHASE}"
# Every collection the seed writes (schedules left out: the minute tick may move them meanwhile).
SEEDED = (
    TEMPLATES, SETTINGS, WEBHOOK_SOURCES, SECRETS, PLAYBOOKS, ASSIGNMENTS, LISTENERS,
    ORGANIZATIONS, CUSTOMERS,
)  # fmt: skip


def runner(command, state_dir, env, *extra, timeout=120):
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "emulators", command, "--state-dir", str(state_dir), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def stack_env(backend):
    # The Auth emulator (~15 s of CPU to start) has its own e2e test: test_auth_emulator.py.
    return {
        **os.environ, "PLAYBOOKS_GATEWAY_PORT": "0", "PLAYBOOKS_BACKEND": backend,
        "PLAYBOOKS_AUTH_EMULATOR": "off",
    }  # fmt: skip


class Seeded:
    def __init__(self, state_dir, env, up):
        self.state_dir, self.env, self.up = state_dir, env, up
        self.state = json.loads((state_dir / "stack.json").read_text())
        claims = local_claims(self.state["project"], "e2e-editor", "dispensary_admin", [ORG])
        self.api = httpx.Client(
            base_url=f"{self.state['gateway']}/playbooks_api/v1", timeout=30, trust_env=False,
            headers={"Authorization": f"Bearer {unsigned_token(claims)}"},
            event_hooks=CONFORMING,  # every answer is held to the OpenAPI document
        )  # fmt: skip

    def store(self):
        return demo.open_store(self.state, self.state_dir)

    def gateway_requests(self, function):
        lines = (self.state_dir / "logs" / "gateway.log").read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [
            e for e in entries if e.get("message") == "gateway request" and e.get("function") == function
        ]  # fmt: skip


@pytest.fixture(scope="module", params=STACK_BACKENDS)
def seeded(request, tmp_path_factory):
    backend = stack_backend(request)
    state_dir = tmp_path_factory.mktemp(f"demo-{backend}")
    env = stack_env(backend)
    up = runner("up", state_dir, env)  # no --seed: `make up` seeds by default
    if up.returncode != 0:
        runner("down", state_dir, env)
        pytest.fail(f"up failed:\n{up.stdout}\n{up.stderr}")
    running = Seeded(state_dir, env, up)
    yield running
    running.api.close()
    stopped = runner("down", state_dir, env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def snapshot(seeded):
    """Every document the seed writes, by path, read through the stack's own store."""
    found = {}
    with seeded.store() as store:

        def read(collection):
            docs = iterate(store, collection, page_size=100)
            found.update({f"{collection}/{doc.id}": doc.data for doc in docs})

        for collection in SEEDED:
            read(collection)
        for path in [p for p in found if p.startswith(f"{PLAYBOOKS}/")]:
            read(versions_path(path.split("/")[1]))
    return found


def test_up_seeds_the_demo_org_by_default_and_records_it(seeded):
    assert seeded.state["demoOrgId"] == ORG
    assert f"demo org {ORG} seeded" in seeded.up.stdout
    assert "tier empire: 22 playbooks activated, 0 already active" in seeded.up.stdout
    assert "customers: 3 written, 0 unchanged" in seeded.up.stdout


def test_the_org_has_the_22_active_registry_playbooks_of_empire(seeded):
    listed = seeded.api.get(
        f"/orgs/{ORG}/playbooks", params={"view": "dispensary", "pageSize": 100}
    )
    assert listed.status_code == 200
    playbooks = listed.json()["playbooks"]
    assert len(playbooks) == 22
    assert {p["id"] for p in playbooks} == {
        f"{ORG}_{registry_id}" for registry_id in ids_for_tier(list(catalog.registry()), "empire")
    }
    assert {(p["status"], p["source"]["kind"]) for p in playbooks} == {("active", "registry")}
    settings = seeded.api.get(f"/orgs/{ORG}/settings").json()
    assert (settings["tier"], settings["timezone"], settings["adminEmail"]) == (
        "empire", SPEC.org.timezone, SPEC.org.admin_email,
    )  # fmt: skip


def test_both_webhook_sources_are_bound_to_the_org_and_no_answer_carries_a_secret(seeded):
    shopify, woo = SPEC.webhook_sources
    ids = [shopify_source_id(shopify.shop_domain), woocommerce_source_id(woo.source_url)]
    with seeded.store() as store:
        stored = {source_id: store.get(WEBHOOK_SOURCES, source_id) for source_id in ids}
    for source_id, document in stored.items():
        assert document is not None, source_id
        assert document["orgId"] == ORG
        assert document["status"] == "active"
        assert document["secretRefs"]  # a reference, never the value
        assert not [s for s in SPEC.secrets if s in json.dumps(document, default=str)]
    answers = [
        seeded.api.get(f"/orgs/{ORG}/settings"),
        seeded.api.get(f"/orgs/{ORG}/playbooks", params={"view": "all", "pageSize": 100}),
        seeded.api.get(f"/orgs/{ORG}/playbooks:export", params={"format": "json"}),
    ]
    for source in SPEC.webhook_sources:  # registering again is how the API shows a source
        again = seeded.api.post(f"/orgs/{ORG}/webhook-sources", json=source.body())
        assert again.status_code == 201
        assert again.json()["hasSecret"] is True
        assert again.json()["id"] in ids
        answers.append(again)
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert not [a.text for a in answers for secret in SPEC.secrets if secret in a.text]


def test_the_customers_are_written_and_reach_on_customer_written(seeded):
    expected = demo.customer_documents(SPEC)
    with seeded.store() as store:
        for customer_id, data in expected.items():
            stored = store.get(CUSTOMERS, customer_id)
            assert stored is not None
            assert {key: stored[key] for key in data} == data
    # Whatever the handler makes of them, each write reached the trigger route through the gateway.
    eventually(lambda: len(seeded.gateway_requests("on_customer_written")) >= len(expected))


def test_a_second_seed_is_a_no_op(seeded, capsys):
    before = snapshot(seeded)
    assert demo.seed(seeded.state, seeded.state_dir) == ORG
    after = snapshot(seeded)
    out = capsys.readouterr().out
    assert "templates: 0 seeded, 11 already there" in out
    assert "(unchanged)" in out  # settings
    assert "tier empire: 0 playbooks activated, 22 already active" in out
    assert "customers: 0 written, 3 unchanged" in out
    assert after.keys() == before.keys()

    def comparable(path, data):
        # Restamped on a repeat: registering a store (create-or-update), and the tier stored by
        # :activateTier even when it skips all 22 (domain.md §4.2 says a repeat changes nothing).
        restamped = path.startswith(("webhook_sources/", "playbook_settings/"))
        return {k: v for k, v in data.items() if not (restamped and k == "updatedAt")}

    changed = [p for p in before if comparable(p, before[p]) != comparable(p, after[p])]
    assert changed == []


def test_play_completes_and_a_replay_reuses_its_work(seeded, capsys):
    first = demo.play(seeded.state, ORG, seeded.state_dir)
    second = demo.play(seeded.state, ORG, seeded.state_dir)
    capsys.readouterr()
    text = "\n".join(first)
    assert "22 active registry playbooks for empire" in text
    assert "POST …/playbooks (application/yaml) → 201 pb_" in text
    assert "invalid_template at steps[0].params.to (line 8, column 11)" in text
    assert ":toggle {enabled: true} → 200, active" in text
    assert "__order.completed → order.completed, active, triggers big_order" in text
    assert ":duplicate → 201 pb_" in text
    assert "       | name: Big-order VIP thank-you" in text
    # api.md §2's story, through the stack's real pipeline.
    assert "8. a signed Shopify orders/fulfilled for Avery Johnson" in text
    assert '"event": "order.completed"}' in text
    assert "  pending_approval" in text
    assert f"event log: {POST_PURCHASE} → execution_created ev_" in text
    assert ":approve (as demo-admin) → 200 approved" in text
    assert "  completed" in text
    assert "To avery.johnson@example.com, Subject 'Test title'" in text
    assert "GET …/deliveries: sent)" in text
    assert "12. a second signed Shopify orders/create, same customer" in text
    assert "order.created, outcome no_listeners, customer cus_" in text
    assert "13. attribution: GET …/analytics/playbooks → " in text
    # The compliance guard: one message blocked and one deferred, each with its rule and reason.
    assert "14. the compliance guard on a giveaway email to a Californian" in text
    assert "→ block: ca.no-free-goods (Cal. Bus. & Prof. Code 26153" in text
    assert "'giveaway' at 8" in text
    assert "15. a text to Avery Johnson at 23:00 America/New_York: " in text
    assert "→ defer until " in text
    assert "08:00 local; us.tcpa-quiet-hours (47 CFR 64.1200(c)(1)" in text
    # An order only the Shopify Admin API knows of: the catch-up pass recovers it (issue #16).
    assert "16. an order whose webhook never came" in text
    assert "(OIDC, as Cloud Scheduler) → 200 done: 1 order(s) read, 1 event(s) published" in text
    recovered = re.search(r"events\?name=order\.created → (ord_[0-9a-f]{32}), outcome", text)
    assert recovered is not None, text
    assert f'"duplicate": true, "eventId": "{recovered[1]}"' in text  # the late webhook
    assert "webhookHealth ok, missedEvents24h 1, lastCatchUpAt 20" in text
    replay = "\n".join(second)
    assert "created by an earlier run" in replay
    assert "already active since an earlier run" in replay
    assert "6. duplicate it: made by an earlier run" in replay
    # Fresh orders, the same customer within 24 h: the thank-you is deduped, not re-sent.
    assert "10. no approval this time, as expected on a replay" in replay
    assert "(skipReason deduped)" in replay
    assert "pending_approval" not in replay
    assert "12. a second signed Shopify orders/create" in replay
    # The replay's pass re-reads the first order (the overlap) and publishes only the new one.
    assert "→ 200 done: 2 order(s) read, 1 event(s) published" in replay
    assert "missedEvents24h 2" in replay
    mails = httpx.get(f"{seeded.state['mailjet']}/__requests", timeout=10).json()
    to = [m["To"] for r in mails if r["path"] == "/v3.1/send" for m in r["body"]["Messages"]]
    assert to.count([{"Email": "avery.johnson@example.com"}]) == 1
    brand = seeded.api.get(f"/orgs/{ORG}/playbooks", params={"view": "brand", "pageSize": 100})
    names = sorted(p["name"] for p in brand.json()["playbooks"])
    assert names == [demo.CUSTOM_NAME, f"{demo.CUSTOM_NAME} (copy)"]


def test_up_without_seeding_leaves_demo_org_unset(tmp_path):
    env = stack_env("embedded")
    up = runner("up", tmp_path, env, "--seed", "none")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert json.loads((tmp_path / "stack.json").read_text())["demoOrgId"] is None
        assert "seeding the demo org" not in up.stdout
    finally:
        runner("down", tmp_path, env)


BROKEN_SEED = """
import json, sys
from pathlib import Path
from emulators import stack
def broken(state, state_dir):
    print("pids " + json.dumps(state["pids"]), flush=True)
    raise RuntimeError("POST /admin/seed-playbooks answered 401")
try:
    stack.up(Path(sys.argv[1]), seed=broken)
except stack.StartError as exc:
    sys.exit(f"up failed: {exc}")
"""


def test_a_failed_seed_fails_up_and_leaves_nothing_running(tmp_path):
    failed = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", BROKEN_SEED, str(tmp_path)],
        cwd=ROOT, env=stack_env("embedded"), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "up failed: seeding the demo org failed: POST /admin/seed" in failed.stderr
    [line] = [line for line in failed.stdout.splitlines() if line.startswith("pids ")]
    pids = json.loads(line.removeprefix("pids ")).values()
    assert pids
    assert not [pid for pid in pids if processes.alive(pid)]
    assert not (tmp_path / "stack.json").exists()


def run_dev(state_dir, env):
    """`make dev` until it serves, then Ctrl-C; returns (exit code, output, pids it ran)."""
    log = state_dir / "dev.out"
    with log.open("w") as out:
        dev = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "emulators", "dev", "--state-dir", str(state_dir)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            eventually(lambda: "serving until Ctrl-C" in log.read_text(), timeout=90, interval=0.2)
            pids = json.loads((state_dir / "stack.json").read_text())["pids"].values()
            dev.send_signal(signal.SIGINT)
            code = dev.wait(timeout=60)
        finally:
            if dev.poll() is None:
                dev.kill()
                dev.wait()
    return code, log.read_text(), list(pids)


def test_make_dev_twice_on_the_same_state_dir_seeds_plays_and_stops_cleanly(tmp_path):
    # Embedded: its SQLite file outlives the stack, so the second run meets the first run's data.
    env = stack_env("embedded")
    started = time.monotonic()
    for run, reused in ((1, "0 already active"), (2, "22 already active")):
        code, output, pids = run_dev(tmp_path, env)
        assert code == 0, output
        assert reused in output, f"run {run}:\n{output}"
        assert "22 active registry playbooks for empire" in output
        assert "7. export it as YAML" in output
        # The second run meets the first run's send to the same customer: deduped (§7.8).
        story = ("To avery.johnson@example.com", "as expected on a replay")[run - 1]
        assert story in output, f"run {run}:\n{output}"
        assert "12. a second signed Shopify orders/create" in output
        assert "!!" not in output, output
        assert "stack stopped; nothing left running" in output
        assert not [pid for pid in pids if processes.alive(pid)]
        assert not (tmp_path / "stack.json").exists()
    sys.stderr.write(f"\n[two make dev runs in {time.monotonic() - started:.1f} s]\n")
