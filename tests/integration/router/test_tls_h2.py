"""TLS termination: SNI certificate choice, TLS versions, H32, HTTP/2 via ALPN."""

from __future__ import annotations

import asyncio
import re
import ssl

import httpx
import pytest
from cryptography import x509

from spruce.certs.ca import InternalCA

from .conftest import app_entry


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = InternalCA(tmp_path_factory.mktemp("ca"))

    def cert(cid: str, names: list[str]) -> dict:
        issued = ca.issue(names, [])
        return {
            "id": cid,
            "hostnames": names,
            "cert_pem": issued.cert_pem,
            "key_pem": issued.key_pem,
        }

    return ca, {
        "demo": cert("demo", ["demo.localhost"]),
        "wild": cert("wild", ["*.example.org"]),
        "api": cert("api", ["api.example.org"]),
        "default": cert("default", ["default.localhost"]),
    }


def snapshot(b, certs, default=None, **kw):
    return {
        "router_name": "spruce",
        "apps": {
            "a": app_entry("a", ["demo.localhost", "*.example.org"], [b.dyno()], **kw),
            "b": app_entry("b", ["www.example.com"], [b.dyno()]),
        },
        "certificates": [certs["demo"], certs["wild"], certs["api"]],
        "default_certificate": default,
    }


async def peer_names(port: int, sni: str | None, ca: InternalCA) -> list[str]:
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.check_hostname = False
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=sni or ""
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    cert = x509.load_der_x509_certificate(der)
    return cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


async def test_sni_picks_specific_over_wildcard_and_default(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs, certs["default"]))
    assert await peer_names(rr.https_port, "api.example.org", ca) == ["api.example.org"]
    assert await peer_names(rr.https_port, "x.example.org", ca) == ["*.example.org"]
    assert await peer_names(rr.https_port, "demo.localhost", ca) == ["demo.localhost"]
    assert await peer_names(rr.https_port, "unknown.localhost", ca) == ["default.localhost"]


async def test_unknown_sni_without_default_fails_handshake(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await peer_names(rr.https_port, "unknown.localhost", ca)
    # the worker is fine afterwards
    assert await peer_names(rr.https_port, "demo.localhost", ca) == ["demo.localhost"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_old_tls_refused(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    _, w = await asyncio.open_connection(
        "127.0.0.1", rr.https_port, ssl=ctx, server_hostname="demo.localhost"
    )
    assert w.get_extra_info("ssl_object").version() == "TLSv1.2"
    w.close()
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection(
            "127.0.0.1", rr.https_port, ssl=ctx, server_hostname="demo.localhost"
        )


async def _get(port, ca, sni, host, path="/echo", http2=True):
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=str(ca.cert_path)), http2=http2
    ) as c:
        return await c.get(
            f"https://127.0.0.1:{port}{path}",
            headers={"Host": host},
            extensions={"sni_hostname": sni},
        )


async def test_http2_and_http1_over_tls_with_log_lines(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs))
    r = await _get(rr.https_port, ca, "demo.localhost", "demo.localhost")
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert r.headers["via"] == "2.0 spruce"
    sent = dict((k.lower(), v) for k, v in r.json()["headers"])
    assert sent["x-forwarded-proto"] == "https"
    assert sent["x-forwarded-port"] == str(rr.https_port)
    assert sent["via"] == "2.0 spruce"
    line = await rr.wait_log("protocol=http2.0")
    n = len(r.content)
    assert line.endswith(f"status=200 bytes={n} protocol=http2.0 tls=true tls_version=tls1.3")
    r = await _get(rr.https_port, ca, "demo.localhost", "demo.localhost", http2=False)
    assert r.http_version == "HTTP/1.1" and r.headers["via"] == "1.1 spruce"
    await rr.wait_log("protocol=http1.1 tls=true tls_version=tls1.3")
    # a body over HTTP/2 reaches the dyno (chunked, since h2 has no framing header here)
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=str(ca.cert_path)), http2=True
    ) as c:
        r = await c.post(
            f"https://127.0.0.1:{rr.https_port}/echo",
            headers={"Host": "demo.localhost"},
            content=b"x" * 200000,
            extensions={"sni_hostname": "demo.localhost"},
        )
        assert r.json()["body"] == "x" * 200000
        big = await c.get(
            f"https://127.0.0.1:{rr.https_port}/big?n=3000000",
            headers={"Host": "demo.localhost"},
            extensions={"sni_hostname": "demo.localhost"},
        )
        assert len(big.content) == 3000000


async def test_h32_sni_host_mismatch(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs))
    r = await _get(rr.https_port, ca, "demo.localhost", "www.example.com", "/", http2=False)
    assert r.status_code == 495
    line = await rr.wait_log("code=H32")
    assert line.startswith('at=error code=H32 desc="TLS Certificate Mismatch"')
    # a name the SNI certificate covers is fine (wildcard)
    r = await _get(rr.https_port, ca, "x.example.org", "y.example.org", "/name", http2=False)
    assert r.status_code == 200


async def test_disable_http2_feature(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs, features=["http-disable-http2"]))
    r = await _get(rr.https_port, ca, "demo.localhost", "demo.localhost")
    assert r.status_code == 200 and r.http_version == "HTTP/1.1"


