"""Where the local stack's CPU goes: sampled profiles of its processes during a load.

The scale issue asks for the profile that shows what bounds a row. Two samplers, each skipped
with a note when its tool is missing (py-spy comes with `shared[bench]`; jstack with a JDK):

- py-spy (`--gil`: only samples that hold the GIL, so Python CPU, not waiting) on every function
  process and the router. A sample counts for the package of its innermost frame that has one,
  so a lock taken inside gRPC is gRPC's time, and a dataclass built by our code is ours.
- jstack on the Firestore emulator's JVM, a dump then a 0.5 s pause: each busy request thread
  under the gRPC method it serves, and the emulator's own innermost frame (which of its steps the
  time is in). Each dump pauses the JVM at a safepoint, one reason the profiled burst's own
  latencies are not kept.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# A frame's full file name → whose CPU it is (first match wins).
_PACKAGES = [
    ("our code", ("/playbook_core/", "/functions/main.py", "/emulators/")),
    ("Google client libraries (google-cloud-*, api_core, auth, protobuf, proto-plus)", ("-packages/google/", "-packages/proto/")),
    ("gRPC", ("-packages/grpc/",)),
    ("HTTP serving (werkzeug, Flask)", ("/werkzeug/", "/flask/", "/functions_framework/", "/http/server.py", "/socketserver.py")),
    ("HTTP client (httpx)", ("/httpx/", "/httpcore/", "/h11/", "/http/client.py")),
    ("CloudEvents", ("-packages/cloudevents/",)),
    ("pydantic", ("-packages/pydantic",)),
    ("logging", ("/logging/",)),
    ("json", ("/json/",)),
]  # fmt: skip
_IMPORT_ROOT = re.compile(r"^.*(?:-packages/|/lib/python3\.\d+/|/src/)")
# The gRPC method a request thread serves (`FirestoreV1GrpcAdapter$1.runQuery(...)`).
_GRPC_METHOD = re.compile(r"FirestoreV1GrpcAdapter\$\d+\.(\w+)\(")
_PY_SPY_HZ = 50
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


def processes() -> dict[int, tuple[int, float, list[str]]]:
    """pid → (parent pid, CPU seconds used, command line) of every process we can read."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            found[int(entry.name)] = (
                int(fields[1]),
                (int(fields[11]) + int(fields[12])) / tick,
                cmdline,
            )
    return found


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def _targets(stack: dict[str, Any]) -> dict[int, str]:
    """The router and each function process, by pid."""
    table = processes()
    gateway = stack.get("pids", {}).get("gateway")
    found = {gateway: "router"} if gateway in table else {}
    for pid, (parent, _, cmdline) in table.items():
        if parent == gateway and "--function" in cmdline:
            found[pid] = cmdline[cmdline.index("--function") + 1]
    return found


def category(file: str) -> str | None:
    return next((name for name, marks in _PACKAGES if any(m in file for m in marks)), None)


def _owner(path: list[str]) -> str:
    """The package of the innermost frame that has one: a lock taken by gRPC is gRPC's CPU."""
    for frame in reversed(path):
        match = _FRAME.match(frame)
        owner = category(match["file"] if match else frame)
        if owner is not None:
            return owner
    return "other (thread start-up, stdlib)"


def summarise_python(raw: str, top: int = 8) -> dict[str, Any]:
    """py-spy's raw output (`frame;frame;… count` lines) → samples by package and top frames."""
    by_package: collections.Counter[str] = collections.Counter()
    frames: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        path = stack.split(";")
        by_package[_owner(path)] += int(count)
        match = _FRAME.match(path[-1])
        frames[
            f"{match['name']} ({_IMPORT_ROOT.sub('', match['file'])})" if match else path[-1]
        ] += int(count)
    return {
        "samples": sum(by_package.values()),
        "by_package": dict(by_package.most_common()),
        "top_frames": dict(frames.most_common(top)),
    }


