"""Header rewriting between clients and dynos (Heroku's X-Forwarded-*, X-Request-Id, Via)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .http1 import Headers

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# Client copies of these are never trusted: the router writes its own.
UNTRUSTED = frozenset(
    {
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-host",
        "x-forwarded-by",
        "x-request-start",
    }
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=\-]{20,200}\Z")


def connection_listed(headers: Headers) -> set[str]:
    out: set[str] = set()
    for k, v in headers:
        if k.lower() == "connection":
            out.update(t.strip().lower() for t in v.split(",") if t.strip())
    return out


def request_id_for(headers: Iterable[tuple[str, str]], first: str | None = None) -> str:
    """The client's X-Request-Id when valid, else a new one. `first`: the parser's pick."""
    if first is not None:  # "" when the client sent none
        return first if first and _REQUEST_ID.match(first) else new_request_id()
    for k, v in headers:
        if k.lower() == "x-request-id" and _REQUEST_ID.match(v):
            return v
    return new_request_id()


def new_request_id() -> str:
    """A random (version 4) UUID string, cheaper than uuid.uuid4() on the hot path."""
    global _random, _random_at
    if _random_at >= len(_random):  # one getrandom() call per 256 ids
        _random, _random_at = os.urandom(16 * 256), 0
    b = bytearray(_random[_random_at : _random_at + 16])
    _random_at += 16
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_random = b""
_random_at = 0


def rewrite_request_headers(
    headers: Headers,
    *,
    client_ip: str,
    proto: str,
    port: int,
    request_start_ms: int,
    request_id: str,
    via: str,
    body_length: int | None,
    has_body: bool,
    upgrade: str | None,
    keep_alive_to_dyno: bool,
    keep_expect: bool,
    listed: set[str] | None = None,
) -> Headers:
    """Headers sent to the dyno. Hop-by-hop headers (and those named in Connection) go;
    framing is rewritten from what the router itself will send."""
    if listed is None:
        listed = connection_listed(headers)
    out: Headers = []
    xff: list[str] = []
    vias: list[str] = []
    for k, v in headers:
        lk = k.lower()
        if lk in HOP_BY_HOP or lk in listed or lk in UNTRUSTED:
            continue
        if lk == "content-length" or lk == "x-request-id":
            continue
        if lk == "expect" and not keep_expect:
            continue
        if lk == "x-forwarded-for":
            xff.extend(p.strip() for p in v.split(",") if p.strip())
            continue
        if lk == "via":
            vias.append(v)
            continue
        out.append((k, v))
    xff.append(client_ip)
    out.append(("X-Forwarded-For", ", ".join(xff)))
    out.append(("X-Forwarded-Proto", proto))
    out.append(("X-Forwarded-Port", str(port)))
    out.append(("X-Request-Start", str(request_start_ms)))
    out.append(("X-Request-Id", request_id))
    vias.append(via)
    out.append(("Via", ", ".join(vias)))
    if upgrade is not None:
        out.append(("Connection", "Upgrade"))
        out.append(("Upgrade", upgrade))
    elif not keep_alive_to_dyno:
        out.append(("Connection", "close"))
    if body_length is not None:
        if body_length or has_body:
            out.append(("Content-Length", str(body_length)))
    else:
        out.append(("Transfer-Encoding", "chunked"))
    return out


def rewrite_response_headers(
    headers: Headers, *, via: str, keep_upgrade: bool, listed: set[str] | None = None
) -> Headers:
    """Headers sent to the client, without framing (the caller adds it)."""
    if listed is None:
        listed = connection_listed(headers)
    out: Headers = []
    vias: list[str] = []
    for k, v in headers:
        lk = k.lower()
        if lk == "upgrade" and keep_upgrade:
            out.append((k, v))
            continue
        if lk in HOP_BY_HOP or lk in listed or lk == "content-length":
            continue
        if lk == "via":
            vias.append(v)
            continue
        out.append((k, v))
    vias.append(via)
    out.append(("Via", ", ".join(vias)))
    return out
