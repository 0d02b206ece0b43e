"""The stack runner: `up` starts every part detached and wires it, `down` stops it by PID."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emulators import auth_emulator, official, processes, wiring
from emulators.processes import Part, StartError
from emulators.standins import (
    BLACKLEAF_TEST_KEY,
    HARNESS_TEST_TOKEN,
    MAILJET_TEST_KEY,
    MAILJET_TEST_SECRET,
)
from playbook_core.runtime.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = ROOT / ".local"
ENDPOINTS = ("gateway", "firestore", "pubsub", "tasks", "scheduler", "auth")
STANDINS = ("mailjet", "blackleaf", "agents", "slack", "shopifyAdmin", "woocommerceApi")
STOP_ORDER = (  # Java first, then the Firebase CLI (Node)
    "firestore", "pubsub", "auth", "gateway", "pubsub_push", "scheduler", "tasks", "standins",
)  # fmt: skip
REGION = "us-central1"
DEV_CRON_SECRET = "local-dev-cron-secret"  # noqa: S105 - a fixed local value, never deployed
# Signs the unsubscribe links local emails carry (docs/consent.md §4); never deployed.
DEV_UNSUBSCRIBE_KEY = "local-dev-unsubscribe-key-not-secret"
# FIREBASE_AUTH_EMULATOR_HOST when the Auth emulator is off or missing: the API still accepts
# unsigned tokens (`playbooks token`, api.md §3) though nothing listens there.
AUTH_EMULATOR_MARKER = f"127.0.0.1:{auth_emulator.DEFAULT_PORT}"
# Shaped like a real incoming webhook, whose path is the credential: a leak shows in the logs.
ALERT_WEBHOOK_PATH = "/services/T0LOCAL/B0OPSALERT/local-ops-alert-webhook-token"
# Seeds a started stack through its API (stack.json's content, the state dir) → the demo org id.
Seeder = Callable[[dict[str, Any], Path], str]


def down_hint(state_dir: Path) -> str:
    if state_dir == DEFAULT_STATE_DIR.resolve():
        return "`make down` stops it"
    return f"`python -m emulators down --state-dir {state_dir}` stops it"


def state_file(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(state_file(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    temporary = state_file(state_dir).with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(state_file(state_dir))  # readers never see half a file


@contextmanager
def _exclusive(state_dir: Path) -> Iterator[None]:
    """One `up`/`down` at a time per state dir: two racing `up`s would start twins."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".stack.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartError(f"another up/down is already working on {state_dir}") from None
        yield


def choose_backend() -> tuple[str, official.Availability]:
    found = official.installed()
    forced = os.environ.get("PLAYBOOKS_BACKEND")
    if forced:
        if forced not in ("emulators", "embedded"):
            raise StartError(f"PLAYBOOKS_BACKEND must be emulators or embedded, not {forced!r}")
        if forced == "emulators" and not found.present:
            raise StartError(f"PLAYBOOKS_BACKEND=emulators but missing {found.missing}")
        print(f"backend: {forced} (PLAYBOOKS_BACKEND)")
        return forced, found
    if found.present:
        print("backend: emulators (java and the Firestore/Pub/Sub emulator JARs found)")
        return "emulators", found
    print(f"backend: embedded (no official emulators: missing {found.missing})")
    return "embedded", found


def _port(variable: str, default: int, what: str) -> int:
    """The port `variable` names (`default` when unset; 0: any free one), else a free one."""
    raw = os.environ.get(variable) or str(default)
    if not raw.isdigit():
        raise StartError(f"{variable} must be a port number, not {raw!r}")
    wanted = int(raw)
    if wanted and processes.port_free(wanted):
        return wanted
    port = processes.free_port()
    if wanted:
        print(f"port {wanted} is taken; {what} uses {port} instead")
    return port


def gateway_port() -> int:
    return _port("PLAYBOOKS_GATEWAY_PORT", 8080, "the gateway")


def cron_secret() -> str:
    """The X-Cron-Secret system calls present; the gateway gets the same value."""
    return os.environ.get("CRON_SECRET") or DEV_CRON_SECRET


def unsubscribe_key() -> str:
    """The key the gateway signs unsubscribe links with: the shell's, else the local one."""
    return os.environ.get("UNSUBSCRIBE_KEY") or DEV_UNSUBSCRIBE_KEY