async def test_http2_error_codes_and_concurrent_streams(running_router, backends, pki):
    ca, certs = pki
    b1, b2 = backends("web.1"), backends("web.2")
    snap = snapshot(b1, certs)
    snap["apps"]["a"]["dynos"].append(b2.dyno())
    snap["apps"]["m"] = app_entry("m", ["api.example.org"], [b1.dyno()], maintenance=True)
    rr = await running_router(snap)
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    async with httpx.AsyncClient(verify=ctx, http2=True, timeout=10) as c:

        async def get(path: str, host: str = "demo.localhost") -> httpx.Response:
            return await c.get(
                f"https://127.0.0.1:{rr.https_port}{path}",
                headers={"Host": host},
                extensions={"sni_hostname": host},
            )

        rs = await asyncio.gather(*(get("/name") for _ in range(60)))
        assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in rs)
        assert {r.text for r in rs} == {"web.1", "web.2"}
        r = await get("/noreason")
        assert r.status_code == 502
        line = await rr.wait_log("code=H17")
        assert "protocol=http2.0 tls=true" in line
        # same origin, other Host: httpx reuses the demo.localhost TLS connection -> H32
        r = await get("/", "api.example.org")
        assert r.status_code == 495
        await rr.wait_log("code=H32")
        r = await _get(rr.https_port, ca, "api.example.org", "api.example.org", "/")
        assert r.status_code == 503 and "Maintenance" in r.text
        await rr.wait_log("code=H80")
        r = await get("/sleep?s=3")
        assert r.status_code == 503
        await rr.wait_log("code=H12")
        # the connection survived all of it
        assert (await get("/name")).status_code == 200


async def test_http2_client_reset_is_h27(running_router, backends, pki):
    import h2.config
    import h2.connection
    import h2.events

    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs))
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", rr.https_port, ssl=ctx, server_hostname="demo.localhost"
    )
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [
            (":method", "GET"),
            (":path", "/sleep?s=0.5"),
            (":scheme", "https"),
            (":authority", "demo.localhost"),
        ],
        end_stream=True,
    )
    writer.write(conn.data_to_send())
    await asyncio.sleep(0.1)
    conn.reset_stream(1)
    writer.write(conn.data_to_send())
    line = await rr.wait_log("code=H27")
    assert "protocol=http2.0" in line and "status=499" in line
    writer.close()


async def test_h31_host_served_by_another_sni_endpoint(running_router, backends, pki):
    """The connection's certificate covers Host, but Host has its own certificate: a client
    coalescing connections (HTTP/2) or reusing one gets 421 and retries on a new one."""
    ca, certs = pki
    b = backends()
    rr = await running_router(snapshot(b, certs))
    for http2 in (True, False):
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(ca.cert_path)), http2=http2
        ) as c:
            r = await c.get(
                f"https://127.0.0.1:{rr.https_port}/name",
                headers={"Host": "api.example.org", "User-Agent": 'probe/1.0 "x"'},
                extensions={"sni_hostname": "x.example.org"},  # *.example.org covers api.
            )
        assert r.status_code == 421 and "Application Error" in r.text
        proto = "http2.0" if http2 else "http1.1"
        line = await rr.wait_log(f"protocol={proto} tls=true tls_version=tls1.3")
        assert re.fullmatch(
            r'at=error code=H31 desc="Misdirected Request" agent="probe/1\.0 \\"x\\"" '
            r'method=GET path="/name" host=api\.example\.org request_id=[0-9a-f-]{36} '
            r'fwd="127\.0\.0\.1" dyno= connect= service= status=421 bytes= '
            rf"protocol={proto} tls=true tls_version=tls1\.3",
            line,
        ), line
        rr.logs.clear()
    # the retry on a connection of its own goes through
    r = await _get(rr.https_port, ca, "api.example.org", "api.example.org", "/name")
    assert r.status_code == 200 and r.text == "web.1"
    # a name the wildcard covers with no certificate of its own is not misdirected
    r = await _get(rr.https_port, ca, "x.example.org", "y.example.org", "/name")
    assert r.status_code == 200
    # no User-Agent: agent=""
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", rr.https_port, ssl=ctx, server_hostname="x.example.org"
    )
    writer.write(b"GET / HTTP/1.1\r\nHost: api.example.org\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).startswith(b"HTTP/1.1 421 ")
    writer.close()
    line = await rr.wait_log("code=H31")
    assert 'desc="Misdirected Request" agent="" method=GET path="/" ' in line


async def test_h31_http2_request_for_an_app_without_http2(running_router, backends, pki):
    ca, certs = pki
    b = backends()
    snap = snapshot(b, certs)
    snap["apps"]["c"] = app_entry(
        "c", ["h1.example.org"], [b.dyno()], features=["http-disable-http2"]
    )
    rr = await running_router(snap)
    # h2 negotiated under x.example.org (app a), then a stream for h1.example.org (app c)
    r = await _get(rr.https_port, ca, "x.example.org", "h1.example.org", "/name")
    assert r.status_code == 421 and r.http_version == "HTTP/2"
    line = await rr.wait_log("code=H31")
    assert "host=h1.example.org " in line and "status=421 " in line and "protocol=http2.0" in line
    assert re.search(r'agent="python-httpx/[^"]+"', line), line
    # its own connection offers HTTP/1.1 only, and serves it
    r = await _get(rr.https_port, ca, "h1.example.org", "h1.example.org", "/name")
    assert r.status_code == 200 and r.http_version == "HTTP/1.1"
    # HTTP/1.1 over a connection negotiated under another name is fine for it
    r = await _get(rr.https_port, ca, "x.example.org", "h1.example.org", "/name", http2=False)
    assert r.status_code == 200
