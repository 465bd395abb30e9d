"""ACM without an ACME directory: certificates from the internal CA, at once.

`certs:auto:enable` then works on a laptop as it does in production: each domain goes
through the same statuses and gets an SNI endpoint with `acm` true, signed by the CA that
`spruce heroku-env` already hands to clients. There is nothing to validate: the internal
CA trusts the platform, and a laptop's custom domains rarely resolve to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from spruce.services.acm_model import OrderRecord
from spruce.services.ports import CertificateIssuer

DIRECTORY = "internal"


class InternalAuthority:
    """services' CertificateAuthority over a CertificateIssuer (the internal CA)."""

    def __init__(self, issuer: CertificateIssuer) -> None:
        self.issuer = issuer

    @property
    def directory(self) -> str:
        return DIRECTORY

    def account(self) -> dict[str, Any] | None:
        return None  # no account with the internal CA

    def restore_account(self, data: dict[str, Any]) -> None:
        pass

    def problem(self, hostname: str, dns_target: str, order_hostnames: Sequence[str]) -> str | None:
        return None

    def begin(self, hostnames: Sequence[str]) -> OrderRecord:
        names = tuple(dict.fromkeys(h.strip().lower().rstrip(".") for h in hostnames))
        if not names:
            raise ValueError("an order needs at least one hostname")
        return OrderRecord(hostnames=names, key_pem="", started_at=dt.datetime.now(dt.UTC))

    def advance(self, record: OrderRecord) -> OrderRecord:
        if record.done:
            return record
        issued = self.issuer.issue(list(record.hostnames))
        return replace(
            record, stage="valid", key_pem=issued.key_pem, certificate_pem=issued.cert_pem
        )

    def abandon(self, record: OrderRecord) -> OrderRecord:
        if record.done:
            return record
        return replace(record, stage="invalid", problem="Order abandoned.")
