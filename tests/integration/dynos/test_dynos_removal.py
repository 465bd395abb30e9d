"""Removing apps, ending one-offs (disconnect, pending attach), size changes."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from urllib.parse import urlparse

from .conftest import Harness, make_slug, runtime, until


async def test_remove_app_ends_everything(harness: Harness) -> None:
    m = await harness.manager()
    slug = make_slug(harness.tmp)
    app = runtime(slug, formation={"web": (1, "basic"), "worker": (1, "basic")})
    await m.converge(app)
    await until(lambda: all(d.state == "up" for d in m.dynos("app1")) and len(m.dynos("app1")) == 2)
    pending = await m.run_one_off(app, "echo hi", attach=True)
    assert pending.attach_url
    pids = [d.pid for d in m.dynos("app1") if d.pid]
    started = time.monotonic()
    await m.remove_app("app1")
    assert time.monotonic() - started < 4  # no wait for the unattached secret to expire
    assert m.dynos("app1") == [] and m.web_endpoints("app1") == []
    assert harness.changes[-1] == "app1"
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read()
    assert not (harness.tmp / "home" / "apps" / "app1").exists()
    assert slug.exists()  # the release's own slug is the control plane's business


async def test_client_disconnect_ends_one_off(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(app, "sleep 1000", attach=True)
    assert info.attach_url
    url = urlparse(info.attach_url)
    ctx = ssl.create_default_context(cafile=str(harness.ca.cert_path))
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=ctx)
    writer.write(url.path[1:].encode() + b"\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 5)
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up"])
    writer.close()  # the user hit ^C four times
    await until(lambda: m.dynos("app1") == [], what="one-off ended on disconnect")
    assert "Stopping all processes with SIGTERM" in harness.lines("heroku", info.name)


async def test_size_change_restarts_with_new_size(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={"worker": (1, "basic")})
    await m.converge(app)
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up"])
    pid = m.dynos("app1")[0].pid
    app.formation = {"worker": (1, "Standard-2X")}
    await m.converge(app)
    await until(
        lambda: (
            [(d.size, d.state) for d in m.dynos("app1")] == [("Standard-2X", "up")]
            and m.dynos("app1")[0].pid != pid
        ),
        timeout=10,
    )
