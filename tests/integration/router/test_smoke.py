from __future__ import annotations

import httpx

from .conftest import app_entry


async def test_get_through_router(backends, running_router):
    b = backends("web.1")
    rr = await running_router({"apps": {"a1": app_entry("a1", ["demo.localhost"], [b.dyno()])}})
    async with httpx.AsyncClient() as c:
        r = await c.get(f"http://127.0.0.1:{rr.http_port}/echo", headers={"Host": "demo.localhost"})
    assert r.status_code == 200
    print(r.json())
    print(rr.logs)
