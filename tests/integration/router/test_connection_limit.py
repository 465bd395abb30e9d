"""H22: client connections per app per router (connections_per_dyno x web dynos)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl

import httpx

from .conftest import FAST, app_entry, one_response

A = "demo.localhost"
B = "other.localhost"


def table(*apps) -> dict:
    return {"router_name": "spruce", "apps": {a["id"]: a for a in apps}}


class Conn:
    """One keepalive HTTP/1.1 client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, host: str, path: str = "/name") -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        return await asyncio.wait_for(one_response(self.reader), 5)

    async def closed_by_router(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 3) == b""

    def close(self) -> None:
        self.writer.transport.abort()


async def _until(cond, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


async def test_h22_when_an_app_has_too_many_connections(running_router, backends):
    b = backends()
    timers = dataclasses.replace(FAST, connections_per_dyno=2)
    rr = await running_router(table(app_entry("a", [A], [b.dyno()])), timers)
    c1, c2 = await Conn.open(rr.http_port), await Conn.open(rr.http_port)
    for c in (c1, c2):
        for _ in range(2):  # the second request on each takes the fast lane (pooled dyno conn)
            assert (await c.get(A))[0] == 200
    assert rr.router.fast_lane >= 2
    assert rr.router.connections["a"] == 2
    # a third connection: its simple request would suit the fast lane, yet gets H22
    c3 = await Conn.open(rr.http_port)
    status, headers, body = await c3.get(A)
    assert status == 503 and b"Application Error" in body
    assert headers["connection"] == "close" and await c3.closed_by_router()
    line = await rr.wait_log("code=H22")
    assert re.fullmatch(
        rf'at=error code=H22 desc="Connection limit reached" method=GET path="/name" host={A} '
        r'request_id=[0-9a-f-]{36} fwd="127.0.0.1" dyno= connect= service= status=503 bytes= '
        r"protocol=http1.1 tls=false tls_version=unknown",
        line,
    ), line
    # the connections already counted go on; one closing makes room for another
    assert (await c1.get(A))[0] == 200
    c2.close()
    await _until(lambda: rr.router.connections["a"] == 1)
    c4 = await Conn.open(rr.http_port)
    assert (await c4.get(A))[0] == 200
    # the limit scales with the app's web dynos: two more connections with web_quantity=2
    rr.router.upsert_app(app_entry("a", [A], [b.dyno()], web_quantity=2))
    c5, c6 = await Conn.open(rr.http_port), await Conn.open(rr.http_port)
    assert (await c5.get(A))[0] == 200 and (await c6.get(A))[0] == 200
    assert (await (await Conn.open(rr.http_port)).get(A))[0] == 503
    for c in (c1, c4, c5, c6):
        c.close()
    await _until(lambda: not rr.router.connections)


async def test_h22_connection_moves_to_the_app_of_its_latest_request(running_router, backends):
    b = backends()
    timers = dataclasses.replace(FAST, connections_per_dyno=1)
    rr = await running_router(
        table(app_entry("a", [A], [b.dyno()]), app_entry("b", [B], [b.dyno()])), timers
    )
    c1 = await Conn.open(rr.http_port)
    assert (await c1.get(A))[0] == 200
    c2 = await Conn.open(rr.http_port)
    assert (await c2.get(A))[0] == 503  # app a is at its limit (1)
    await rr.wait_log("code=H22")
    c1_next = await c1.get(B)  # c1 now counts against b only
    assert c1_next[0] == 200 and rr.router.connections == {"b": 1}
    c3 = await Conn.open(rr.http_port)
    assert (await c3.get(A))[0] == 200
    # answers given before the H22 check (here H80) do not move a connection
    rr.router.upsert_app(app_entry("b", [B], [b.dyno()], maintenance=True))
    assert (await c3.get(B))[0] == 503
    assert rr.router.connections == {"a": 1, "b": 1}
    for c in (c1, c3):
        c.close()


async def test_h22_on_http2_streams(running_router, backends, tmp_path):
    from spruce.certs.ca import InternalCA

    ca = InternalCA(tmp_path / "ca")
    issued = ca.issue(["*.example.org"], [])
    cert = {"id": "w", "hostnames": ["*.example.org"], "cert_pem": issued.cert_pem}
    cert["key_pem"] = issued.key_pem
    b = backends()
    snap = table(
        app_entry("a", ["a.example.org"], [b.dyno()]), app_entry("b", ["b.example.org"], [b.dyno()])
    )
    snap["certificates"] = [cert]
    rr = await running_router(snap, dataclasses.replace(FAST, connections_per_dyno=1))
    verify = ssl.create_default_context(cafile=str(ca.cert_path))

    async def get(c: httpx.AsyncClient, host: str) -> httpx.Response:
        return await c.get(
            f"https://127.0.0.1:{rr.https_port}/name",
            headers={"Host": host},
            extensions={"sni_hostname": "a.example.org"},
        )

    async with httpx.AsyncClient(verify=verify, http2=True) as c1:
        # one HTTP/2 connection carrying streams for two apps counts against both
        assert (await get(c1, "a.example.org")).http_version == "HTTP/2"
        assert (await get(c1, "b.example.org")).status_code == 200
        assert rr.router.connections == {"a": 1, "b": 1}
        async with httpx.AsyncClient(verify=verify, http2=True) as c2:
            r = await get(c2, "b.example.org")
            assert r.status_code == 503 and r.http_version == "HTTP/2"
            line = await rr.wait_log("code=H22")
            assert "protocol=http2.0 tls=true" in line
            # the stream got the 503; the connection itself was not counted and goes on
            assert rr.router.connections == {"a": 1, "b": 1}
            assert (await get(c2, "b.example.org")).status_code == 503
        assert (await get(c1, "a.example.org")).status_code == 200
    await _until(lambda: not rr.router.connections)
