"""The generated TypeScript client, for real: types match the document, `tsc --strict` compiles,
and a dashboard's day runs through it against a local stack (clients/typescript/README.md).

Node comes with these machines; the packages come from clients/typescript/package-lock.json
(`npm ci`, run here when node_modules is missing or older than the lock).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from tests.e2e.test_demo import runner, stack_env

pytestmark = pytest.mark.stack

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "clients" / "typescript"
NODE, NPM = shutil.which("node"), shutil.which("npm")
if NODE is None or NPM is None:
    pytest.skip(
        "Node.js and npm are not installed: the TypeScript tier needs them", allow_module_level=True
    )


def run(*command, env=None, timeout=180):
    return subprocess.run(  # noqa: S603 - fixed tools from the package's own node_modules
        command, cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def installed():
    stamp = PACKAGE / "node_modules" / ".package-lock.json"
    lock = PACKAGE / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        done = run(NPM, "ci", "--no-audit", "--no-fund", timeout=600)
        assert done.returncode == 0, done.stderr
    return PACKAGE / "node_modules" / ".bin"


def test_the_committed_types_are_what_the_openapi_document_generates(installed, tmp_path):
    script = json.loads((PACKAGE / "package.json").read_text())["scripts"]["generate"]
    tool, *arguments = script.replace("src/schema.d.ts", str(tmp_path / "schema.d.ts")).split()
    done = run(str(installed / tool), *arguments)
    assert done.returncode == 0, done.stderr
    generated = (tmp_path / "schema.d.ts").read_text()
    assert generated == (PACKAGE / "src" / "schema.d.ts").read_text(), (
        "the OpenAPI document changed: run `npm run generate` in clients/typescript"
    )


@pytest.fixture(scope="module")
def compiled(installed):
    out = PACKAGE / "dist"  # beside node_modules, where its imports resolve
    shutil.rmtree(out, ignore_errors=True)
    done = run(str(installed / "tsc"), "-p", "tsconfig.json", "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_client_compiles_under_strict(compiled):
    assert (compiled / "index.js").exists()
    assert (compiled / "index.d.ts").read_text().count("createPlaybooksClient") >= 1


def test_a_dashboards_day_through_the_generated_client(compiled, tmp_path):
    env = stack_env("embedded")
    up = runner("up", tmp_path, env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tmp_path / "stack.json").read_text())
        org = state["demoOrgId"]
        token = unsigned_token(
            local_claims(state["project"], "ts-client", "dispensary_admin", [org])
        )
        done = subprocess.run(  # noqa: S603 - node running the compiled smoke script
            [NODE, str(compiled / "smoke.js")], capture_output=True, text=True, timeout=120,
            check=False, env={
                **os.environ, "PLAYBOOKS_API_URL": f"{state['gateway']}/playbooks_api",
                "PLAYBOOKS_ID_TOKEN": token, "PLAYBOOKS_ORG_ID": org,
            },
        )  # fmt: skip
    finally:
        runner("down", tmp_path, env)
    assert done.returncode == 0, done.stderr
    day = json.loads(done.stdout)
    assert day["listed"] == 5  # pageSize=5 of the demo org's 22 playbooks
    assert day["created"]["status"] == "draft"
    assert day["created"]["version"] == 1
    assert day["saved"] == {"version": 2, "description": "Saved back whole by the client"}
    assert day["staleSave"] == {
        "status": 412, "type": "https://bakedbot.ai/problems/precondition-failed",
    }  # fmt: skip
    assert day["toggled"] == "active"
    assert day["execution"]["status"] == "completed"
    assert day["execution"]["steps"] == ["tell:completed"]
    assert day["source"]["hasSecret"] is True
    assert day["source"]["keys"] == [  # never the secret nor a reference to it
        "catchUpCursor", "hasApiAccess", "hasSecret", "id", "lastCatchUpAt", "lastWebhookAt",
        "lowStockThreshold", "missedEvents24h", "platform", "previousSecretExpiresAt",
        "shopDomain", "sourceUrl", "status", "webhookHealth",
    ]  # fmt: skip
    assert day["analytics"]["executions"] >= 1
