"""The internal certificate authority.

Spruce serves its router's HTTPS port, the git endpoint and the `run` rendezvous over TLS
before any ACME issuer is configured. A small CA kept in the home signs those leaf
certificates; `spruce heroku-env` hands its certificate to clients as a CA bundle.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from spruce.services.model import IssuedCertificate

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=397)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class InternalCA:
    """A CA whose key and certificate live in `directory` (created on first use)."""

    def __init__(self, directory: Path, name: str = "Spruce Internal CA") -> None:
        self.directory = Path(directory)
        self.cert_path = self.directory / "ca.pem"
        self.key_path = self.directory / "ca.key"
        if not self.cert_path.exists() or not self.key_path.exists():
            self._create(name)
        self._key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    def _create(self, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Spruce"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(self.key_path, _key_pem(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        hostnames: Sequence[str],
        ips: Sequence[str] | None = None,
        validity: dt.timedelta = LEAF_VALIDITY,
    ) -> IssuedCertificate:
        """Sign a server certificate for DNS names (wildcards allowed) and IP addresses."""
        if not hostnames and not ips:
            raise ValueError("a certificate needs at least one hostname or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
        cn = hostnames[0] if hostnames else (ips or [""])[0]
        now = _now()
        not_after = now + validity
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .sign(self._key, hashes.SHA256())  # type: ignore[arg-type]
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self._cert.public_bytes(
            serialization.Encoding.PEM
        )
        return IssuedCertificate(chain.decode(), _key_pem(key).decode(), not_after)

    def issue_to_files(
        self, cert_path: Path, key_path: Path, hostnames: list[str], ips: list[str] | None = None
    ) -> IssuedCertificate:
        issued = self.issue(hostnames, ips)
        Path(cert_path).write_text(issued.cert_pem)
        _write_private(Path(key_path), issued.key_pem.encode())
        return issued
