"""ACM's CertificateAuthority over an ACME directory: the issuer plus Spruce's pre-checks.

Before a domain is ordered Spruce checks what the CA would refuse (its DNS target, the
DNS-01 delegation of a wildcard, CAA for the CA's identities), so the user reads why in
`acm_status_reason` rather than after a failed validation. The CAA identities are the
operator's (`--acme-caa-identity`), else those the directory lists (Let's Encrypt:
letsencrypt.org; pebble lists none).

HTTP-01 answers reach the router through services, not through this object: the ACM
service stores each order record (whose `http01` tokens are written before the step that
asks the CA to validate them) and the router's table carries them. So the issuer's
Http01Responder here only says HTTP-01 can be answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from spruce.services.acm_model import OrderRecord
from spruce.services.ports import Dns01Provider

from ..dns import Prechecks, Resolver
from . import challenges
from .account import AcmeAccount
from .issuer import AcmeIssuer


class _AnsweredByTheRouter:
    """The issuer's Http01Responder: the router serves the tokens kept in the order records."""

    def publish(self, token: str, key_authorization: str) -> None:
        pass

    def withdraw(self, token: str) -> None:
        pass


class AcmeAuthority:
    def __init__(
        self,
        directory_url: str,
        *,
        email: str | None = None,
        ca_bundle: str | None = None,
        dns01: Dns01Provider | None = None,
        resolver: Resolver | None = None,
        caa_identities: Sequence[str] = (),
        http01: bool = True,
        poll_interval: dt.timedelta = dt.timedelta(seconds=1),
    ) -> None:
        self.directory_url = directory_url
        self.email = email
        self.ca_bundle = ca_bundle
        self.dns01 = dns01
        self.resolver = resolver or Resolver()
        self.http01 = http01
        self.poll_interval = poll_interval
        self._caa = tuple(caa_identities) or None
        self.issuer = self._issuer(AcmeAccount.generate())

    def _issuer(self, account: AcmeAccount) -> AcmeIssuer:
        return AcmeIssuer(
            self.directory_url,
            account,
            email=self.email,
            ca_bundle=self.ca_bundle,
            http01=_AnsweredByTheRouter() if self.http01 else None,
            dns01=self.dns01,
            poll_interval=self.poll_interval,
        )

    # -- the port -------------------------------------------------------------------------------
    @property
    def directory(self) -> str:
        return self.directory_url

    def account(self) -> dict[str, Any] | None:
        # Kept from the start, registered or not: a key registered just before a crash is
        # the same account after it (the CA answers "exists" and Spruce reuses it).
        return self.issuer.account.to_json()

    def restore_account(self, data: dict[str, Any]) -> None:
        self.issuer = self._issuer(AcmeAccount.from_json(data))

    def problem(self, hostname: str, dns_target: str, order_hostnames: Sequence[str]) -> str | None:
        dns01 = self.dns01 is not None
        unanswerable = challenges.unanswerable(hostname, http01=self.http01, dns01=dns01)
        if unanswerable:
            return unanswerable  # (before asking the CA anything)
        if self._caa is None:
            try:
                self._caa = self.issuer.caa_identities()
            except Exception as e:  # noqa: BLE001 - any failure reads as "try again"
                return (
                    f"Spruce could not read the ACME directory {self.directory_url} "
                    f"({type(e).__name__}); it will retry."
                )
        checks = Prechecks(
            self.resolver,
            ca_identities=self._caa,
            dns_zone=self.dns01.zone if self.dns01 is not None else None,
            http01=self.http01,
        )
        return checks.problem(hostname, dns_target, order_hostnames)

    def begin(self, hostnames: Sequence[str]) -> OrderRecord:
        return self.issuer.begin(hostnames)

    def advance(self, record: OrderRecord) -> OrderRecord:
        return self.issuer.advance(record)

    def abandon(self, record: OrderRecord) -> OrderRecord:
        return self.issuer.abandon(record)
