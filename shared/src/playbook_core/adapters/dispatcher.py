"""Due-time scheduling: one timer thread that sleeps until the earliest entry is due.

`DueTimer` waits on its owner's Condition until the earliest entry is due (a push or close() wakes
it at once, so nothing polls); the in-process bus and queue use it through `Dispatcher`, the
Cloud Tasks and Scheduler emulators directly. `Dispatcher` runs jobs on a pool so one slow push
endpoint does not hold up the rest; jobs that fail reschedule themselves before they return,
which keeps drain() from seeing a gap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

Job = Callable[[], None]
_log = logging.getLogger(__name__)


class DueTimer:
    """One thread that sleeps until the earliest due entry, then hands it to `on_due`.

    It waits on the owner's Condition, so the owner's state and the entries share one lock.
    `on_due` runs with that lock held and must not block (push work to a pool instead).
    """

    def __init__(
        self,
        cond: threading.Condition,
        on_due: Callable[[Any], None],
        clock: Callable[[], float],
        name: str,
    ) -> None:
        self._cond, self._on_due, self._clock = cond, on_due, clock
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()  # ties keep push order and never compare items
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def push(self, due: float, item: Any) -> None:
        """Hand `item` to `on_due` at `due` (by `clock`), or as soon after as free. Lock held."""
        if self._closed:
            return
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._cond.notify_all()

    def due_by(self, moment: float) -> bool:
        """Whether an entry falls due at or before `moment`. Lock held."""
        return bool(self._heap) and self._heap[0][0] <= moment

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the thread; entries not yet due are dropped."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                item = heapq.heappop(self._heap)[2]
                try:
                    self._on_due(item)
                except Exception:  # noqa: BLE001 - one bad entry must not stop every later one
                    _log.exception("%s: handling a due entry failed", self._thread.name)


class Dispatcher:
    """Jobs run on a pool at their due time, with drain() for deterministic tests."""

    def __init__(self, name: str, workers: int = 8) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False
        # Daemon threads, at most `workers` pushing at once: a push stuck on an endpoint that
        # accepted and never answered must not hold the process at exit (a pool's threads would).
        self._slots = threading.BoundedSemaphore(workers)
        self._timer = DueTimer(self._cond, self._start, time.time, f"{name}-timer")
        self._timer.start()

    def schedule(self, due: float, job: Job) -> None:
        """Run `job` at wall-clock time `due` (seconds since the epoch) or as soon after as free."""
        with self._cond:
            self._timer.push(due, job)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until no job runs and none is due within `timeout` seconds from now.

        Retries that fall due inside the window are awaited too; work scheduled beyond it (a task
        an hour ahead) is left waiting. TimeoutError when a job still runs at the deadline.
        """
        deadline = time.time() + timeout
        with self._cond:
            while self._running or self._timer.due_by(deadline):
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise TimeoutError(f"still dispatching after {timeout} s")
                self._cond.wait(remaining)

    def close(self) -> None:
        """Stop: jobs not started yet are dropped; one already pushing ends with its HTTP client."""
        with self._cond:
            self._closed = True
        self._timer.close()

    def _start(self, job: Job) -> None:
        self._running += 1
        threading.Thread(
            target=self._run, args=(job,), name=f"{self._name}-push", daemon=True
        ).start()

    def _run(self, job: Job) -> None:
        try:
            with self._slots:
                if not self._closed:
                    job()
        except Exception:  # noqa: BLE001 - a worker thread would swallow it and hide the bug
            _log.exception("dispatching a job failed")
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
