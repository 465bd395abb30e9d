"""The Kubernetes dyno backend on a real cluster: serving, scaling, restarts, logs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from .conftest import Dynos, make_slug, runtime, until

pytestmark = pytest.mark.slow


async def get(port: int) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{port}/")


async def test_web_dyno_serves_scales_restarts_and_logs(dynos: Dynos, tmp_path: Path) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path))
    await b.converge(app)
    await until(lambda: len(b.web_endpoints(app.app_id)) == 1, what="web.1 routable")
    (ep,) = b.web_endpoints(app.app_id)
    assert (ep.dyno_name, ep.host) == ("web.1", "127.0.0.1")
    resp = await get(ep.port)
    assert resp.status_code == 200 and resp.text == "hello from web.1\n"
    assert app.app_id in dynos.changes
    await until(lambda: f"booting web.1 on {ep.port}" in dynos.lines("web.1", "app"), 120)
    assert "State changed from starting to up" in dynos.lines("web.1", "heroku")
    (info,) = b.dynos(app.app_id)
    assert (info.name, info.type, info.state, info.size) == ("web.1", "web", "up", "Eco")

    # Scale: two dynos, one per node (anti-affinity), each on its own port.
    app.formation = {"web": (2, "eco"), "worker": (1, "basic")}
    await b.converge(app)
    await until(lambda: len(b.web_endpoints(app.app_id)) == 2, what="web.2 routable")
    ports = {e.dyno_name: e.port for e in b.web_endpoints(app.app_id)}
    assert ports["web.1"] == ep.port and ports["web.2"] != ep.port
    assert (await get(ports["web.2"])).text == "hello from web.2\n"
    web_nodes = {p.node for p in b._pods.values() if p.process_type == "web" and not p.deleting}
    assert len(web_nodes) == 2, web_nodes
    await until(lambda: "worker worker.1 up" in dynos.lines("worker.1", "app"), 120)
    states = {d.name: d.state for d in b.dynos(app.app_id)}
    assert states == {"web.1": "up", "web.2": "up", "worker.1": "up"}

    # Restart one dyno: a new pod on a new port replaces it; the other keeps serving.
    await b.restart(app.app_id, dyno_name="web.1")
    await until(
        lambda: (
            {e.dyno_name for e in b.web_endpoints(app.app_id)} == {"web.1", "web.2"}
            and dict((e.dyno_name, e.port) for e in b.web_endpoints(app.app_id))["web.1"] != ep.port
        ),
        what="web.1 back on a new port",
    )
    new_port = {e.dyno_name: e.port for e in b.web_endpoints(app.app_id)}["web.1"]
    assert (await get(new_port)).text == "hello from web.1\n"
    assert "Stopping all processes with SIGTERM" in dynos.lines("web.1", "heroku")

    # A new release with other config: rolled out, the old Secret is gone.
    app.config = {"GREETING": "bonjour"}
    app.release_id, app.release_version = "rel-2", 2
    await b.converge(app)

    async def serves_bonjour() -> bool:
        eps = b.web_endpoints(app.app_id)
        try:
            return len(eps) == 2 and all(
                [(await get(e.port)).text.startswith("bonjour") for e in eps]
            )
        except httpx.HTTPError:  # a dyno leaving between the table and the request
            return False

    deadline = time.monotonic() + 120
    while not await serves_bonjour():
        assert time.monotonic() < deadline, "the new release never served"
        await asyncio.sleep(0.2)
    # worker.1 is recreated (no preboot): its old pod goes first, then the new one comes.
    await until(lambda: {(d.release_version, d.state) for d in b.dynos(app.app_id)} == {(2, "up")})

    # Scale down to nothing: the Deployments go, and so do the dynos.
    app.formation = {"web": (0, "eco")}
    await b.converge(app)
    await until(lambda: not b.dynos(app.app_id), what="no dynos left")
    assert b.web_endpoints(app.app_id) == []


async def test_one_off_and_release_phase(dynos: Dynos, tmp_path: Path) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path), formation={})
    info = await b.run_one_off(app, 'echo "hi from $DYNO, $GREETING"; echo oops >&2; exit 3')
    assert info.name.startswith("run.") and info.type == "run"
    assert await b.wait_one_off(app.app_id, info.name, timeout=60) == 3
    out = dynos.lines(info.name, "app")
    # stdout and stderr are two pipes: their relative order is not kept.
    assert sorted(out) == sorted([f"hi from {info.name}, hello", "oops"]), out
    assert "Process exited with status 3" in dynos.lines(info.name, "heroku")

    release = await b.run_one_off(app, "echo migrating; exit 0", process_type="release")
    assert release.name.startswith("release.")
    assert await b.wait_one_off(app.app_id, release.name, timeout=60) == 0
    assert "migrating" in dynos.lines(release.name, "app")

    slow = await b.run_one_off(app, "sleep 600")
    assert await b.wait_one_off(app.app_id, slow.name, timeout=3) is None
