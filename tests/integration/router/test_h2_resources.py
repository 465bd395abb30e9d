"""HTTP/2 connections under pressure, over real sockets: slow and non-reading clients,
streams stalled on their dyno, and what each leaves behind (streams, tasks, in-flight
counters, pooled dyno connections)."""

from __future__ import annotations

import asyncio

import pytest

from spruce.certs.ca import InternalCA

from .conftest import app_entry
from .h2client import H2Client

H = "demo.localhost"
OTHER = "other.localhost"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = InternalCA(tmp_path_factory.mktemp("ca"))
    issued = ca.issue([H, OTHER], [])
    cert = {
        "id": "demo",
        "hostnames": [H, OTHER],
        "cert_pem": issued.cert_pem,
        "key_pem": issued.key_pem,
    }
    return str(ca.cert_path), cert


def table(cert, *apps) -> dict:
    return {
        "router_name": "spruce",
        "apps": {a["id"]: a for a in apps},
        "certificates": [cert],
        "default_certificate": None,
    }


async def _router(running_router, backends, pki, **kw):
    cafile, cert = pki
    b = backends()
    rr = await running_router(table(cert, app_entry("a", [H], [b.dyno()])), **kw)
    return rr, cafile


def h2conn(rr):
    (conn,) = rr.server.h2_connections
    return conn


async def settled(rr, timeout: float = 5.0) -> None:
    """Wait until nothing of the router's HTTP/2 connections is left in flight."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        conns = rr.server.h2_connections
        if not rr.router.inflight and all(not c.streams and not c.tasks for c in conns):
            return
        await asyncio.sleep(0.02)
    state = [(dict(c.streams), set(c.tasks)) for c in rr.server.h2_connections]
    raise AssertionError(f"still in flight: {dict(rr.router.inflight)} {state}")


async def test_concurrent_streams_blocked_on_a_slow_reader_all_finish(
    running_router, backends, pki
):
    # two responses larger than every buffer on the way, a client that pauses reading: both
    # streams wait for the connection to drain at the same time, and both must resume
    rr, cafile = await _router(running_router, backends, pki)
    c = await H2Client.connect(rr.https_port, cafile, rcvbuf=16384)
    c.open_windows()
    n = 8_000_000
    c.reading.clear()
    sids = [c.request(f"/big?n={n}&i={i}") for i in range(2)]
    await asyncio.sleep(1.5)  # both streams are now blocked on the paused transport
    c.reading.set()
    for sid in sids:
        r = await c.response(sid, 10)
        assert r.status == 200 and len(r.body) == n
    await settled(rr)
    await c.close()