def _base_env(backend: str) -> dict[str, str]:
    env = dict(os.environ)
    # A deployed-runtime marker or a stray emulator address from the shell must not leak in.
    for name in (
        "K_SERVICE", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
        "SECRET_MANAGER_EMULATOR_HOST", "PLAYBOOKS_GOOGLE_OIDC_CERTS_URL",
        "PLAYBOOKS_FIREBASE_CERTS_URL",
    ):  # fmt: skip
        env.pop(name, None)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        PLAYBOOKS_BACKEND=backend,
        GOOGLE_CLOUD_PROJECT=official.PROJECT,
        MAILJET_API_KEY=MAILJET_TEST_KEY,
        MAILJET_SECRET_KEY=MAILJET_TEST_SECRET,
        BLACKLEAF_API_KEY=BLACKLEAF_TEST_KEY,
        AGENT_HARNESS_TOKEN=HARNESS_TEST_TOKEN,
    )
    return env


def gateway_env(base: dict[str, str], state_dir: Path, endpoints: dict[str, Any]) -> dict[str, str]:
    """Everything the functions read from the environment, pointed at this stack."""
    env = dict(base)
    for name in ("CLOUD_TASKS_EMULATOR_HOST", "CLOUD_SCHEDULER_EMULATOR_HOST"):
        env.pop(name, None)
    # Internal entry points accept the emulators' unsigned OIDC tokens of the identities wiring
    # gives the push subscriptions, scheduler jobs and tasks.
    env.update(
        PLAYBOOKS_LOCAL_OIDC="1",
        PLAYBOOKS_TASKS_INVOKER=wiring.invoker("cloud_tasks"),
        PLAYBOOKS_SCHEDULER_INVOKER=wiring.invoker("cloud_scheduler"),
        PLAYBOOKS_PUSH_INVOKER=wiring.invoker("pubsub_push"),
        # Step tasks spread over the shards wiring creates, as Terraform configures it.
        PLAYBOOKS_STEP_SHARDS=str(load_manifest().steps_queue().shards),
    )
    hosts = {
        "FIRESTORE_EMULATOR_HOST": endpoints["firestore"],
        "PUBSUB_EMULATOR_HOST": endpoints["pubsub"],
        "CLOUD_TASKS_EMULATOR_HOST": endpoints["tasks"],
        "CLOUD_SCHEDULER_EMULATOR_HOST": endpoints["scheduler"],
    }
    env.update({name: value for name, value in hosts.items() if value})
    env.update(
        PLAYBOOKS_DATA_DIR=str(state_dir),
        PLAYBOOKS_FUNCTIONS_BASE_URL=endpoints["gateway"],
        PLAYBOOKS_GATEWAY_PORT=endpoints["gateway"].rsplit(":", 1)[1],
        MAILJET_API_BASE=endpoints["mailjet"],
        BLACKLEAF_API_BASE=endpoints["blackleaf"],
        AGENT_HARNESS_URL=endpoints["agents"],
        SHOPIFY_ADMIN_API_BASE=endpoints["shopifyAdmin"],
        WOOCOMMERCE_API_BASE=endpoints["woocommerceApi"],
        SLACK_ALERT_WEBHOOK_URL=f"{endpoints['slack']}{ALERT_WEBHOOK_PATH}",
        CRON_SECRET=cron_secret(),
        UNSUBSCRIBE_KEY=unsubscribe_key(),
        FIREBASE_AUTH_EMULATOR_HOST=endpoints.get("auth") or AUTH_EMULATOR_MARKER,
    )
    return env


def _python_part(name: str, log_dir: Path, env: dict[str, str], module: str, *args: str) -> Part:
    process, log = processes.launch(
        name, processes.python_module(module, *args), log_dir, env, ROOT
    )
    return Part(name, process, log, lambda: processes.first_line(log, "ready "))


def _java_part(emulator: official.Emulator) -> Part:
    host = emulator.host
    return Part(
        emulator.name, emulator.process, emulator.log_path,
        lambda: host if processes.http_ok(f"http://{host}/") else None,
    )  # fmt: skip


def _standins_part(log_dir: Path, env: dict[str, str]) -> Part:
    args = processes.python_module("emulators.standins")
    process, log = processes.launch("standins", args, log_dir, env, ROOT)
    return Part("standins", process, log, lambda: processes.first_line(log, "{", strip=False))


def _gateway_part(log_dir: Path, env: dict[str, str], port: int) -> Part:
    args = processes.python_module("emulators.gateway", "--port", str(port))
    process, log = processes.launch("gateway", args, log_dir, env, ROOT)

    def probe() -> str | None:
        url = processes.first_line(log, "ready ")
        return url if url and processes.http_ok(f"{url}/playbooks_api/v1/health") else None

    return Part("gateway", process, log, probe)


