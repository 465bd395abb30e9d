"""ACM's HTTP-01 tokens answered by a real router on its HTTP port: any Host, before app
routing, never by the fast lane's forwarding; unknown tokens and HTTPS reach the app."""

from __future__ import annotations

import asyncio
import ssl

from spruce.certs.ca import InternalCA

from .conftest import app_entry, one_response

H = "demo.localhost"
P = "/.well-known/acme-challenge/"


def snapshot(b, tokens: dict[str, str], cert: dict | None = None) -> dict:
    return {
        "router_name": "spruce",
        "apps": {"a": app_entry("a", [H], [b.dyno()], acme_challenges=tokens)},
        "certificates": [cert] if cert else [],
    }


async def _get(reader, writer, path: str, host: str = H):
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return await asyncio.wait_for(one_response(reader), 5)


async def test_tokens_are_answered_for_any_host_even_on_a_fast_lane_connection(
    running_router, backends
):
    b = backends()
    rr = await running_router(snapshot(b, {"tok1": "tok1.key-auth"}))
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    assert (await _get(reader, writer, "/name"))[2] == b"web.1"
    assert (await _get(reader, writer, "/name"))[2] == b"web.1"
    fast = rr.router.fast_lane
    assert fast >= 1  # the app is plain and the pool warm: this connection takes the lane
    for host in (H, "www.shop.example", "127.0.0.1"):  # the CA's Host is a custom domain
        status, headers, body = await _get(reader, writer, P + "tok1", host)
        assert (status, body) == (200, b"tok1.key-auth")
        assert headers["content-type"] == "text/plain"
    assert rr.router.fast_lane == fast
    # Not ACM's token: the app answers it (it may run its own ACME client).
    status, _, body = await _get(reader, writer, P + "other")
    assert body != b"tok1.key-auth"
    assert "dyno=web.1 " in await rr.wait_log(f'path="{P}other"')
    assert not [line for _, line in rr.logs if "tok1" in line]  # answered by the router
    assert (await _get(reader, writer, "/name"))[2] == b"web.1"  # the connection goes on
    # The table's next version withdraws it.
    rr.router.upsert_app(app_entry("a", [H], [b.dyno()]))
    status, _, body = await _get(reader, writer, P + "tok1", "www.shop.example")
    assert status == 404 and body != b"tok1.key-auth"  # no such app now
    writer.close()


async def test_https_requests_are_not_challenge_answers(running_router, backends, tmp_path):
    b = backends()
    ca = InternalCA(tmp_path / "ca")
    issued = ca.issue([H])
    cert = {"id": "c", "hostnames": [H], "cert_pem": issued.cert_pem, "key_pem": issued.key_pem}
    rr = await running_router(snapshot(b, {"tok1": "tok1.key-auth"}, cert))
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.set_alpn_protocols(["http/1.1"])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", rr.https_port, ssl=ctx, server_hostname=H
    )
    status, _, body = await _get(reader, writer, P + "tok1")
    assert body != b"tok1.key-auth"  # the app's own answer: port 80 only, as for a CA
    assert "dyno=web.1 " in await rr.wait_log(f'path="{P}tok1"')
    writer.close()
