"""The metrics graphs keep what was measured across a restart of the platform."""

from __future__ import annotations

import re
import uuid

import httpx
from support import RunningPlatform, start_platform, wait_for


def metrics_requests(platform: RunningPlatform, app: str) -> int:
    c = httpx.Client(base_url=platform.api_url, timeout=30)
    c.post("/dashboard/login", data={"api_key": platform.api_key, "next": "/dashboard/"})
    page = c.get(f"/dashboard/apps/{app}/metrics?window=15m").text
    found = re.search(r'id="metrics-summary" data-requests="(\d+)"', page)
    assert found, page[-800:]
    return int(found.group(1))


def test_requests_measured_before_a_restart_are_still_graphed(platform: RunningPlatform) -> None:
    app = f"m-{uuid.uuid4().hex[:6]}"
    platform.client().post("/apps", json={"name": app}).raise_for_status()
    # no dynos yet: the router answers H14 for the app, and measures each one

    def ask() -> int:
        url = platform.endpoints["router_http_url"]
        return httpx.get(url, headers={"Host": f"{app}.localhost"}, timeout=30).status_code

    # the router's table learns of the app a moment after the API has answered (404 until
    # then: no such app, not measured for it)
    seen: list[int] = []
    wait_for(lambda: seen.append(ask()) or seen[-1] != 404, 10, what="the router knows the app")
    assert seen[-1] == 503
    for _ in range(3):
        assert ask() == 503
    wait_for(lambda: metrics_requests(platform, app) == 4, 20, what="4 requests graphed")
    assert platform.stop() == 0
    again = start_platform(platform.home, platform.env, platform.extra_args)
    try:
        assert metrics_requests(again, app) == 4
    finally:
        again.stop()
