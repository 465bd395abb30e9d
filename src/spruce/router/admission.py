"""The one admission rule: which H code, if any, a request gets before a dyno is chosen.

Pure functions of the request's facts and the route table, called by every lane (the HTTP/1.1
and HTTP/2 fast lanes and the full exchange), so that a rule is written once. The order is
Router 2.0's (docs/router.md "Order of checks"): H32, H31, H80, H81, H82, H14, H22, H11.
Unknown hosts (404) come before, from the table's lookup; H10/H20/H99 and the connect codes
come after, from dyno choice (`no_dyno_up` below for the first of them).
"""

from __future__ import annotations

from .errors import Code
from .table import App, DynoState, Feature, RouteTable, cert_matches

BACKLOG_PER_DYNO = 200  # H11: requests in flight per web dyno, per router


def refusal(
    table: RouteTable,
    app: App,
    host: str,
    sni: str | None,
    http2: bool,
    inflight: int,
    connections: int,
    per_dyno: int,
) -> Code | None:
    """The H code `app` answers this request with, or None when it may go to a dyno.

    `host`: the normalised Host (or :authority); `sni`: the normalised SNI name of a TLS
    connection whose client sent one, else None; `inflight`: the app's requests in flight in
    this router; `connections`: the client connections counted against the app that this
    one would join (0 when this connection already counts against it); `per_dyno`: the
    router's `connections_per_dyno`.
    """
    if sni is not None and sni != host:
        cert = table.certificate_for(sni)
        if cert is None or not cert_matches(cert, host):
            return Code.H32
        other = table.certificate_for(host)
        if other is not None and other.id != cert.id:
            return Code.H31  # another SNI endpoint serves this host
    if http2 and Feature.DISABLE_HTTP2 in app.features:
        return Code.H31  # h2 was negotiated under another SNI name
    if app.maintenance:
        return Code.H80
    if not app.released:
        return Code.H81
    if app.eco_quota_exhausted:
        return Code.H82
    web = app.web_quantity
    if web <= 0:
        return Code.H14
    if connections >= per_dyno * web:  # (web >= 1 here: the max(web, 1) of docs/router.md)
        return Code.H22
    if inflight >= BACKLOG_PER_DYNO * web:
        return Code.H11
    return None


def no_dyno_up(app: App) -> Code | None:
    """With no dyno of `app` up: H14 (scaled to 0), H10 (every listed dyno crashed or down,
    one of them crashed), or None: wait for one (starting, sleeping, none listed yet)."""
    if app.web_quantity <= 0:
        return Code.H14
    if app.sleeping or not app.dynos:
        return None
    crashed = False
    for d in app.dynos:
        if d.state is DynoState.CRASHED:
            crashed = True
        elif d.state is not DynoState.DOWN:
            return None
    return Code.H10 if crashed else None
