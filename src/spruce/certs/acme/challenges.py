"""Which challenge answers an authorization, and what publishing it means (pure).

HTTP-01 needs only the router, so it answers plain names. A wildcard needs DNS-01; the plain
name beside it in the same order shares the TXT name `_acme-challenge.<base>`, so it takes
DNS-01 too (one delegation covers both).

DNS-01 records go in the provider's zone: at `_acme-challenge.<domain>` when the domain lies
in that zone, else at `<domain>.<zone>`, which the user's `_acme-challenge.<domain>` CNAME
must point to (the CA follows CNAMEs for DNS-01).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from acme import challenges, messages
from josepy.jwk import JWK

from spruce.services.acm_model import ChallengeKind as ChallengeKind
from spruce.services.acm_model import Publication as Publication

ACME_CHALLENGE = "_acme-challenge"


def normalize(name: str) -> str:
    return name.strip().lower().rstrip(".")


def in_zone(name: str, zone: str) -> bool:
    name, zone = normalize(name), normalize(zone)
    return name == zone or name.endswith("." + zone)


def dns01_record_name(domain: str, zone: str) -> str:
    """Where Spruce writes the DNS-01 TXT value for `domain` (a wildcard's base name)."""
    base = normalize(domain).removeprefix("*.")
    if in_zone(base, zone):
        return f"{ACME_CHALLENGE}.{base}"
    return f"{base}.{normalize(zone)}"


def delegation_cname(domain: str, zone: str) -> tuple[str, str] | None:
    """The (owner, target) CNAME the user must add for DNS-01, or None when none is needed."""
    base = normalize(domain).removeprefix("*.")
    if in_zone(base, zone):
        return None
    return f"{ACME_CHALLENGE}.{base}", dns01_record_name(base, zone)


def needs_dns01(hostname: str, order_hostnames: Collection[str]) -> bool:
    """Wildcards, and plain names ordered together with their own wildcard."""
    host = normalize(hostname)
    if host.startswith("*."):
        return True
    return f"*.{host}" in {normalize(h) for h in order_hostnames}


def unanswerable(hostname: str, *, http01: bool, dns01: bool) -> str | None:
    """Why no challenge Spruce can answer proves `hostname` (a sentence), or None."""
    if normalize(hostname).startswith("*.") and not dns01:
        return (
            f"{hostname} is a wildcard domain, which needs a DNS-01 challenge, and no DNS "
            "provider is configured: start Spruce with --acme-dns rfc2136://..."
        )
    if not http01 and not dns01:
        return "No ACME challenge responder is configured."
    return None


def choose(
    authz: messages.Authorization,
    order_hostnames: Collection[str],
    *,
    http01: bool,
    dns01: bool,
) -> messages.ChallengeBody | None:
    """The challenge Spruce answers for `authz`, or None when it can answer none of them."""
    ident = str(authz.identifier.value)
    wildcard = bool(authz.wildcard)
    offered: Sequence[messages.ChallengeBody] = authz.challenges
    by_kind = {c.chall.typ: c for c in offered}
    wants_dns = wildcard or needs_dns01(ident, order_hostnames)
    order: list[str] = []
    if wants_dns:
        order = ["dns-01"] if dns01 else []
        # A plain name beside its wildcard can still use HTTP-01 if DNS-01 is impossible.
        if not wildcard and http01:
            order.append("http-01")
    else:
        order = [k for k, ok in (("http-01", http01), ("dns-01", dns01)) if ok]
    for kind in order:
        if kind in by_kind:
            return by_kind[kind]
    return None


def publication(
    challb: messages.ChallengeBody,
    identifier: str,
    account_key: JWK,
    dns_zone: str | None,
) -> Publication:
    chall = challb.chall
    if isinstance(chall, challenges.HTTP01):
        return Publication("http-01", chall.encode("token"), chall.key_authorization(account_key))
    if isinstance(chall, challenges.DNS01):
        if dns_zone is None:
            raise ValueError("dns-01 needs a DNS provider")
        return Publication(
            "dns-01", dns01_record_name(identifier, dns_zone), chall.validation(account_key)
        )
    raise ValueError(f"Spruce does not answer {chall.typ} challenges")
