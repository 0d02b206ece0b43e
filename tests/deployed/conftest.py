"""The deployed shape: the deploy artifact, served as Cloud Functions serves it, in production mode.

`make package` builds the artifact (here into a temporary directory outside the repo, so nothing
can fall back on repo files). A fresh virtualenv gets `requirements.txt` from the artifact and
nothing else. Each manifest function runs from the artifact in its own `functions-framework`
process (gunicorn, as the buildpack starts it) with `K_SERVICE` set and production configuration:
no embedded backend, no Auth emulator, no unsigned tokens. Around them: the official Firestore
and Pub/Sub emulators, our Cloud Tasks, Cloud Scheduler and Secret Manager emulators, the push
relay, the provider stand-ins, and `emulators.google_keys` playing Google's token keys: the
emulators sign their OIDC tokens with its key and the tests sign Firebase ID tokens with it, so
the production verification code runs as it does in the cloud.

The virtualenv is kept in `.local/deployed-venv/<hash of requirements.txt and interpreter>`: a
fresh clone builds it once (about 20 s), later runs reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators import official, processes, stack, wiring
from emulators.cloud_scheduler import start_scheduler_emulator
from emulators.cloud_tasks import start_tasks_emulator
from emulators.function_router import RunningRouter
from emulators.google_keys import CertsServer, load_signer, write_key
from emulators.pubsub_push import PushRelay
from emulators.secret_manager import start_secret_manager_emulator
from emulators.standins import (
    BLACKLEAF_TEST_KEY,
    HARNESS_TEST_TOKEN,
    MAILJET_TEST_KEY,
    MAILJET_TEST_SECRET,
    start_standins,
)
from playbook_core.runtime.manifest import load_manifest
from tests.conftest import require_official_emulators
from tests.unit import test_infra_config as infra_reader  # the HCL reader of infra/

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "shared" / "tools"))
import package  # noqa: E402 - shared/tools is no package; the command Cloud Build runs

PROJECT = official.PROJECT
REGION = "us-central1"
READY_S = 120.0


def _venv(requirements: Path) -> Path:
    """A virtualenv with exactly the artifact's requirements, built once per requirements file.

    Built in place (a venv's scripts name their own path); `.complete` marks a finished one, so
    an interrupted build is started over.
    """
    interpreter = f"{sys.version}|{getattr(sys, '_base_executable', sys.executable)}"
    digest = hashlib.sha256(requirements.read_bytes() + interpreter.encode()).hexdigest()[:16]
    home = ROOT / ".local" / "deployed-venv"
    home.mkdir(parents=True, exist_ok=True)
    venv = home / digest
    with (home / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run waits for the first one's build
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--requirement", str(requirements)], check=True)  # noqa: S603
        (venv / ".complete").touch()
    return venv


@dataclass
class DeployedStack:
    router: str
    project: str
    firestore: str
    mailjet: str
    secret_manager: str
    signer: Any
    key_file: Path
    artifact: Path
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def as_stack(self) -> dict[str, Any]:
        """What emulators.demo expects of a stack (stack.json's shape)."""
        return {
            "gateway": self.router, "project": self.project, "backend": "emulators",
            "firestore": self.firestore, "mailjet": self.mailjet, "blackleaf": None,
        }  # fmt: skip

    def log(self, function: str) -> str:
        return (self.logs / f"{function}.log").read_text(errors="replace")


def terraform_environment(given: Any, apply_time: dict[str, str]) -> dict[str, str]:
    """Exactly the variables and secrets infra/ gives the function: its literal values as they
    are, its apply-time values (and every secret) from `apply_time`, which must know them all."""
    env = {
        name: apply_time[name] if value is infra_reader.UNKNOWN else str(value)
        for name, value in given.env.items()
    }
    env.update({name: apply_time[name] for name in given.secrets})
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the function's group (gunicorn and its worker), SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _serving(port: int) -> str | None:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
    except httpx.HTTPError:
        return None
    return str(port)


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source, _zip = package.build(tmp_path_factory.mktemp("package"))
    return source


@pytest.fixture(scope="session")
def runtime_venv(artifact: Path) -> Path:
    return _venv(artifact / "requirements.txt")


@pytest.fixture(scope="session")
def deployed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    artifact: Path,
    runtime_venv: Path,
) -> Iterator[DeployedStack]:
    found = require_official_emulators(request)
    logs = tmp_path_factory.mktemp("deployed-logs")
    key = write_key(tmp_path_factory.mktemp("keys") / "google.pem")
    signer = load_signer(key)
    manifest = load_manifest(artifact / "manifest.yaml")
    ports = {function.name: processes.free_port() for function in manifest.functions}
    router_port = processes.free_port()
    cleanup: list[Any] = []
    try:
        certs = CertsServer(key.read_bytes()).start()
        cleanup.append(certs.stop)
        router = RunningRouter(ports, manifest.document_triggered(), router_port)
        cleanup.append(router.stop)
        firestore = official.start_firestore(
            found, logs, functions_emulator=f"127.0.0.1:{router_port}"
        )
        cleanup.append(firestore.stop)
        pubsub = official.start_pubsub(found, logs)
        cleanup.append(pubsub.stop)
        tasks = start_tasks_emulator(signer=signer)
        cleanup.append(tasks.stop)
        secrets = start_secret_manager_emulator()
        cleanup.append(secrets.stop)
        firestore.wait_ready()
        pubsub.wait_ready()
        scheduler = start_scheduler_emulator(pubsub_host=pubsub.host, signer=signer)
        cleanup.append(scheduler.stop)
        relay = PushRelay(pubsub.host, signer=signer).start()
        cleanup.append(relay.stop)
        standins = start_standins()
        cleanup.extend(handle.stop for handle in standins.values())
        # What only the cloud knows at apply time (Terraform's unknowns), played locally.
        apply_time = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "PLAYBOOKS_FUNCTIONS_BASE_URL": router.url,
            "PLAYBOOKS_PUBLIC_BASE_URL": router.url,
            "PLAYBOOKS_REGION": REGION,
            "PLAYBOOKS_TASKS_INVOKER": wiring.invoker("cloud_tasks"),
            "PLAYBOOKS_SCHEDULER_INVOKER": wiring.invoker("cloud_scheduler"),
            "PLAYBOOKS_PUSH_INVOKER": wiring.invoker("pubsub_push"),
            "PLAYBOOKS_ORG_RUN_STARTS_PER_SECOND": "20",
            "MAILJET_API_BASE": standins["mailjet"].url,
            "MAILJET_FROM_EMAIL": "playbooks@bakedbot.ai",
            "MAILJET_FROM_NAME": "BakedBot AI",
            "BLACKLEAF_API_BASE": standins["blackleaf"].url,
            "AGENT_HARNESS_URL": standins["agents"].url,
            # Secret Manager mounts, as Cloud Functions sets them in the environment.
            "MAILJET_API_KEY": MAILJET_TEST_KEY,
            "MAILJET_SECRET_KEY": MAILJET_TEST_SECRET,
            "BLACKLEAF_API_KEY": BLACKLEAF_TEST_KEY,
            "AGENT_HARNESS_TOKEN": HARNESS_TEST_TOKEN,
            "SLACK_ALERT_WEBHOOK_URL": f"{standins['slack'].url}{stack.ALERT_WEBHOOK_PATH}",
            "CRON_SECRET": stack.cron_secret(),
            "UNSUBSCRIBE_KEY": stack.unsubscribe_key(),
            "SHOPIFY_WEBHOOK_SECRET": "deployed-shape-shopify-fallback",
            "WOOCOMMERCE_WEBHOOK_SECRET": "deployed-shape-woocommerce-fallback",
        }
        # Where this machine differs from the cloud: the emulators and the local keys.
        local_only = {
            "PATH": f"{runtime_venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(tmp_path_factory.mktemp("home")),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            # Stopped with the test run if it is killed, reaped by the next if left behind.
            processes.RUN_OWNER: os.environ.get(processes.RUN_OWNER, ""),
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "CLOUD_TASKS_EMULATOR_HOST": tasks.address,
            "CLOUD_SCHEDULER_EMULATOR_HOST": scheduler.address,
            "SECRET_MANAGER_EMULATOR_HOST": secrets.address,
            "SHOPIFY_ADMIN_API_BASE": standins["shopifyAdmin"].url,
            "WOOCOMMERCE_API_BASE": standins["woocommerceApi"].url,
            "PLAYBOOKS_GOOGLE_OIDC_CERTS_URL": certs.oidc_certs_url,
            "PLAYBOOKS_FIREBASE_CERTS_URL": certs.firebase_certs_url,
        }
        terraform = infra_reader.deployed(infra_reader.INFRA, configured=True)
        started = DeployedStack(
            router=router.url, project=PROJECT, firestore=firestore.host,
            mailjet=standins["mailjet"].url, secret_manager=secrets.address, signer=signer, key_file=key,
            artifact=artifact, logs=logs,
        )  # fmt: skip
        parts = []
        for function in manifest.functions:
            command = [
                str(runtime_venv / "bin" / "functions-framework"),
                "--target", function.name, "--signature-type", function.signature,
                "--source", str(artifact / "main.py"),
                "--host", "127.0.0.1", "--port", str(ports[function.name]),
            ]  # fmt: skip
            env = {
                **terraform_environment(terraform[function.name], apply_time),
                **local_only,
                # Cloud Run names a gen2 function's service with dashes.
                "K_SERVICE": function.name.replace("_", "-"),
                "K_REVISION": f"{function.name.replace('_', '-')}-00001-dep",
                "PORT": str(ports[function.name]),
            }
            process, log = processes.launch(function.name, command, logs, env, artifact)
            started.processes[function.name] = process
            cleanup.append(lambda p=process: _stop(p))
            port = ports[function.name]
            parts.append(processes.Part(function.name, process, log, lambda p=port: _serving(p)))
        processes.wait_ready(parts, timeout=READY_S)
        targets = wiring.Targets(
            gateway=router.url, region=REGION, scheduler=scheduler.address, firestore=firestore,
            pubsub=pubsub.host, tasks=tasks.address, push_relay=relay.url,
        )  # fmt: skip
        wiring.wire(manifest, "emulators", targets)
        yield started
    finally:
        for stop in reversed(cleanup):
            with contextlib.suppress(Exception):  # one failed stop must not leave the rest running
                stop()
