"""RouterSupervisor with real worker processes: table feed, log lines, activity, detach."""

from __future__ import annotations

import asyncio
import time

import httpx

from spruce.events import PrintLogSink
from spruce.router.supervisor import ROUTER_NICE, RouterSupervisor

from .conftest import FAST, app_entry


async def _poll(fn, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
            if last:
                return last
        except httpx.HTTPError as e:
            last = e
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met: {last!r}")


async def test_two_workers_table_updates_logs_and_detach(backends, tmp_path):
    b1 = backends("web.1")
    b2 = backends("web.2")
    sink = PrintLogSink()
    activity: dict[str, int] = {}
    wakes: list[str] = []

    def on_activity(counts: dict[str, int]) -> None:
        for k, v in counts.items():
            activity[k] = activity.get(k, 0) + v

    sup = RouterSupervisor(
        [("127.0.0.1", 0), ("::1", 0)],
        [],
        2,
        sink,
        wakes.append,
        FAST,
        tmp_path,
        on_activity=on_activity,
        activity_interval=0.1,
        snapshot={"apps": {"a1": app_entry("a1", ["one.localhost"], [b1.dyno()])}},
    )
    await sup.start()
    try:
        assert len(sup.worker_pids) == 2
        port = sup.http_addresses[0][1]
        port6 = sup.http_addresses[1][1]
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/name", headers={"Host": "one.localhost"})
            assert r.status_code == 200 and r.text == "web.1"
            r = await c.get(f"http://[::1]:{port6}/name", headers={"Host": "one.localhost"})
            assert r.text == "web.1"
            # an added app reaches every worker: many fresh connections spread over both
            sup.upsert_app(app_entry("a2", ["two.localhost"], [b2.dyno()]))

            async def all_see_a2() -> bool:
                for _ in range(20):
                    async with httpx.AsyncClient() as fresh:
                        r = await fresh.get(
                            f"http://127.0.0.1:{port}/name", headers={"Host": "two.localhost"}
                        )
                    if r.text != "web.2":
                        return False
                return True

            await _poll(all_see_a2)
            sup.remove_app("a1")

            async def gone() -> bool:
                for _ in range(10):
                    async with httpx.AsyncClient() as fresh:
                        r = await fresh.get(
                            f"http://127.0.0.1:{port}/", headers={"Host": "one.localhost"}
                        )
                    if r.status_code != 404:
                        return False
                return True

            await _poll(gone)
        lines = [m for a, s, p, m in sink.lines if a == "a1" and s == "heroku" and p == "router"]
        assert lines and lines[0].startswith('at=info method=GET path="/name" host=one.localhost')
        await _poll(lambda: _true(activity.get("a2", 0) >= 20))

        # the control plane goes away: workers keep serving their last table
        sup.detach()
        async with httpx.AsyncClient() as c:
            for _ in range(10):
                r = await c.get(f"http://127.0.0.1:{port}/name", headers={"Host": "two.localhost"})
                assert r.text == "web.2"
        # it comes back: workers reconnect, take the current table (with an update)
        await sup.reattach()
        sup.upsert_app(app_entry("a2", ["two.localhost"], [b1.dyno()]))

        async def moved() -> bool:
            for _ in range(10):
                async with httpx.AsyncClient() as fresh:
                    r = await fresh.get(
                        f"http://127.0.0.1:{port}/name", headers={"Host": "two.localhost"}
                    )
                if r.text != "web.1":
                    return False
            return True

        await _poll(moved)
    finally:
        await sup.stop()
    assert sup.worker_pids == []


async def _true(v: bool) -> bool:
    return v


async def test_inprocess_mode_and_bad_table(backends):
    import pytest

    b1 = backends("web.1")
    sink = PrintLogSink()
    with pytest.raises(ValueError):
        RouterSupervisor(
            [("127.0.0.1", 0)], [], 0, sink, snapshot={"apps": {"x": {"dynos": [{"name": "w"}]}}}
        )
    sup = RouterSupervisor([("127.0.0.1", 0)], [], 0, sink, timers=FAST)
    await sup.start()
    try:
        sup.replace_table({"apps": {"a1": app_entry("a1", ["one.localhost"], [b1.dyno()])}})
        async with httpx.AsyncClient() as c:
            r = await c.get(
                f"http://127.0.0.1:{sup.http_addresses[0][1]}/", headers={"Host": "one.localhost"}
            )
        assert r.status_code == 200
        assert sink.lines[-1][:3] == ("a1", "heroku", "router")
    finally:
        await sup.stop()


async def test_dead_worker_is_restarted(backends, tmp_path):
    import os
    import signal

    b1 = backends("web.1")
    sup = RouterSupervisor(
        [("127.0.0.1", 0)],
        [],
        1,
        PrintLogSink(),
        timers=FAST,
        run_dir=tmp_path,
        snapshot={"apps": {"a1": app_entry("a1", ["one.localhost"], [b1.dyno()])}},
    )
    await sup.start()
    try:
        (pid,) = sup.worker_pids
        os.kill(pid, signal.SIGKILL)
        port = sup.http_addresses[0][1]

        async def serving_again() -> bool:
            if not sup.worker_pids or sup.worker_pids[0] == pid:
                return False
            async with httpx.AsyncClient() as c:
                r = await c.get(f"http://127.0.0.1:{port}/name", headers={"Host": "one.localhost"})
            return r.text == "web.1"

        await _poll(serving_again)
        # Workers, restarted ones too, outrank the control plane and dynos when root.
        if os.geteuid() == 0:
            assert os.getpriority(os.PRIO_PROCESS, sup.worker_pids[0]) == ROUTER_NICE < 0
    finally:
        await sup.stop()


async def test_new_control_plane_adopts_running_workers(backends, tmp_path):
    b1, b2 = backends("web.1"), backends("web.2")
    snap = {"apps": {"a1": app_entry("a1", ["one.localhost"], [b1.dyno()])}}
    old = RouterSupervisor(
        [("127.0.0.1", 0)], [], 1, PrintLogSink(), timers=FAST, run_dir=tmp_path, snapshot=snap
    )
    await old.start()
    (old_pid,) = old.worker_pids
    port = old.http_addresses[0][1]
    old.detach()  # the control plane dies without stopping its workers
    sink = PrintLogSink()
    new = RouterSupervisor(
        [("127.0.0.1", port)], [], 1, sink, timers=FAST, run_dir=tmp_path, snapshot=snap
    )
    await new.start()
    try:

        async def both_connected() -> bool:
            return len(new._conns) == 2 and old_pid in new._conns

        await _poll(both_connected)
        new.upsert_app(app_entry("a1", ["one.localhost"], [b2.dyno()]))

        async def all_moved() -> bool:
            for _ in range(20):
                async with httpx.AsyncClient() as fresh:
                    r = await fresh.get(
                        f"http://127.0.0.1:{port}/name", headers={"Host": "one.localhost"}
                    )
                if r.text != "web.2":
                    return False
            return True

        await _poll(all_moved)
    finally:
        await new.stop()
    # the adopted worker was told to stop as well
    async with asyncio.timeout(10):
        await old._procs[0].wait()
    await old.stop()
