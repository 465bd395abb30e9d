"""A drain worker is stopped even when its first cancellation is swallowed (Python 3.11's
asyncio.wait_for can do that when the awaited write completes as the cancel lands)."""

from __future__ import annotations

import asyncio
import time

from spruce.logs import DrainSpec, LogRouterConfig
from spruce.logs.drains.base import DrainWorker


class Swallowing(DrainWorker):
    """Its connection swallows one cancellation, then waits for lines for ever."""

    swallowed = 0

    async def run_connection(self) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.swallowed += 1
        await asyncio.Event().wait()


async def test_aclose_ends_a_worker_that_swallowed_its_cancellation() -> None:
    spec = DrainSpec("d-1", "syslog://127.0.0.1:9", "d.1", "demo")
    worker = Swallowing("app", spec, LogRouterConfig(), None, time.time)
    worker.start()
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    # (aclose used to await the worker for ever; wait_for's own cancel then hid that)
    await asyncio.wait_for(worker.aclose(), 5)
    assert time.monotonic() - t0 < 4, "aclose waited for a worker that never ends"
    assert worker.swallowed == 1 and worker.state == "stopped"
