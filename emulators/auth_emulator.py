"""The Firebase Auth emulator: firebase-tools' own, pinned in emulators/firebase/package-lock.json.

The stack runs `python -m emulators.auth_emulator serve` as its `auth` part: it installs the CLI
if needed (`npm ci`, once, stamped), then becomes `firebase emulators:start --only auth` with a
config of its own (the port the stack chose), so a dashboard signs users in with the Firebase JS
SDK and the API accepts exactly those tokens (docs/operations.md §17). Nothing waits for it: the
install (~40 s) and the emulator's schema compiling (~15 s of CPU) run niced beside the stack,
which serves meanwhile; `make dev` says when sign-in works. `make test` runs `install` first.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "emulators" / "firebase"
PINNED = (PACKAGE_DIR / "package.json", PACKAGE_DIR / "package-lock.json")
CLI = PACKAGE_DIR / "node_modules" / "firebase-tools" / "lib" / "bin" / "firebase.js"
STAMP = PACKAGE_DIR / "node_modules" / ".installed"  # the fingerprint of PINNED it was made from
LOCK = PACKAGE_DIR / ".install.lock"  # one `npm ci` at a time: `make test` and a stack, say
# --ignore-scripts: only re2 (optional; firebase-tools falls back to RegExp) and protobufjs have
# install scripts, and re2's downloads a prebuilt binary from outside the package registry.
NPM_CI = ("ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
DEFAULT_PORT = 9099  # firebase.json's, where the Firebase JS SDK's connectAuthEmulator looks
NICENESS = 10  # install and schema compiling yield the CPU to the stack's own start (2 cores)
READY_TIMEOUT_S = 120.0  # a start on 2 busy cores; ~23 s when idle
# What the environment says about starting it: auto (when node is there), on, off.
SWITCH = "PLAYBOOKS_AUTH_EMULATOR"
# A shell's own emulator addresses and Google credentials are not the emulator's business.
_DROPPED = (
    "FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
    "FIREBASE_EMULATOR_HUB", "GOOGLE_APPLICATION_CREDENTIALS", "FIREBASE_TOKEN",
)  # fmt: skip


class AuthEmulatorError(RuntimeError):
    """PLAYBOOKS_AUTH_EMULATOR=on (or a bad value) and the emulator cannot be had."""


@dataclass(frozen=True)
class Availability:
    node: str | None
    npm: str | None
    installed: bool  # the CLI is in node_modules, installed from the current PINNED files

    @property
    def present(self) -> bool:
        """It can run: installed, or installable now."""
        return bool(self.node and (self.installed or self.npm))

    @property
    def missing(self) -> str:
        if not self.node:
            return "node is not on PATH"
        if not (self.installed or self.npm):
            return f"npm is not on PATH and firebase-tools is not installed in {PACKAGE_DIR}"
        return ""


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in PINNED:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def current() -> bool:
    """The CLI is installed, from the package files as they are now."""
    try:
        return CLI.is_file() and STAMP.read_text().strip() == fingerprint()
    except FileNotFoundError:
        return False


def detect() -> Availability:
    return Availability(node=shutil.which("node"), npm=shutil.which("npm"), installed=current())


def install(npm: str) -> bool:
    """`npm ci` of the pinned CLI unless already current; True if it ran. Raises on failure."""
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent installer finishes first; then current
        if current():
            return False
        started = time.monotonic()
        print(f"installing firebase-tools (npm {' '.join(NPM_CI)}) in {PACKAGE_DIR}", flush=True)
        subprocess.run([npm, *NPM_CI], cwd=PACKAGE_DIR, check=True)
        STAMP.write_text(fingerprint() + "\n")
        print(f"firebase-tools installed in {time.monotonic() - started:.1f} s", flush=True)
        return True


def wanted(found: Availability, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the stack starts it: `auto` (default) when it can, `off` never, `on` or fail."""
    switch = environ.get(SWITCH) or "auto"
    if switch not in ("auto", "on", "off"):
        raise AuthEmulatorError(f"{SWITCH} must be auto, on or off, not {switch!r}")
    if switch == "on" and not found.present:
        raise AuthEmulatorError(f"{SWITCH}=on but {found.missing}")
    return switch != "off" and found.present


def write_config(directory: Path, port: int) -> Path:
    """A firebase.json for the Auth emulator alone, on `port` (the repo's own names 9099)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "firebase.json"
    emulators = {
        "auth": {"host": "127.0.0.1", "port": port},
        "ui": {"enabled": False},
        "singleProjectMode": True,
    }
    config.write_text(json.dumps({"emulators": emulators}, indent=2) + "\n")
    return config


def part_command(config: Path, project: str) -> list[str]:
    """The stack's `auth` part: `serve` below, niced when `nice` exists."""
    nice = shutil.which("nice")
    return [
        *([nice, "-n", str(NICENESS)] if nice else []),
        sys.executable, "-u", "-m", "emulators.auth_emulator", "serve",
        "--config", str(config), "--project", project,
    ]  # fmt: skip


def cli_command(node: str, config: Path, project: str) -> list[str]:
    return [
        node, str(CLI), "emulators:start", "--only", "auth",
        "--project", project, "--config", str(config),
    ]  # fmt: skip


def environment(base: Mapping[str, str], directory: Path) -> dict[str, str]:
    """The CLI's environment: nothing fetched from the network, nothing shared with a user's CLI.

    NO_UPDATE_NOTIFIER: no detached npm-registry check (it would outlive `down`). CI: no "message
    of the day" fetch. XDG_CONFIG_HOME: a configstore of its own, so neither a user's login nor
    their usage-statistics opt-in applies (no telemetry). TMPDIR: the hub's locator file stays in
    the state dir, so stacks side by side do not see each other.
    """
    env = {name: value for name, value in base.items() if name not in _DROPPED}
    env.update(
        NO_UPDATE_NOTIFIER="1",
        CI="true",
        XDG_CONFIG_HOME=str(directory / "config"),
        TMPDIR=str(directory),
    )
    return env


def serve(config: Path, project: str) -> NoReturn:
    """Install if needed, then become the CLI (same PID: the stack stops it by that PID)."""
    found = detect()
    if not found.node:
        sys.exit("cannot start the Auth emulator: node is not on PATH")
    if not found.installed:
        if not found.npm:
            sys.exit(f"cannot start the Auth emulator: {found.missing}")
        install(found.npm)
    os.execv(found.node, cli_command(found.node, config, project))  # noqa: S606 - fixed args


def ready(host: str) -> bool:
    """The emulator's own readiness answer on GET / (`{"authEmulator": {"ready": true}}`)."""
    try:
        response = httpx.get(f"http://{host}/", timeout=1.0, trust_env=False)
        return response.status_code == 200 and response.json()["authEmulator"]["ready"] is True
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.auth_emulator", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="npm ci the pinned CLI unless current (no node: skip)")
    run = commands.add_parser("serve", help="install if needed, then run the Auth emulator")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--project", required=True)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.config, args.project)
    found = detect()
    if found.installed:
        print(f"firebase-tools is current in {PACKAGE_DIR}")
    elif not (found.node and found.npm):
        print("no node/npm here: the Firebase Auth emulator and its e2e test are skipped")
    else:
        try:
            install(found.npm)
        except subprocess.CalledProcessError as exc:
            print(f"npm ci failed (exit {exc.returncode})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
