"""No credential in logs: one full run on the real local stack, then every log line is scanned.

The run covers each path that talks to a credentialed party: a signed Shopify webhook, the agent
harness (bearer token), an approval, a Mailjet send (basic auth), a `notify slack` step (the org's
incoming-webhook URL, whose path is the credential) and a Mailjet outage whose alert goes to the
ops webhook (SLACK_ALERT_WEBHOOK_URL). Then every line of every stack process's log is searched
for every configured secret, webhook URL and token used in the run.
"""

import base64
import os
import re
import secrets
from urllib.parse import urlsplit

import pytest

from emulators.stack import ALERT_WEBHOOK_PATH
from emulators.standins import (
    BLACKLEAF_TEST_KEY,
    HARNESS_TEST_TOKEN,
    MAILJET_TEST_KEY,
    MAILJET_TEST_SECRET,
    SHOPIFY_ADMIN_TEST_TOKEN,
    WOOCOMMERCE_TEST_CONSUMER_KEY,
    WOOCOMMERCE_TEST_CONSUMER_SECRET,
)
from playbook_core.domain.executions import TERMINAL
from playbook_core.testing import eventually
from tests.conftest import STACK_BACKENDS, stack_backend
from tests.e2e.test_pipeline import PIPELINE_S, SPEC, Pipeline, fresh_email, runner

pytestmark = pytest.mark.stack

TOKEN_SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),  # a JWT, signed or not
    re.compile(r"(?i)\b(?:bearer|basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/-]{12,}"),
)
PLAYBOOK = """\
name: Log hygiene e2e
description: Thanks each new order by email, then tells the team on Slack.
agent: craig
triggers:
  - id: on_order
    type: event
    eventName: order.created
steps:
  - id: work
    action: delegate
    params:
      agent: craig
      task: Write a one-line thank-you for this order.
      input: {event: "{{ event }}"}
  - id: email
    action: send_email
    params:
      to: "{{ customer.email }}"
      subject: Thank you
      body: "Thanks for order {{ event.data.orderNumber }}."
  - id: tell_slack
    action: notify
    params:
      channel: slack
      message: "Order {{ event.data.orderNumber }} was thanked."
"""


class Run(Pipeline):
    """The stack as test_pipeline drives it, plus what this run configured."""

    up_output = ""
    cron_secret = ""
    org_slack_url = ""
    playbook_id = ""

    def standin(self, name, method, path, **options):
        response = self.http.request(method, f"{self.state[name]}{path}", **options)
        assert response.status_code == 200, response.text
        return response.json()

    def slack_posts(self, path):
        return [
            r for r in self.standin("slack", "GET", "/__requests")
            if r["method"] == "POST" and r["path"] == path
        ]  # fmt: skip

    def log_lines(self):
        """(file, line) for every line every stack process wrote, and the runner's own output."""
        found = [("up", line) for line in self.up_output.splitlines()]
        for path in sorted((self.state_dir / "logs").iterdir()):
            text = path.read_text(errors="replace")
            found += [(path.name, line) for line in text.splitlines()]
        return found