def _auth_part(state_dir: Path, base: dict[str, str]) -> tuple[Part, str] | None:
    """The Firebase CLI's Auth emulator on PLAYBOOKS_AUTH_PORT (9099), with its host:port.

    None when PLAYBOOKS_AUTH_EMULATOR is off, or auto and node (or, to install the CLI, npm) is
    missing. The part installs the CLI first if needed: nothing here waits for either.
    """
    found = auth_emulator.detect()
    try:
        if not auth_emulator.wanted(found):
            why = found.missing or f"{auth_emulator.SWITCH}=off"
            print(f"auth emulator: not started ({why}); `playbooks token` tokens still work")
            return None
    except auth_emulator.AuthEmulatorError as exc:
        raise StartError(str(exc)) from None
    port = _port("PLAYBOOKS_AUTH_PORT", auth_emulator.DEFAULT_PORT, "the Auth emulator")
    directory = state_dir / "firebase"
    config = auth_emulator.write_config(directory, port)
    args = auth_emulator.part_command(config, official.PROJECT)
    env = auth_emulator.environment(base, directory)
    process, log = processes.launch("auth", args, state_dir / "logs", env, directory)
    if not found.installed:
        print(f"auth emulator: installing firebase-tools first (npm ci, ~40 s; {log})")
    host = f"127.0.0.1:{port}"
    return Part("auth", process, log, lambda: host if auth_emulator.ready(host) else None), host


def _start(state_dir: Path, backend: str, found: official.Availability) -> dict[str, Any]:
    """Start, wait, wire; on any failure stop what was started. Returns stack.json's content."""
    logs, parts, unawaited = state_dir / "logs", [], []
    base = _base_env(backend)
    port = gateway_port()
    gateway_url = f"http://127.0.0.1:{port}"
    firestore: official.Emulator | None = None
    auth_host: str | None = None
    try:
        # First, and never awaited: its ~15 s start overlaps everything else (auth_emulator.py).
        auth = _auth_part(state_dir, base)
        if auth is not None:
            unawaited.append(auth[0])
            auth_host = auth[1]
        # Phase 1, in parallel: everything the gateway's environment has to name.
        scheduler_args = ["--port", "0"]
        if backend == "emulators":
            hook = f"127.0.0.1:{port}"  # the gateway starts in phase 2, before any trigger fires
            firestore = official.start_firestore(found, logs, functions_emulator=hook)
            pubsub = official.start_pubsub(found, logs)
            parts += [_java_part(firestore), _java_part(pubsub)]
            parts.append(_python_part("tasks", logs, base, "emulators.cloud_tasks", "--port", "0"))
            relay_args = ["--pubsub-host", pubsub.host, "--port", "0"]
            # The OIDC token on pushes, which the Pub/Sub emulator never sends.
            parts.append(
                _python_part("pubsub_push", logs, base, "emulators.pubsub_push", *relay_args)
            )
            scheduler_args += ["--pubsub-host", pubsub.host]  # for Pub/Sub-target jobs
        parts.append(
            _python_part("scheduler", logs, base, "emulators.cloud_scheduler", *scheduler_args)
        )
        parts.append(_standins_part(logs, base))
        processes.wait_ready(parts)
        found_at = {part.name: part.endpoint for part in parts}
        endpoints: dict[str, Any] = {
            "gateway": gateway_url,
            **{name: found_at.get(name) for name in ENDPOINTS[1:-1]},
            "auth": auth_host,
            **json.loads(found_at["standins"] or "{}"),
        }
        # Phase 2: the gateway, then the wiring that points everything at it.
        gateway = _gateway_part(logs, gateway_env(base, state_dir, endpoints), port)
        parts.append(gateway)
        processes.wait_ready([gateway])
        targets = wiring.Targets(
            gateway=gateway_url, region=REGION, scheduler=endpoints["scheduler"],
            firestore=firestore, pubsub=endpoints["pubsub"], tasks=endpoints["tasks"],
            push_relay=found_at.get("pubsub_push"),
        )  # fmt: skip
        for line in wiring.wire(load_manifest(), backend, targets):
            print(f"  wired {line}")
    except BaseException:
        # Ctrl-C or a failed start must not leave half a stack running.
        for part in reversed(unawaited + parts):
            processes.stop(part.process.pid)
            part.process.wait()  # reap: our children, not yet orphaned
        raise
    return {
        **{name: endpoints[name] for name in (*ENDPOINTS, *STANDINS)},
        "backend": backend,
        "project": official.PROJECT,
        "cronSecret": cron_secret(),  # X-Cron-Secret for the API's system routes
        "demoOrgId": None,  # set by the seeder once the demo org is in
        "pids": {part.name: part.process.pid for part in unawaited + parts},
    }


