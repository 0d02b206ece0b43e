"""Start stack processes detached, wait until they answer, and stop them again by PID only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

POLL_S = 0.1
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


class StartError(RuntimeError):
    """A part exited or did not answer in time; the message carries its log tail."""


@dataclass
class Part:
    """One started process; `probe` returns its endpoint once it answers, else None."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    probe: Callable[[], str | None]
    endpoint: str | None = None


def launch(
    name: str,
    command: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Own session (so `down` can signal its whole group), output to `<log_dir>/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
        )  # fmt: skip
    return process, log_path


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-u", "-m", module, *args]


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def first_line(path: Path, prefix: str, *, strip: bool = True) -> str | None:
    """The first log line starting with `prefix`, minus it (how our servers announce ready)."""
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(prefix):
            return (line.removeprefix(prefix) if strip else line).strip()
    return None


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(parts: Sequence[Part], timeout: float = READY_TIMEOUT_S) -> None:
    """Poll every part every 100 ms until all answer; a dead or late part raises StartError."""
    deadline = time.monotonic() + timeout
    pending = [part for part in parts if part.endpoint is None]
    while pending:
        for part in list(pending):
            if part.process.poll() is not None:
                raise StartError(
                    f"{part.name} exited with code {part.process.returncode} before it was "
                    f"ready; {part.log_path}:\n{log_tail(part.log_path)}"
                )
            part.endpoint = part.probe()
            if part.endpoint is not None:
                pending.remove(part)
        if pending and time.monotonic() > deadline:
            late = pending[0]
            raise StartError(
                f"{late.name} did not answer within {timeout:.0f} s; {late.log_path}:\n"
                f"{log_tail(late.log_path)}"
            )
        if pending:
            time.sleep(POLL_S)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state first), or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return []  # unreadable but present
    return raw.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Running and not a zombie: a stopped stack's children may wait unreaped under init."""
    if Path("/proc").is_dir():
        fields = _stat(pid)
        return fields is not None and (not fields or fields[0] not in ("Z", "X"))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ours(pid: int) -> bool:
    """Alive and still a stack part we started: guards against a recycled PID (e.g. a reboot).

    Never used to find processes, only to confirm a recorded PID before signalling it.
    """
    if not alive(pid):
        return False
    if not Path("/proc").is_dir():
        return True
    fields = _stat(pid) or []
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        command = b""
    # fields: state ppid pgrp session ...; start_new_session made pid == pgrp == session, and
    # every part's command names an emulator (emulators.<module> or the emulator JARs).
    leader = not fields or (fields[2] == str(pid) and fields[3] == str(pid))
    return leader and b"emulator" in command


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group is the session we created: the process and its children


def stop(pid: int, grace: float = STOP_GRACE_S) -> str:
    """SIGTERM the process group, SIGKILL it after `grace`; returns what happened, for printing."""
    if not ours(pid):
        return "not running"
    _signal_group(pid, signal.SIGTERM)
    outcome = "stopped"
    if not _wait_gone(pid, grace):
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, grace)
        outcome = "killed after SIGTERM timed out"
    # Anything its group still holds (a child that ignored SIGTERM) goes too.
    _signal_group(pid, signal.SIGKILL)
    return outcome
