"""Building ACM's parts from `spruce up`'s options: the CertificateAuthority and the policy.

With `--acme-directory` the authority is an ACME CA (HTTP-01 through the router, DNS-01
through `--acme-dns` when given); without it, the internal CA. Bad options raise
`AcmeSetupError` with a sentence for the operator, before anything starts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from spruce.config import AcmeOptions
from spruce.services.acm_lifecycle import Policy
from spruce.services.ports import CertificateAuthority, CertificateIssuer

from .acme.authority import AcmeAuthority
from .dns import Resolver, Rfc2136Provider
from .dns.lookup import parse_nameserver
from .internal_authority import InternalAuthority

TUNABLE = ("renew_before", "max_attempts", "first_retry", "max_retry", "poll_interval")


class AcmeSetupError(ValueError):
    """An `--acme-*` option Spruce cannot use (the message says which and why)."""


def check(options: AcmeOptions) -> None:
    """Raise AcmeSetupError for options that cannot work."""
    if options.directory is None:
        for name, value in (("--acme-dns", options.dns), ("--acme-ca-bundle", options.ca_bundle)):
            if value:
                raise AcmeSetupError(f"{name} needs --acme-directory (an ACME CA to order from)")
        return
    if not options.directory.startswith(("https://", "http://")):
        raise AcmeSetupError(f"--acme-directory must be an https:// URL, not {options.directory!r}")
    if options.ca_bundle and not Path(options.ca_bundle).is_file():
        raise AcmeSetupError(f"--acme-ca-bundle {options.ca_bundle}: no such file")
    if options.dns:
        try:
            Rfc2136Provider.from_url(options.dns)
        except ValueError as e:
            raise AcmeSetupError(f"--acme-dns: {e}") from None
    for resolver in options.resolvers:
        try:
            parse_nameserver(resolver)
        except ValueError as e:
            raise AcmeSetupError(f"--acme-resolver: {e}") from None
    if options.renew_before <= 0:
        raise AcmeSetupError("--acme-renew-before must be positive")


def policy(options: AcmeOptions, tuning: dict[str, Any]) -> Policy:
    """Renewal and retries: `--acme-renew-before`, then SPRUCE_TUNING's "acm" section."""
    unknown = set(tuning) - set(TUNABLE)
    if unknown:
        raise AcmeSetupError(f"unknown ACM tuning: {', '.join(sorted(unknown))}")
    seconds = {k: dt.timedelta(seconds=float(tuning[k])) for k in TUNABLE if k in tuning}
    return Policy(
        renew_before=seconds.get("renew_before", dt.timedelta(seconds=options.renew_before)),
        max_attempts=int(tuning.get("max_attempts", Policy.max_attempts)),
        first_retry=seconds.get("first_retry", Policy.first_retry),
        max_retry=seconds.get("max_retry", Policy.max_retry),
    )


def authority(
    options: AcmeOptions, internal: CertificateIssuer, tuning: dict[str, Any]
) -> CertificateAuthority:
    check(options)
    if options.directory is None:
        return InternalAuthority(internal)
    return AcmeAuthority(
        options.directory,
        email=options.email,
        ca_bundle=options.ca_bundle,
        dns01=Rfc2136Provider.from_url(options.dns) if options.dns else None,
        resolver=Resolver(list(options.resolvers) or None),
        caa_identities=options.caa_identities,
        poll_interval=dt.timedelta(seconds=float(tuning.get("poll_interval", 1.0))),
    )