def running(state: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(alive, dead) part names of a recorded stack."""
    pids: dict[str, int] = state.get("pids", {})
    alive = [name for name, pid in pids.items() if processes.ours(pid)]
    return alive, [name for name in pids if name not in alive]


def _stop_recorded(state_dir: Path, state: dict[str, Any]) -> list[str]:
    """Stop every recorded PID (Java first); returns the names still alive afterwards."""
    pids: dict[str, int] = state.get("pids", {})
    order = [n for n in STOP_ORDER if n in pids] + [n for n in pids if n not in STOP_ORDER]
    for name in order:
        print(f"  {name} (pid {pids[name]}): {processes.stop(pids[name])}")
    state_file(state_dir).unlink(missing_ok=True)
    return [name for name in order if processes.ours(pids[name])]


def _seed(state_dir: Path, state: dict[str, Any], seed: Seeder) -> None:
    """Seed through the running gateway and record `demoOrgId`; a failure raises StartError."""
    started = time.monotonic()
    try:
        org_id = seed(state, state_dir)
    except Exception as exc:  # Ctrl-C (not an Exception) passes through untouched
        raise StartError(
            f"seeding the demo org failed: {exc}\n{state_dir / 'logs' / 'gateway.log'}:\n"
            f"{processes.log_tail(state_dir / 'logs' / 'gateway.log', 10)}"
        ) from exc
    state["demoOrgId"] = org_id
    _write_state(state_dir, state)
    print(f"demo org {org_id} seeded in {time.monotonic() - started:.1f} s")


def up(state_dir: Path = DEFAULT_STATE_DIR, seed: Seeder | None = None) -> int:
    """Start the stack detached; with `seed`, also seed the demo org (api.md §2)."""
    state_dir = state_dir.resolve()
    with _exclusive(state_dir):
        previous = read_state(state_dir)
        if previous is not None:
            _, dead = running(previous)
            if previous.get("pids") and not dead:
                print(f"the stack is already running: gateway {previous['gateway']}")
                if seed is not None and not previous.get("demoOrgId"):
                    _seed(state_dir, previous, seed)  # not ours to stop if this fails
                print(f"  endpoints in {state_file(state_dir)}; {down_hint(state_dir)}")
                return 0
            print(f"cleaning up a previous stack (exited: {', '.join(dead) or 'unknown'})")
            _stop_recorded(state_dir, previous)
        started = time.monotonic()
        backend, found = choose_backend()
        state = _start(state_dir, backend, found)
        _write_state(state_dir, state)
        if seed is not None:
            try:
                _seed(state_dir, state, seed)
            except BaseException:
                # All or nothing, as a failed start: no half-seeded stack keeps running.
                _stop_recorded(state_dir, state)
                raise
    took = time.monotonic() - started
    width = max(map(len, (*ENDPOINTS, *STANDINS)))
    for name in (*ENDPOINTS, *STANDINS):
        print(f"  {name:<{width}}  {state[name] or '-'}")
    print(f"stack up in {took:.1f} s ({backend}); endpoints in {state_file(state_dir)}")
    print(f"  logs in {state_dir / 'logs'}; {down_hint(state_dir)}")
    if state["auth"] and not auth_emulator.ready(state["auth"]):
        print(f"  the Auth emulator is still starting: sign-in works once http://{state['auth']}/")
        print(
            "  answers (~25 s; a first run installs firebase-tools first); the API serves meanwhile"
        )
    return 0


def down(state_dir: Path = DEFAULT_STATE_DIR) -> int:
    state_dir = state_dir.resolve()
    with _exclusive(state_dir):
        state = read_state(state_dir)
        if state is None:
            print(f"no stack is running ({state_file(state_dir)} does not exist)")
            return 0
        print("stopping the stack")
        left = _stop_recorded(state_dir, state)
    if left:
        print(f"still running after SIGKILL: {', '.join(left)}", file=sys.stderr)
        return 1
    print("stack stopped; nothing left running")
    return 0
