"""Router spans for apps with a telemetry drain (the route's `spruce-telemetry` feature):
the dyno gets the router's traceparent, the span sink gets one record per exchange, H codes
included; apps without the feature keep their headers and send no record. In-process router
(workers=0) and one worker process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from spruce.events import PrintLogSink
from spruce.router import trace
from spruce.router.supervisor import RouterSupervisor

from .conftest import FAST, app_entry

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def _until(fn: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


@pytest.mark.parametrize("workers", [0, 1])
async def test_spans_for_traced_apps_only(backends, tmp_path, workers: int) -> None:  # type: ignore[no-untyped-def]
    b = backends("web.1")
    records: list[list[Any]] = []
    sup = RouterSupervisor(
        [("127.0.0.1", 0)],
        [],
        workers,
        PrintLogSink(),
        None,
        FAST,
        tmp_path,
        span_sink=records.extend,
        snapshot={
            "apps": {
                "t": app_entry("t", ["t.localhost"], [b.dyno()], features=["spruce-telemetry"]),
                "p": app_entry("p", ["p.localhost"], [b.dyno()]),
                "down": app_entry(
                    "down", ["down.localhost"], [], web_quantity=0, features=["spruce-telemetry"]
                ),
            }
        },
    )
    await sup.start()
    try:
        url = f"http://127.0.0.1:{sup.http_addresses[0][1]}/echo"
        async with httpx.AsyncClient() as c:
            r = await c.get(url, headers={"Host": "t.localhost", "traceparent": CALLER})
            sent = {k.lower(): v for k, v in r.json()["headers"]}
            _, trace_id, span_id, _ = sent["traceparent"].split("-")
            assert trace_id == CALLER.split("-")[1] and span_id != CALLER.split("-")[2]
            # an app without a drain: the caller's header as it came, and no record
            r = await c.get(url, headers={"Host": "p.localhost", "traceparent": CALLER})
            assert {k.lower(): v for k, v in r.json()["headers"]}["traceparent"] == CALLER
            r = await c.get(url, headers={"Host": "down.localhost"})
            assert r.status_code == 503  # H14: no web dynos
        got = await _until(lambda: len(records) >= 2 and records)
        assert {rec[trace.R_APP] for rec in got} == {"t", "down"}
        ok = next(rec for rec in got if rec[trace.R_APP] == "t")
        assert ok[trace.R_SPAN] == span_id and ok[trace.R_PARENT] == CALLER.split("-")[2]
        assert ok[trace.R_STATUS] == 200 and ok[trace.R_DYNO] == "web.1"
        assert ok[trace.R_END] >= ok[trace.R_START]
        h14 = next(rec for rec in got if rec[trace.R_APP] == "down")
        assert h14[trace.R_CODE] == "H14" and h14[trace.R_PARENT] == ""
    finally:
        await sup.stop()
