"""Eco sleeping on Kubernetes: a scale to 0 after the sleep timer, and back on a request."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from spruce.dynos.model import DynoSettings

from .conftest import Dynos, fast_dyno_settings, make_slug, runtime, until

pytestmark = pytest.mark.slow


@pytest.fixture
def dyno_settings() -> DynoSettings:
    return fast_dyno_settings(sleep_after=8.0, sleep_check_interval=0.2)


async def test_eco_dynos_sleep_as_a_scale_to_zero_and_wake(dynos: Dynos, tmp_path: Path) -> None:
    b = dynos.backend
    app = runtime(make_slug(tmp_path), formation={"web": (1, "eco")})
    await b.converge(app)
    await until(lambda: b.web_endpoints(app.app_id), what="web.1 routable")
    b.note_request(app.app_id)
    await until(lambda: [d.state for d in b.dynos(app.app_id)] == ["idle"], 120, "idle")
    assert b.web_endpoints(app.app_id) == []
    assert "Idling" in dynos.lines("web.1", "heroku")
    (dep,) = b._apps[app.app_id].deployments.values()
    assert dep["spec"]["replicas"] == 0
    t0 = time.monotonic()
    b.note_request(app.app_id)  # the router holds the request and wakes the app
    await until(lambda: b.web_endpoints(app.app_id), 120, "awake")
    woke = time.monotonic() - t0
    (ep,) = b.web_endpoints(app.app_id)
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(f"http://127.0.0.1:{ep.port}/")).text == "hello from web.1\n"
    assert "Unidling" in dynos.lines("web.1", "heroku") and woke < 30
