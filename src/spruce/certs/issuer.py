"""The internal CA as services' CertificateIssuer: app certificates, kept on disk.

Each set of hostnames gets one certificate, issued once and re-issued when it nears its
end; the key files are 0600 in the platform's home.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from spruce.services.model import IssuedCertificate

from .ca import InternalCA, _write_private

RENEW_BEFORE = dt.timedelta(days=30)


class InternalIssuer:
    def __init__(self, ca: InternalCA, cache_dir: Path) -> None:
        self.ca = ca
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._memo: dict[tuple[str, ...], IssuedCertificate] = {}

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        names = tuple(sorted(set(hostnames)))
        now = dt.datetime.now(dt.UTC)
        cached = self._memo.get(names)
        if cached is not None and cached.not_after and cached.not_after - now > RENEW_BEFORE:
            return cached
        stem = hashlib.sha256("\n".join(names).encode()).hexdigest()[:32]
        cert_path, key_path = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        issued = None
        if cert_path.exists() and key_path.exists():
            pem = cert_path.read_text()
            not_after = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc
            if not_after - now > RENEW_BEFORE:
                issued = IssuedCertificate(pem, key_path.read_text(), not_after)
        if issued is None:
            issued = self.ca.issue(list(names))
            cert_path.write_text(issued.cert_pem)
            _write_private(key_path, issued.key_pem.encode())
        self._memo[names] = issued
        return issued
