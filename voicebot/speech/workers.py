"""The engines' worker threads: a thread pool that knows how many jobs it holds.

Models run on threads their engine owns (the event loop never blocks on them); the depth of
those queues is what a burst of callers waits on, so it is exported (``/metrics``, ``/health``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Worker(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose ``pending`` counts jobs submitted and not yet finished."""

    def __init__(self, threads: int, name: str) -> None:
        super().__init__(max_workers=threads, thread_name_prefix=name)
        self.name = name
        self._count_lock = threading.Lock()
        self._pending = 0
        self._closed = False

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def alive(self) -> bool:
        return not self._closed

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._count_lock:
            self._pending += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: Future[Any] | None) -> None:
        with self._count_lock:
            self._pending -= 1


def worker_status(worker: Worker | None, loaded: bool) -> dict[str, Any]:
    """What /health says of one engine."""
    return {
        "loaded": loaded,
        "workers_alive": worker is not None and worker.alive,
        "queued": worker.pending if worker is not None else 0,
    }
