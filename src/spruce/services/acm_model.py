"""The values crossing ACM's CertificateAuthority port: an order's record and its challenges.

The persisted state of one certificate order is a small record the platform stores. The
issuer never keeps an order only in memory. After every step it returns a new
`OrderRecord`; the platform writes `to_json()` to its store, and after a restart hands
`OrderRecord.from_json(...)` back to `AcmeIssuer.advance`, which continues from the CA's view
of the order (so a step that ran but was not recorded is simply seen as done).

`key_pem` is the certificate's private key: the ACM service stores the record sealed
(services/sealing.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from cryptography import x509

ChallengeKind = Literal["http-01", "dns-01"]
Stage = Literal["new", "authorizing", "finalizing", "valid", "invalid"]
RECORD_VERSION = 1


@dataclass(frozen=True)
class Publication:
    """One thing the issuer published for a challenge, kept in the order record to undo."""

    kind: ChallengeKind
    name: str
    """The token (http-01) or the absolute TXT owner name without a trailing dot (dns-01)."""
    value: str
    """The key authorization (http-01) or the TXT value (dns-01)."""


@dataclass(frozen=True)
class OrderRecord:
    hostnames: tuple[str, ...]
    key_pem: str
    started_at: dt.datetime
    stage: Stage = "new"
    order_url: str | None = None
    publications: tuple[Publication, ...] = ()
    """Challenges published (or about to be): written here before they are published."""
    retry_at: dt.datetime | None = None
    """Do not advance before this time (polling interval, Retry-After, backoff)."""
    errors: int = 0
    """Consecutive transient failures (network, CA unavailable), for backoff."""
    rate_limited: bool = False
    problem: str | None = None
    """Why the order waits or failed: a sentence for acm_status_reason."""
    failed: tuple[tuple[str, str], ...] = field(default=())
    """(hostname, reason) of identifiers the CA refused to validate."""
    certificate_pem: str | None = None
    """The full chain (leaf first) once the stage is `valid`."""

    @property
    def done(self) -> bool:
        return self.stage in ("valid", "invalid")

    @property
    def http01(self) -> dict[str, str]:
        """The HTTP-01 tokens this order has published (or is about to): token -> answer."""
        return {p.name: p.value for p in self.publications if p.kind == "http-01"}

    @property
    def expires_at(self) -> dt.datetime | None:
        if self.certificate_pem is None:
            return None
        return x509.load_pem_x509_certificate(self.certificate_pem.encode()).not_valid_after_utc

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "hostnames": list(self.hostnames),
            "key_pem": self.key_pem,
            "started_at": self.started_at.isoformat(),
            "stage": self.stage,
            "order_url": self.order_url,
            "publications": [[p.kind, p.name, p.value] for p in self.publications],
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
            "errors": self.errors,
            "rate_limited": self.rate_limited,
            "problem": self.problem,
            "failed": [list(f) for f in self.failed],
            "certificate_pem": self.certificate_pem,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderRecord:
        try:
            if data.get("version") != RECORD_VERSION:
                raise ValueError(f"unknown order record version {data.get('version')!r}")
            stage = data["stage"]
            if stage not in get_args(Stage):
                raise ValueError(f"unknown order stage {stage!r}")
            pubs = []
            for kind, name, value in data.get("publications", []):
                if kind not in get_args(ChallengeKind):
                    raise ValueError(f"unknown challenge kind {kind!r}")
                pubs.append(Publication(kind, str(name), str(value)))
            return cls(
                hostnames=tuple(str(h) for h in data["hostnames"]),
                key_pem=str(data["key_pem"]),
                started_at=_time(data["started_at"]),
                stage=cast(Stage, stage),
                order_url=_opt_str(data.get("order_url")),
                publications=tuple(pubs),
                retry_at=_time(data["retry_at"]) if data.get("retry_at") else None,
                errors=int(data.get("errors", 0)),
                rate_limited=bool(data.get("rate_limited", False)),
                problem=_opt_str(data.get("problem")),
                failed=tuple((str(h), str(r)) for h, r in data.get("failed", [])),
                certificate_pem=_opt_str(data.get("certificate_pem")),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an order record: {type(e).__name__} {e}") from None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError("time is not a string")
    when = dt.datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
