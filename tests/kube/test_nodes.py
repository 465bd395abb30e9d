"""Losing a node: its dynos leave the routing table and come back on the other node."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from spruce.kube import Cluster

from .conftest import Dynos, make_slug, runtime, until

pytestmark = pytest.mark.slow


@pytest.fixture
def kube_settings() -> dict[str, object]:
    return {"node_lost_after": 5}


async def test_a_lost_node_s_dynos_are_rescheduled(
    dynos: Dynos, kube_cluster: Cluster, tmp_path: Path
) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path), formation={"web": (2, "basic")})
    await b.converge(app)
    await until(lambda: len(b.web_endpoints(app.app_id)) == 2, what="two web dynos")
    node_of = {p.dyno: p.node for p in b._pods.values() if not p.deleting}
    assert len(set(node_of.values())) == 2, node_of
    lost = [i for i, n in enumerate(kube_cluster.nodes) if n.name == node_of["web.1"]][0]
    failed, served = [], 0
    stop = asyncio.Event()

    async def load() -> None:
        """Like the router: each request to a dyno from the table, one retry on another."""
        nonlocal served
        async with httpx.AsyncClient(timeout=3) as client:
            n = 0
            while not stop.is_set():
                eps = b.web_endpoints(app.app_id)
                n += 1
                for attempt in range(2):
                    if not eps:
                        failed.append("no dyno")
                        break
                    ep = eps[(n + attempt) % len(eps)]
                    try:
                        await client.get(f"http://127.0.0.1:{ep.port}/")
                        served += 1
                        break
                    except httpx.HTTPError as e:
                        if attempt == 1 or len(eps) == 1:
                            failed.append(repr(e))
                            break
                await asyncio.sleep(0.05)

    task = asyncio.create_task(load())
    try:
        t0 = time.monotonic()
        await asyncio.to_thread(kube_cluster.stop_node, lost)
        await until(
            lambda: {e.dyno_name for e in b.web_endpoints(app.app_id)} == {"web.2"},
            120,
            "the lost dyno out of the table",
        )
        out_after = time.monotonic() - t0
        await until(
            lambda: {e.dyno_name for e in b.web_endpoints(app.app_id)} == {"web.1", "web.2"},
            120,
            "web.1 back on the other node",
        )
        back_after = time.monotonic() - t0
        stop.set()
        await task
        node_now = {p.dyno: p.node for p in b._pods.values() if not p.deleting}
        assert node_now["web.1"] == node_now["web.2"] != kube_cluster.nodes[lost].name
        print(f"\nnode loss: out of the table in {out_after:.1f} s, rescheduled and routable "
              f"in {back_after:.1f} s; {served} requests served, {len(failed)} failed")  # fmt: skip
        assert failed == [] and served > 0
    finally:
        stop.set()
        await asyncio.to_thread(kube_cluster.start_node, lost)
