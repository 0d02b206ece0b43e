"""A test run stops every process it started when signalled, and the next run stops what a killed
run left behind (`emulators/processes.py`, `tests/conftest.py`), never anything else.

Real processes throughout, cheap ones: the stand-ins server started the way the stack starts its
parts (`processes.launch`), `sh` forking a child that drops the run's marker as a JVM's child
might, and `sleep`.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulators import processes
from playbook_core.testing import eventually

ROOT = Path(__file__).parents[2]

# The inner test run: one process of each kind the suite starts, then it waits to be signalled.
HOLD = """
import json, os, subprocess, sys, time
from pathlib import Path

from emulators import processes

OUT = Path(os.environ["CLEANUP_PROBE_DIR"])
DETACH = (
    "import sys; from pathlib import Path; from emulators import processes; "
    "p, _ = processes.launch('standins', processes.python_module('emulators.standins'), "
    "Path(sys.argv[1]), cwd=Path(processes.CHECKOUT)); print(p.pid)"
)


def test_hold():
    # Started here in its own session, as the session's emulator fixture starts Java; its child
    # drops the environment, as a forked child may.
    forker, _ = processes.launch(
        "forker", ["sh", "-c", f"env -i sleep 600 & echo $! > {OUT}/forked; wait"], OUT
    )
    # Started by a launcher that exits at once, as `python -m emulators up` leaves a stack.
    detached = subprocess.run(
        [sys.executable, "-c", DETACH, str(OUT)], capture_output=True, text=True, check=True
    ).stdout
    # In the run's own process group, as a test's Popen of `python -m emulators dev`.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    deadline = time.monotonic() + 30
    while not (
        (OUT / "forked").is_file()
        and (OUT / "forked").read_text().strip()
        and processes.first_line(OUT / "standins.log", "{", strip=False)
    ):
        assert time.monotonic() < deadline, "the children did not come up"
        time.sleep(0.1)
    pids = [forker.pid, int((OUT / "forked").read_text()), int(detached), child.pid]
    (OUT / "pids.json").write_text(json.dumps(pids))
    time.sleep(600)
"""


def start_ticks(pid):
    return processes._start_ticks(pid)


def kill_if_same(recorded):
    """Clean up after a failed check: only a recorded process that is still the same one."""
    for pid, ticks in recorded.items():
        if processes.alive(pid) and start_ticks(pid) == ticks:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_test_run_stops_every_process_it_started_and_dies_of_the_signal(tmp_path, sig):
    (tmp_path / "test_hold.py").write_text(HOLD)
    env = {**os.environ, "CLEANUP_PROBE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "pytest", "-c", "tests/pytest.ini", "-p", "tests.conftest",
        "-p", "no:cacheprovider", "--confcutdir", str(tmp_path), "-q", str(tmp_path / "test_hold.py"),
    ]  # fmt: skip
    recorded = {}
    with (tmp_path / "run.out").open("w") as out:
        run = subprocess.Popen(  # noqa: S603 - this interpreter running pytest on our own file
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # only the run gets the signal, not a terminal's whole group
        )  # fmt: skip
    try:
        pids = eventually(
            lambda: (
                run.poll() is None
                and (tmp_path / "pids.json").is_file()
                and json.loads((tmp_path / "pids.json").read_text())
            ),
            timeout=60,
            interval=0.1,
        )
        recorded = {pid: start_ticks(pid) for pid in pids}
        assert all(processes.alive(pid) for pid in pids)

        run.send_signal(sig)
        code = run.wait(timeout=20)

        assert code == -sig, (tmp_path / "run.out").read_text()
        eventually(lambda: not [pid for pid in pids if processes.alive(pid)], timeout=5)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        kill_if_same(recorded)


class Owner:
    """A real process whose RUN_OWNER value (pid, start time, checkout) tags others."""

    def __init__(self, checkout=processes.CHECKOUT):
        self.process = subprocess.Popen(["sleep", "600"])  # noqa: S607 - coreutils sleep on PATH
        self.token = f"{self.process.pid}:{start_ticks(self.process.pid)}:{checkout}"

    def end(self):
        self.process.kill()
        self.process.wait()


def started_by(token, command, tmp_path, name):
    """A process in its own session, tagged as `token`'s run tags everything it starts."""
    env = {k: v for k, v in os.environ.items() if k != processes.RUN_OWNER}
    if token is not None:
        env[processes.RUN_OWNER] = token
    process, _ = processes.launch(name, command, tmp_path, env)
    return process


def test_the_next_run_stops_what_a_killed_run_left_and_nothing_else(tmp_path):
    live, killed, elsewhere = Owner(), Owner(), Owner(checkout="/another/checkout")
    killed.end()  # a run killed with SIGKILL: its handler never ran
    elsewhere.end()
    pid, ticks, checkout = live.token.split(":", 2)
    recycled = f"{pid}:{int(ticks) - 1}:{checkout}"  # the owner's PID now names another process
    forker = ["sh", "-c", f"env -i sleep 600 & echo $! > {tmp_path}/forked; wait"]
    sleep = ["sleep", "600"]
    left = {
        "of the killed run": started_by(killed.token, forker, tmp_path, "killed"),
        "of a run whose owner's PID was reused": started_by(recycled, sleep, tmp_path, "recycled"),
    }
    kept = {
        "of a run still going": started_by(live.token, sleep, tmp_path, "live"),
        "of another checkout's killed run": started_by(elsewhere.token, sleep, tmp_path, "other"),
        "not started by a test run (a user's stack)": started_by(None, sleep, tmp_path, "user"),
    }
    everything = [*left.values(), *kept.values()]
    try:
        forked_file = tmp_path / "forked"
        forked = int(
            eventually(
                lambda: forked_file.is_file() and forked_file.read_text().strip(), timeout=10
            )
        )
        # Once `env -i` has become sleep, the fork lacks the marker: only its group is the run's.
        eventually(lambda: Path(f"/proc/{forked}/cmdline").read_bytes().startswith(b"sleep"))
        assert processes._run_owner(forked) is None

        processes.reap_dead_runs(grace=2.0)

        assert not [name for name, p in left.items() if processes.alive(p.pid)]
        assert not processes.alive(forked)
        assert [name for name, p in kept.items() if processes.alive(p.pid)] == list(kept)
        assert processes.alive(live.process.pid)
    finally:
        for process in everything:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # our unwaited child: its PID is still its
            process.wait()
        live.end()
