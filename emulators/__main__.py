"""`python -m emulators dev|up|down [--state-dir DIR]`: the local stack (make dev / up / down)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from emulators import auth_emulator, demo, processes, stack
from emulators.processes import StartError
from playbook_core.domain.collections import CUSTOMERS
from playbook_core.runtime.manifest import load_manifest

if TYPE_CHECKING:
    from types import FrameType


def _write_customer(state: dict[str, Any], state_dir: Path) -> str:
    python, project = shlex.quote(sys.executable), state["project"]
    if state["firestore"]:
        write = (
            "from google.cloud import firestore; "
            f'firestore.Client().document("{CUSTOMERS}/c1").set({{"email": "c1@example.com"}})'
        )
        env = f"FIRESTORE_EMULATOR_HOST={state['firestore']} GOOGLE_CLOUD_PROJECT={project}"
        return f"{env} {python} -c {shlex.quote(write)}"
    # Embedded: write through the stack's SQLite file; its commit hook posts the trigger event.
    hook = f"{state['gateway']}/functions/projects/{project}/triggers/{project}:on_customer_written"
    write = (
        "from playbook_core.adapters.embedded import EmbeddedStore; "
        "from playbook_core.adapters.firestore_events import FirestoreTriggerPoster; "
        f"p = FirestoreTriggerPoster(lambda path: {json.dumps(hook)}); "
        f"EmbeddedStore({json.dumps(str(state_dir / 'playbooks.sqlite3'))}, on_commit=p)"
        f'.set("{CUSTOMERS}", "c1", {{"email": "c1@example.com"}}); p.drain(); p.close()'
    )
    return f"{python} -c {shlex.quote(write)}"


def _examples(state: dict[str, Any], state_dir: Path) -> list[str]:
    secret = stack.cron_secret()
    shown = secret if secret == stack.DEV_CRON_SECRET else "$CRON_SECRET"  # never echo a real one
    listing = f"{state['gateway']}/playbooks_api/v1/orgs/{state['demoOrgId']}/playbooks"
    return [
        "# health (storage, bus, queue and provider configuration):",
        f"curl -s {state['gateway']}/playbooks_api/v1/health",
        "# the demo org's tier playbooks, as a system call:",
        f"curl -s -H 'X-Cron-Secret: {shown}' '{listing}?view=dispensary'",
        "# write a customer: on_customer_written logs 'document change received':",
        _write_customer(state, state_dir),
        "# follow the functions' JSON log lines:",
        f"tail -f {state_dir / 'logs/gateway.log'}",
    ]


def _play(state: dict[str, Any], state_dir: Path) -> None:
    """The scripted demo; a failure is reported, and the stack keeps serving for a look."""
    print()
    try:
        demo.play(state, str(state["demoOrgId"]), state_dir)
    except (demo.DemoError, httpx.HTTPError) as exc:
        print(f"!! the demo stopped: {exc}; see {state_dir / 'logs/gateway.log'}", flush=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt  # SIGTERM ends `dev` the same way Ctrl-C does: through `down`


def dev(state_dir: Path) -> int:
    state_dir = state_dir.resolve()
    before = stack.read_state(state_dir)
    if before is not None and before.get("pids") and not stack.running(before)[1]:
        # Someone's `make up`: seed it if needed and play, but it is not ours to serve or stop.
        code = stack.up(state_dir, seed=demo.seed)
        state = stack.read_state(state_dir)
        if code == 0 and state is not None:
            _play(state, state_dir)
        return code
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # A backgrounded `make dev &` starts with SIGINT ignored; Ctrl-C must still stop the stack.
    signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        code = stack.up(state_dir, seed=demo.seed)
        state = stack.read_state(state_dir)
        if code or state is None:
            return code or 1
        _play(state, state_dir)
        print("\ntry:")
        print("\n".join(f"  {line}" for line in _examples(state, state_dir)))
        print("serving until Ctrl-C …", flush=True)
        _watch(state, stack.state_file(state_dir))
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut `down` short and leave Java running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\ninterrupted: stopping (further Ctrl-C is ignored until everything is down)")
        code = stack.down(state_dir)
        _reap_children()
        return code
    print("the stack was stopped from elsewhere")
    return 0


def _reap_children() -> None:
    """`dev` is every part's parent: collect their exit statuses so none lingers <defunct>."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _announce_auth(host: str) -> None:
    print(
        f"auth emulator ready on http://{host}: in the dashboard, "
        f'connectAuthEmulator(auth, "http://{host}"); the API accepts its ID tokens '
        "(custom claims role/orgId: docs/operations.md §17)",
        flush=True,
    )


def _watch(state: dict[str, Any], state_path: Path) -> None:
    """Sleep until interrupted; say once if a part dies, so a silent hole is never served.

    Also say once when the Auth emulator, which `up` does not wait for, answers.
    """
    reported: set[str] = set()
    auth_pending = bool(state.get("auth"))
    while state_path.exists():  # gone: someone ran `make down` meanwhile
        if auth_pending and auth_emulator.ready(state["auth"]):
            auth_pending = False
            _announce_auth(state["auth"])
        time.sleep(1.0)
        for name, pid in state["pids"].items():
            if name not in reported and not processes.alive(pid):
                reported.add(name)
                print(f"!! {name} (pid {pid}) exited; see its log under logs/", flush=True)


def _print_url(state_dir: Path, function: str) -> int:
    """The gateway's address comes from stack.json: the port may not be 8080 (it may be taken)."""
    names = [declared.name for declared in load_manifest().functions]
    if function not in [*names, "auth"]:
        print(f"no function {function!r}; the manifest has {', '.join(names)}", file=sys.stderr)
        return 2
    state = stack.read_state(state_dir)
    if state is None:
        print("no stack is running here: `make up` starts one", file=sys.stderr)
        return 1
    if function == "auth":  # the Firebase Auth emulator, where the JS SDK connects
        if not state.get("auth"):
            print(
                "this stack runs no Auth emulator (node missing, or switched off)", file=sys.stderr
            )
            return 1
        print(f"http://{state['auth']}")
        return 0
    print(f"{state['gateway']}/{function}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators",
        description="Run the local stack (docs/operations.md, docs/api.md §2).",
    )
    parser.add_argument(
        "command", nargs="?", default="dev", choices=("dev", "up", "down", "url"),
        help="dev: up, serve until Ctrl-C, down; up: start detached; down: stop by PID; "
        "url: print the running stack's URL of a function (default playbooks_api) or of the "
        "Auth emulator (auth)",
    )  # fmt: skip
    parser.add_argument(
        "function", nargs="?", default="playbooks_api", help="url: the function (manifest name)"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=stack.DEFAULT_STATE_DIR,
        help="where stack.json, logs/ and embedded data live (default: .local)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", choices=("demo", "none"), default="demo",
        help="up: seed the demo org (default, as api.md §2 says) or nothing; dev always seeds",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return stack.up(args.state_dir, seed=demo.seed if args.seed == "demo" else None)
        if args.command == "down":
            return stack.down(args.state_dir)
        if args.command == "url":
            return _print_url(args.state_dir, args.function)
        return dev(args.state_dir)
    except StartError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
