"""Renewal of a short-lived certificate, and re-orders when the app's domain set changes."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from spruce.services import acm_lifecycle as acm

from .servers import leaf_names, verify_chain

VALIDITY = 600  # seconds: pebble's certificateValidityPeriod for this test


def serial(chain: str) -> int:
    return x509.load_pem_x509_certificates(chain.encode())[0].serial_number


def test_a_short_lived_certificate_is_renewed_and_reordered_on_domain_changes(
    start_pebble, make_issuer, http01, bind9, domain, dns_target
):
    ca = start_pebble(validity=VALIDITY)
    issuer = make_issuer(server=ca)
    www, api = f"www.{domain}", f"api.{domain}"
    for host in (www, api):
        bind9.set(host, "CNAME", dns_target + ".")

    first = issuer.complete(issuer.begin([www]), timeout=60)
    assert first.stage == "valid", first.problem
    now = dt.datetime.now(dt.UTC)
    assert first.expires_at is not None
    assert dt.timedelta(0) < first.expires_at - now <= dt.timedelta(seconds=VALIDITY)
    current = acm.Certificate(frozenset([www]), first.expires_at)
    domains = {www: acm.DomainAcm("cert issued")}

    # 30 days ahead by default: a 10-minute certificate is due at once.
    assert acm.order_reason(domains, current, now, acm.Policy()) == "renew"
    # With renew_before = 2 minutes it is due 2 minutes before it expires, not earlier.
    policy = acm.Policy(renew_before=dt.timedelta(minutes=2))
    due = first.expires_at - dt.timedelta(minutes=2)
    assert acm.next_wakeup(domains, current, policy) == due
    assert acm.order_reason(domains, current, due - dt.timedelta(seconds=1), policy) is None
    assert acm.order_reason(domains, current, due, policy) == "renew"

    requests_before = len(http01.paths_for(www))
    renewed = issuer.complete(issuer.begin(sorted(current.hostnames)), timeout=60)
    assert renewed.stage == "valid", renewed.problem
    assert serial(renewed.certificate_pem) != serial(first.certificate_pem)
    assert renewed.expires_at is not None and renewed.expires_at >= first.expires_at
    assert len(http01.paths_for(www)) > requests_before  # validated afresh (no authz reuse)
    verify_chain(renewed.certificate_pem, ca.roots_pem(), [www])
    current = acm.Certificate(frozenset([www]), renewed.expires_at)
    domains = acm.apply_all(domains, acm.order_events(renewed), now, policy)
    assert domains[www].status == "cert issued"

    # A domain added to the app: once verified, the certificate no longer matches the set.
    domains[api] = acm.apply(acm.DomainAcm(), acm.Picked(), now, policy)
    assert acm.order_reason(domains, current, now, policy) is None  # api still pending
    domains[api] = acm.apply(domains[api], acm.DnsVerified(), now, policy)
    assert acm.order_reason(domains, current, now, policy) == "domains-changed"
    both = issuer.complete(issuer.begin(sorted(acm.orderable(domains))), timeout=60)
    assert both.stage == "valid", both.problem
    assert leaf_names(both.certificate_pem) == {www, api}
    domains = acm.apply_all(domains, acm.order_events(both), now, policy)
    assert {d.status for d in domains.values()} == {"cert issued"}
    assert both.expires_at is not None
    current = acm.Certificate(frozenset([www, api]), both.expires_at)
    assert acm.order_reason(domains, current, now, policy) is None

    # ... and removed again: re-ordered without it.
    del domains[api]
    assert acm.order_reason(domains, current, now, policy) == "domains-changed"
    assert acm.orderable(domains) == {www}
