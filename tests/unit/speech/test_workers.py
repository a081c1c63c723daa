"""The engines' worker pool counts what it holds (the queue depth /metrics exports)."""

from __future__ import annotations

import asyncio
import threading

from voicebot.speech.workers import Worker, worker_status


async def test_pending_counts_queued_and_running_jobs_until_they_finish() -> None:
    worker = Worker(1, "test")
    release = threading.Event()
    loop = asyncio.get_running_loop()
    jobs = [loop.run_in_executor(worker, release.wait, 5.0) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert worker.pending == 3  # one running, two waiting
    release.set()
    await asyncio.gather(*jobs)
    assert worker.pending == 0
    assert worker_status(worker, loaded=True) == {"loaded": True, "workers_alive": True,
                                                  "queued": 0}  # fmt: skip
    worker.shutdown()
    assert not worker.alive
    assert worker_status(None, loaded=False)["workers_alive"] is False
