"""TLS termination: one SSLContext per certificate, chosen by SNI; TLS 1.2 and 1.3 only."""

from __future__ import annotations

import os
import ssl
import tempfile
from typing import Any

from .state import Router
from .table import Certificate, Feature


def _context(cert: Certificate, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    # load_cert_chain wants files: write them to a private temp dir, then forget them
    with tempfile.TemporaryDirectory() as d:
        cpath = os.path.join(d, "c.pem")
        kpath = os.path.join(d, "k.pem")
        fd = os.open(kpath, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(cert.key_pem)
        with open(cpath, "w") as f:
            f.write(cert.cert_pem)
        ctx.load_cert_chain(cpath, kpath)
    ctx.set_alpn_protocols(alpn)
    return ctx


class TLSContexts:
    """The listening context switches to the certificate's context in the SNI callback."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._cache: dict[tuple[str, bool], ssl.SSLContext] = {}
        self.base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.base.minimum_version = ssl.TLSVersion.TLSv1_2
        self.base.maximum_version = ssl.TLSVersion.TLSv1_3
        self.base.set_alpn_protocols(["h2", "http/1.1"])
        self.base.sni_callback = self._sni
        router.on_certificates = self.reload

    def reload(self, stale: list[str] | None) -> None:
        if stale is None:
            self._cache.clear()
            return
        for cert_id in stale:
            self._cache.pop((cert_id, True), None)
            self._cache.pop((cert_id, False), None)

    def context_for(self, cert: Certificate, h2: bool) -> ssl.SSLContext:
        key = (cert.id, h2)
        ctx = self._cache.get(key)
        if ctx is None:
            ctx = _context(cert, ["h2", "http/1.1"] if h2 else ["http/1.1"])
            self._cache[key] = ctx
        return ctx

    def _sni(self, sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        table = self.router.table
        cert = table.certificate_for(server_name)
        if cert is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        h2 = True
        if server_name:
            app = table.lookup(server_name)
            if app is not None and app.has(Feature.DISABLE_HTTP2):
                h2 = False
        try:
            sslobj.context = self.context_for(cert, h2)
        except (ssl.SSLError, ValueError):
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        try:
            sslobj.spruce_sni = server_name
        except AttributeError:
            pass
        return None