def _jstack_busy(jstack: str, pid: int) -> list[list[str]] | None:
    """The emulator's runnable request threads, as frame lists (innermost first); None: no dump."""
    command = [jstack, str(pid)]
    try:
        done = subprocess.run(  # noqa: S603 - a JDK tool on our own emulator's pid
            command, capture_output=True, text=True, errors="replace", timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    out = done.stdout
    busy = []
    for block in out.split("\n\n"):
        if "java.lang.Thread.State: RUNNABLE" not in block:
            continue
        frames = [ln.strip()[3:] for ln in block.splitlines() if ln.strip().startswith("at ")]
        idle = frames and frames[0].startswith(("sun.nio.ch", "io.netty.channel.epoll.Native"))
        if frames and not idle and any("google" in f for f in frames):
            busy.append(frames)
    return busy


def summarise_java(samples: list[list[str]], dumps: int, failed: int) -> dict[str, Any]:
    if failed and not dumps:
        return {"skipped": f"jstack could not dump the emulator ({failed} attempts)"}
    by_method: collections.Counter[str] = collections.Counter()
    for frames in samples:
        methods = (m[1] for f in frames if (m := _GRPC_METHOD.search(f)))
        triggers = any("FunctionsEmulatorEventPublisher" in f for f in frames)
        by_method[next(methods, "sending trigger events" if triggers else "other")] += 1
    indexing = sum(1 for frames in samples if any("materializeIndexTable" in f for f in frames))
    # The emulator's own innermost frame: which of its steps the time is in.
    own = collections.Counter(
        re.sub(r"\(.*", "", next(f for f in frames if ".datastore." in f))
        for frames in samples
        if any(".datastore." in f for f in frames)
    )
    return {
        "dumps": dumps,
        "failed_dumps": failed,
        "busy_samples": len(samples),
        "by_grpc_method": dict(by_method.most_common()),
        "building_a_query_index_table": indexing,
        "top_emulator_frames": dict(own.most_common(5)),
    }


def _sample_java(
    jstack: str, pid: int, seconds: int, stop: threading.Event, into: dict[str, Any]
) -> None:
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        busy = _jstack_busy(jstack, pid)
        if busy is None:
            into["failed"] += 1
        else:
            into["dumps"] += 1
            into["samples"].extend(busy)
        stop.wait(0.5)


def _record(
    spy: str, pid: int, name: str, scratch: Path, seconds: int
) -> tuple[str, subprocess.Popen[bytes], Path]:
    out = scratch / f"{name}.txt"
    command = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(_PY_SPY_HZ), "--gil",
               "--full-filenames", "--nonblocking", "-f", "raw", "-o", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - py-spy on our own pids
    return name, process, out


def _finish(recorder: tuple[str, subprocess.Popen[bytes], Path], seconds: int) -> dict[str, Any]:
    _, process, out = recorder
    try:
        _, err = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    if out.exists():
        return summarise_python(out.read_text(errors="replace"))
    return {"skipped": err.decode(errors="replace")[-200:].strip()}  # most often: no ptrace


@contextmanager
def profiled(stack: dict[str, Any], seconds: int) -> Iterator[dict[str, Any]]:
    """Sample the stack for `seconds` from entry (or to the block's end); fills the dict at exit."""
    result: dict[str, Any] = {"seconds": seconds, "python": {}, "firestore_emulator": {}}
    recorders: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    java: dict[str, Any] = {"samples": [], "dumps": 0, "failed": 0}
    stop, sampler = threading.Event(), None
    scratch = Path(tempfile.mkdtemp(prefix="profile-"))
    try:
        spy = py_spy()
        if spy is None:
            result["python"] = {
                "skipped": "py-spy is not installed: pip install -e 'shared[bench]'"
            }
        else:
            for pid, name in _targets(stack).items():  # appended one by one: all reaped below
                recorders.append(_record(spy, pid, name, scratch, seconds))
        jstack, emulator = shutil.which("jstack"), stack.get("pids", {}).get("firestore")
        if jstack and emulator:
            sampler = threading.Thread(
                target=_sample_java, args=(jstack, emulator, seconds, stop, java), daemon=True
            )
            sampler.start()
        else:
            result["firestore_emulator"] = {"skipped": "no jstack (a JDK) or no Firestore emulator"}
        yield result
    finally:
        stop.set()
        for recorder in recorders:
            result["python"][recorder[0]] = _finish(recorder, seconds)
        if sampler is not None:
            sampler.join(timeout=30)
            result["firestore_emulator"] = summarise_java(
                java["samples"], java["dumps"], java["failed"]
            )
        shutil.rmtree(scratch, ignore_errors=True)


def print_profile(profile: dict[str, Any]) -> None:
    python = profile["python"]
    if "skipped" in python:
        print(f"python profile skipped: {python['skipped']}")
    else:
        print(f"\nPython CPU by process and package (py-spy --gil over {profile['seconds']} s):")
        for name, part in sorted(python.items(), key=lambda kv: -kv[1].get("samples", 0)):
            if "skipped" in part:
                print(f"  {name:<22} skipped: {part['skipped']}")
                continue
            if not part["samples"]:
                continue
            total = part["samples"]
            shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in part["by_package"].items())
            print(f"  {name:<22} {total / _PY_SPY_HZ:5.1f} CPU s: {shares}")
    java = profile["firestore_emulator"]
    if "skipped" in java:
        print(f"firestore emulator profile skipped: {java['skipped']}")
    else:
        methods = ", ".join(f"{k} {v}" for k, v in java["by_grpc_method"].items())
        print(
            f"Firestore emulator busy threads (jstack): {java['busy_samples']} samples: {methods}; "
            f"building a query's index table: {java['building_a_query_index_table']}"
        )
        for frame, count in java["top_emulator_frames"].items():
            print(f"  {count:>5}  {frame}")