@pytest.fixture(scope="module", params=STACK_BACKENDS)
def run(request, tmp_path_factory):
    backend = stack_backend(request)
    state_dir = tmp_path_factory.mktemp(f"log-hygiene-{backend}")
    cron = f"cron-{secrets.token_hex(16)}"
    env = {
        **os.environ, "PLAYBOOKS_GATEWAY_PORT": "0", "PLAYBOOKS_BACKEND": backend,
        "CRON_SECRET": cron,
        "PLAYBOOKS_AUTH_EMULATOR": "off",  # test_auth_emulator.py scans the emulator's files
    }  # fmt: skip
    up = runner("up", state_dir, env)  # seeding calls the system API with X-Cron-Secret
    if up.returncode != 0:
        runner("down", state_dir, env)
        pytest.fail(f"up failed:\n{up.stdout}\n{up.stderr}")
    running = Run(state_dir, env)
    running.up_output, running.cron_secret = up.stdout + up.stderr, cron
    try:
        yield running
    finally:
        running.close()
        stopped = runner("down", state_dir, env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def configure_org_slack(run, url):
    """The org's Slack webhook, set as an editor does: the API keeps it as the org's secret."""
    answer = run.api.patch("/settings", json={"slackWebhookUrl": url})
    assert answer.status_code == 200, answer.text
    assert answer.json()["slackWebhookSecretRef"]
    assert url not in answer.text


def create_playbook(run):
    created = run.api.post(
        "/playbooks", content=PLAYBOOK, headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    playbook_id = created.json()["id"]
    toggled = run.api.post(f"/playbooks/{playbook_id}:toggle", json={"enabled": True})
    assert toggled.status_code == 200, toggled.text
    return playbook_id


def approved_run(run, email):
    """A new order → its run paused for approval → approved; returns the execution id."""
    answer = run.order("orders/create", email)
    assert answer.status_code == 200, answer.text
    event_id = answer.json()["eventId"]
    [execution] = eventually(
        lambda: run.runs(run.playbook_id, event_id=event_id), timeout=PIPELINE_S
    )
    paused = run.settled(execution["id"], "pending_approval", *TERMINAL)
    assert paused["status"] == "pending_approval", paused
    approved = run.api.post(f"/approvals/{execution['id']}:approve", json={"notes": "e2e"})
    assert approved.status_code == 200, approved.text
    return execution["id"]


def credentials(run):
    """name → value of everything secret that the stack was configured with or the run used."""
    org_slack, ops_slack = run.org_slack_url, f"{run.state['slack']}{ALERT_WEBHOOK_PATH}"
    basic = base64.b64encode(f"{MAILJET_TEST_KEY}:{MAILJET_TEST_SECRET}".encode()).decode()
    found = {
        **{f"{s.platform} webhook secret": s.secret for s in SPEC.webhook_sources},
        "CRON_SECRET": run.cron_secret,
        "MAILJET_API_KEY": MAILJET_TEST_KEY,
        "MAILJET_SECRET_KEY": MAILJET_TEST_SECRET,
        "Mailjet basic auth": basic,
        "BLACKLEAF_API_KEY": BLACKLEAF_TEST_KEY,
        "AGENT_HARNESS_TOKEN": HARNESS_TEST_TOKEN,
        "Shopify Admin API token": SHOPIFY_ADMIN_TEST_TOKEN,
        "WooCommerce consumer key": WOOCOMMERCE_TEST_CONSUMER_KEY,
        "WooCommerce consumer secret": WOOCOMMERCE_TEST_CONSUMER_SECRET,
        "editor bearer token": run.api.headers["Authorization"].removeprefix("Bearer "),
    }
    for name, url in (("org Slack webhook", org_slack), ("ops alert webhook", ops_slack)):
        path = urlsplit(url).path
        found |= {name: url, f"{name} path": path, f"{name} token": path.rsplit("/", 1)[1]}
    return found


def test_a_full_run_writes_no_credential_to_any_log_line(run):
    token = f"XXXX{secrets.token_hex(12)}"
    run.org_slack_url = f"{run.state['slack']}/services/T000E2E/B000E2E/{token}"
    configure_org_slack(run, run.org_slack_url)
    run.playbook_id = create_playbook(run)

    # webhook → harness → approval → Mailjet send → notify slack (the org's webhook).
    email = fresh_email()
    first = approved_run(run, email)
    finished = run.settled(first)
    assert finished["status"] == "completed", finished
    assert finished["stepStatuses"] == {
        "work": "completed", "email": "completed", "tell_slack": "completed",
    }  # fmt: skip
    assert len(run.mails_to(email)) == 1
    assert len(run.slack_posts(urlsplit(run.org_slack_url).path)) == 1

    # Mailjet down: the alert falls back to the ops webhook once the org has none of its own.
    cleared = run.api.patch("/settings", json={"slackWebhookSecretRef": None})
    assert cleared.status_code == 200, cleared.text
    run.standin("mailjet", "POST", "/__behaviour", json={"mode": "error_5xx", "status": 500})
    try:
        second = approved_run(run, fresh_email())
        [alert] = eventually(lambda: run.slack_posts(ALERT_WEBHOOK_PATH), timeout=PIPELINE_S)
    finally:
        run.standin("mailjet", "DELETE", "/__behaviour")
    assert "mailjet" in alert["body"]["text"]
    [delivery] = eventually(
        lambda: [d for d in run.deliveries(second) if d.get("lastError")], timeout=PIPELINE_S
    )
    assert delivery["lastError"]["code"] == "mailjet_outage"

    lines = run.log_lines()
    assert {f"{name}.log" for name in run.state["pids"]} <= {where for where, _ in lines}
    # The scan covers the run: each hop left its line, with the ids operators search by.
    assert run.gateway_log("gateway request", function="webhook_shopify", status=200)
    assert run.gateway_log("step finished", executionId=first, status="completed")
    assert run.gateway_log("gateway request", function="execute_step")
    leaks = [
        f"{name} in {where}: {line[:300]}"
        for name, value in credentials(run).items()
        for where, line in lines
        if value in line
    ]
    # Tokens minted during the run (service OIDC tokens, say) are unknown here: none by shape.
    leaks += [
        f"a token shaped like {shape.pattern!r} in {where}: {line[:300]}"
        for shape in TOKEN_SHAPES
        for where, line in lines
        if shape.search(line)
    ]
    assert not leaks, "\n".join(leaks)
