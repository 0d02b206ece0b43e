"""Detect, start, wait for, reset and stop the official Firestore and Pub/Sub emulators (Java)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_ROOT = "/usr/lib/google-cloud-sdk"
PROJECT = "demo-playbooks"
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Availability:
    java: str | None
    firestore_jar: str | None
    pubsub_jar: str | None

    @property
    def present(self) -> bool:
        return bool(self.java and self.firestore_jar and self.pubsub_jar)

    @property
    def missing(self) -> str:
        parts = [
            name
            for name, value in (
                ("java", self.java),
                ("cloud-firestore-emulator.jar", self.firestore_jar),
                ("cloud-pubsub-emulator-*.jar", self.pubsub_jar),
            )
            if not value
        ]
        return ", ".join(parts)


def detect(root: str = DEFAULT_ROOT) -> Availability:
    firestore = Path(root, "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
    pubsub = sorted(Path(root, "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*.jar"))
    return Availability(
        java=shutil.which("java"),
        firestore_jar=str(firestore) if firestore.exists() else None,
        pubsub_jar=str(pubsub[-1]) if pubsub else None,
    )


def installed() -> Availability:
    """What `detect` finds under PLAYBOOKS_GCLOUD_ROOT, else under DEFAULT_ROOT."""
    return detect(os.environ.get("PLAYBOOKS_GCLOUD_ROOT", DEFAULT_ROOT))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Emulator:
    """One started Java emulator; `host` is what FIRESTORE_/PUBSUB_EMULATOR_HOST take."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"http://{self.host}/", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"{self.name} emulator did not become ready on {self.host}:\n{tail}")

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=grace)


def _start(name: str, command: Sequence[str], port: int, log_dir: Path) -> Emulator:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # one Java PID per emulator: no wrapper scripts to orphan
            list(command), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Emulator(name=name, port=port, process=process, log_path=log_path)


def start_firestore(
    found: Availability, log_dir: Path, port: int = 0, functions_emulator: str | None = None
) -> Emulator:
    if not (found.java and found.firestore_jar):
        raise RuntimeError(f"cannot start Firestore: missing {found.missing}")
    port = port or free_port()
    command = [
        found.java, "-Duser.language=en", "-cp", found.firestore_jar,
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "--host", "127.0.0.1", "--port", str(port), "--project_id", PROJECT,
    ]  # fmt: skip
    if functions_emulator:
        command += ["--functions_emulator", functions_emulator]
    return _start("firestore", command, port, log_dir)


def start_pubsub(found: Availability, log_dir: Path, port: int = 0) -> Emulator:
    if not (found.java and found.pubsub_jar):
        raise RuntimeError(f"cannot start Pub/Sub: missing {found.missing}")
    port = port or free_port()
    command = [
        found.java, "-jar", found.pubsub_jar, "--host=127.0.0.1", f"--port={port}",
    ]  # fmt: skip
    return _start("pubsub", command, port, log_dir)


def reset_firestore(emulator: Emulator) -> None:
    url = f"http://{emulator.host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
    httpx.delete(url, timeout=10.0).raise_for_status()


def register_firestore_trigger(
    emulator: Emulator, function: str, document: str, event: str
) -> None:
    """Have the emulator POST document CloudEvents for `document` to `<functions_emulator>/...`."""
    url = (
        f"http://{emulator.host}/emulator/v1/projects/{PROJECT}/eventarcTrigger"
        f"?eventarcTriggerId={PROJECT}:{function}"
    )
    body = {
        "eventType": f"google.cloud.firestore.document.v1.{event}",
        "database": "(default)",
        "namespace": "(default)",
        "document": {"value": document, "matchType": "PATH_PATTERN"},
    }
    httpx.post(url, json=body, timeout=10.0).raise_for_status()
