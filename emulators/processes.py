"""Start stack processes detached, wait until they answer, and stop them again by PID only.

Also what a test run owns: every process it starts carries RUN_OWNER in its environment (inherited,
so detached stack parts and what they fork carry it too). The run stops them all on SIGTERM/SIGINT,
and the next run stops what a killed run left behind; a process without the marker is never ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

POLL_S = 0.1
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
# "<pid>:<start ticks>:<checkout>" of the run a process belongs to: the PID and start time name the
# owner even after its PID is recycled; the checkout keeps other clones' runs out of our hands.
RUN_OWNER = "PLAYBOOKS_RUN_OWNER"
CHECKOUT = str(Path(__file__).resolve().parents[1])


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


def _start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks after boot: with the PID, one process for good."""
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _run_owner(pid: int) -> str | None:
    """The RUN_OWNER `pid` was started with; None: it has none, is gone or is not ours to read."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()  # empty for a zombie
    except OSError:
        return None
    prefix = f"{RUN_OWNER}=".encode()
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry.removeprefix(prefix).decode(errors="replace")
    return None


def _living() -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields) of every process but this one and zombies."""
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            fields = _stat(int(entry.name))
            if fields and fields[0] not in ("Z", "X"):
                yield int(entry.name), fields


def claim_run() -> str:
    """Make this process the owner of whatever it starts from now on; returns its RUN_OWNER."""
    token = f"{os.getpid()}:{_start_ticks(os.getpid())}:{CHECKOUT}"
    os.environ[RUN_OWNER] = token  # inherited by every child, whatever starts it
    return token


def _left_behind(token: str) -> bool:
    """A run of this checkout whose owner is gone (or its PID now names another process)."""
    pid, ticks, checkout = [*token.split(":", 2), "", ""][:3]
    if checkout != CHECKOUT or not pid.isdigit():
        return False
    return not (alive(int(pid)) and str(_start_ticks(int(pid))) == ticks)


def _terminate(belongs: Callable[[int, list[str]], bool], grace: float) -> list[int]:
    """SIGTERM every process that `belongs`, SIGKILL what is left after `grace`; returns its PIDs.

    A process leading its group gets the group's signal: a part and what it forked (e.g. Java).
    Processes are looked up again each round: one may start another before it goes.
    """
    seen: list[int] = []
    groups: set[str] = set()  # led by one of ours; a member may lack the marker (env cleared)
    ours_group = str(os.getpgid(0))  # a leftover may have started this very process

    def members() -> list[tuple[int, list[str]]]:
        return [(pid, f) for pid, f in _living() if f[2] in groups or belongs(pid, f)]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        signalled: set[int] = set()
        deadline = time.monotonic() + grace
        while current := members():
            for pid, fields in current:
                if pid in signalled:
                    continue
                signalled.add(pid)
                if pid not in seen:
                    seen.append(pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if fields[2] == str(pid) and fields[2] != ours_group:
                        groups.add(fields[2])
                        os.killpg(pid, sig)
                    else:
                        os.kill(pid, sig)
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        else:
            return seen  # all gone
    return seen


def stop_run(token: str, grace: float = STOP_GRACE_S) -> list[int]:
    """Stop every process of this run: those carrying `token`, and this process's children."""
    parent = str(os.getpid())
    return _terminate(lambda pid, f: f[1] == parent or _run_owner(pid) == token, grace)


def reap_dead_runs(grace: float = STOP_GRACE_S) -> list[int]:
    """Stop what runs of this checkout left behind when killed; a live run's processes stay."""

    def left_behind(pid: int, fields: list[str]) -> bool:
        del fields
        token = _run_owner(pid)
        return token is not None and _left_behind(token)

    return _terminate(left_behind, grace)
