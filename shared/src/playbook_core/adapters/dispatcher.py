"""Due-time scheduling for the in-process bus and queue: one timer thread, a pool, drain().

The timer waits on a Condition until the earliest entry is due (a push or close() wakes it at
once, so nothing polls); jobs run on a pool so one slow push endpoint does not hold up the rest.
Jobs that fail reschedule themselves before they return, which keeps drain() from seeing a gap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

Job = Callable[[], None]
_log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, name: str, workers: int = 8) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()  # ties keep submission order and never compare jobs
        self._running = 0
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-push")
        self._thread = threading.Thread(target=self._loop, name=f"{name}-timer", daemon=True)
        self._thread.start()

    def schedule(self, due: float, job: Job) -> None:
        """Run `job` at wall-clock time `due` (seconds since the epoch) or as soon after as free."""
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (due, next(self._seq), job))
            self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until no job runs and none is due within `timeout` seconds from now.

        Retries that fall due inside the window are awaited too; work scheduled beyond it (a task
        an hour ahead) is left waiting. TimeoutError when a job still runs at the deadline.
        """
        deadline = time.time() + timeout
        with self._cond:
            while self._running or (self._heap and self._heap[0][0] <= deadline):
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise TimeoutError(f"still dispatching after {timeout} s")
                self._cond.wait(remaining)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join()
        # A push blocked on a slow endpoint ends when its owner closes the HTTP client.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.time()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                job = heapq.heappop(self._heap)[2]
                self._running += 1
                self._pool.submit(self._run, job)

    def _run(self, job: Job) -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - a pool thread would swallow it and hide the bug
            _log.exception("dispatching a job failed")
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
