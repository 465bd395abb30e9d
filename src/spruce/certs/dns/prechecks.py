"""What Spruce checks in DNS before it orders a certificate for a custom domain.

Each check returns None or a sentence for the domain's `acm_status_reason` that tells the
user what to change. In order: the domain points at its DNS target; a wildcard (DNS-01) has
its `_acme-challenge` CNAME into Spruce's zone; CAA lets the CA issue.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..acme.challenges import delegation_cname, needs_dns01, normalize, unanswerable
from .caa import caa_problem
from .lookup import Resolver


def target_problem(resolver: Resolver, hostname: str, dns_target: str) -> str | None:
    """Does `hostname` lead to `dns_target`, by CNAME or (apex ALIAS/ANAME) by address?"""
    target = normalize(dns_target)
    add = f"Add a CNAME record {hostname} pointing to {target} (ALIAS or ANAME at a zone apex)."
    addresses: dict[str, tuple[str, ...]] = {}
    for rdtype in ("A", "AAAA"):
        found = resolver.lookup(hostname, rdtype)
        if found.outcome == "error":
            return f"The DNS look-up for {hostname} failed ({found.error}). Spruce will retry."
        if target in found.cnames:
            return None
        if found.outcome == "nxdomain":
            return f"{hostname} has no DNS records. {add}"
        if found.cnames:
            return (
                f"{hostname} has a CNAME record pointing to {found.cnames[0]}, not to its DNS "
                f"target {target}. Change the CNAME to point to {target}."
            )
        addresses[rdtype] = found.records
    if not any(addresses.values()):
        return f"{hostname} has no A, AAAA or CNAME record. {add}"
    wanted: set[str] = set()
    for rdtype in ("A", "AAAA"):
        found = resolver.lookup(target, rdtype)
        if found.outcome == "error":
            return f"The DNS look-up for the DNS target {target} failed ({found.error}). Spruce will retry."
        wanted.update(found.records)
    stray = sorted(a for recs in addresses.values() for a in recs if a not in wanted)
    if stray:
        return (
            f"{hostname} resolves to {', '.join(stray)}, which is not its DNS target {target}. "
            f"Every A and AAAA record of {hostname} must lead there: {add}"
        )
    return None


def delegation_problem(resolver: Resolver, hostname: str, zone: str) -> str | None:
    """For DNS-01: is `_acme-challenge.<base>` a CNAME to the name Spruce writes?"""
    needed = delegation_cname(hostname, zone)
    if needed is None:
        return None
    owner, target = needed
    found = resolver.lookup(owner, "CNAME")
    if found.outcome == "error":
        return f"The DNS look-up for {owner} failed ({found.error}). Spruce will retry."
    add = (
        f"Add a CNAME record {owner} pointing to {target} so Spruce can answer the DNS-01 "
        f"challenge for {hostname}."
    )
    if found.outcome != "ok" or not found.records:
        return f"{owner} has no CNAME record. {add}"
    if normalize(found.records[0]) != target:
        return f"{owner} is a CNAME to {found.records[0]}, not to {target}. {add}"
    return None


class Prechecks:
    """All of the above for one issuer's setup; `problem()` is what the scheduler calls."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        ca_identities: Sequence[str],
        dns_zone: str | None,
        http01: bool = True,
    ) -> None:
        self.resolver = resolver
        self.ca_identities = tuple(ca_identities)
        self.dns_zone = dns_zone
        self.http01 = http01

    def problem(
        self, hostname: str, dns_target: str, order_hostnames: Collection[str] = ()
    ) -> str | None:
        host = normalize(hostname)
        problem = unanswerable(host, http01=self.http01, dns01=self.dns_zone is not None)
        if problem:
            return problem
        problem = target_problem(self.resolver, host, dns_target)
        if problem:
            return problem
        dns01 = needs_dns01(host, order_hostnames) or not self.http01
        if dns01 and self.dns_zone is not None:
            problem = delegation_problem(self.resolver, host, self.dns_zone)
            if problem:
                return problem
        return caa_problem(self.resolver, host, self.ca_identities)
