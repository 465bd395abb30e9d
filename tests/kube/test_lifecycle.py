"""Preboot as a surge rollout, and a control-plane restart that adopts running dynos, on
the real cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from .conftest import Dynos, make_slug, runtime, until

pytestmark = pytest.mark.slow


async def test_preboot_switches_releases_without_a_failed_request(
    dynos: Dynos, tmp_path: Path
) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path), features={"preboot"}, config={"GREETING": "v1"})
    await b.converge(app)
    await until(lambda: b.web_endpoints(app.app_id), what="web.1 routable")
    seen: list[str] = []
    failed: list[str] = []
    stop = asyncio.Event()

    async def load() -> None:
        """A router's view: each request goes to a dyno the table has at that moment."""
        async with httpx.AsyncClient(timeout=5) as client:
            while not stop.is_set():
                eps = b.web_endpoints(app.app_id)
                if not eps:
                    failed.append("no dyno in the table")
                    await asyncio.sleep(0.05)
                    continue
                try:
                    resp = await client.get(f"http://127.0.0.1:{eps[0].port}/")
                    seen.append(resp.text.split()[0])
                except httpx.HTTPError as e:
                    failed.append(repr(e))
                await asyncio.sleep(0.02)

    task = asyncio.create_task(load())
    await until(lambda: len(seen) > 5, what="traffic")
    app.config = {"GREETING": "v2"}
    app.release_id, app.release_version = "rel-2", 2
    await b.converge(app)
    await until(lambda: seen[-5:] == ["v2"] * 5, 120, "the new release serving")
    await until(lambda: len([p for p in b._pods.values() if p.app_id == app.app_id]) == 1, 120)
    stop.set()
    await task
    assert failed == [] and seen.count("v1") > 0 and seen.count("v2") >= 5
    assert seen == sorted(seen)  # never back to v1 once v2 served


async def test_a_restarted_control_plane_adopts_running_dynos(dynos: Dynos, tmp_path: Path) -> None:
    app = runtime(make_slug(tmp_path), formation={"web": (1, "eco"), "worker": (1, "eco")})
    await dynos.backend.converge(app)
    await until(lambda: dynos.backend.web_endpoints(app.app_id), what="web.1 routable")
    await until(lambda: {d.state for d in dynos.backend.dynos(app.app_id)} == {"up"})
    before = {d.name: d.id for d in dynos.backend.dynos(app.app_id)}
    (ep,) = dynos.backend.web_endpoints(app.app_id)
    await dynos.backend.shutdown()

    dynos.backend = again = dynos.new_backend()
    await again.start()
    assert {d.name: d.id for d in again.dynos(app.app_id)} == before
    assert again.web_endpoints(app.app_id) == [ep]
    await again.converge(app)  # the platform converges every app after a restart
    await asyncio.sleep(3)
    assert {d.name: (d.id, d.state) for d in again.dynos(app.app_id)} == {
        name: (uid, "up") for name, uid in before.items()
    }
    assert again.web_endpoints(app.app_id) == [ep]
