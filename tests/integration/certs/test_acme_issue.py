"""Issuing from pebble: a custom domain over HTTP-01, a wildcard + apex over DNS-01 (RFC 2136
into BIND), a CA refusing a domain whose DNS points elsewhere, and badNonce retries."""

from __future__ import annotations

import datetime as dt

from spruce.certs.acme import AcmeAccount, OrderRecord
from spruce.certs.acme.challenges import Publication
from spruce.services import acm_lifecycle as acm

from .conftest import TARGET_IP
from .servers import ACME_ZONE, leaf_names, verify_chain

NOW = dt.datetime.now(dt.UTC)
POLICY = acm.Policy()


def test_custom_domain_is_issued_over_http01(
    make_issuer, pebble, http01, bind9, domain, dns_target, prechecks
):
    host = f"www.{domain}"
    bind9.set(host, "CNAME", dns_target + ".")
    saved: list[AcmeAccount] = []
    issuer = make_issuer(save_account=saved.append)

    # The domain's ACM status goes through the lifecycle as the scheduler will drive it.
    state = acm.apply(acm.DomainAcm(), acm.Picked(), NOW, POLICY)
    assert state.status == "pending"
    assert prechecks.problem(host, dns_target) is None
    state = acm.apply(state, acm.DnsVerified(), NOW, POLICY)
    assert state.status == "dns-verified"

    steps: list[OrderRecord] = []
    record = issuer.complete(issuer.begin([host]), persist=steps.append, timeout=60)
    assert record.stage == "valid", record.problem
    assert leaf_names(record.certificate_pem) == {host}
    verify_chain(record.certificate_pem, pebble.roots_pem(), [host])
    # pebble fetched the token from our responder under the domain's name, which it
    # resolved through BIND (CNAME -> DNS target -> 127.0.0.1).
    published = {p for s in steps for p in s.publications}
    assert [p.kind for p in published] == ["http-01"]
    token = next(iter(published)).name
    assert f"/.well-known/acme-challenge/{token}" in http01.paths_for(host)
    assert http01.tokens.key_authorization(token) is None  # withdrawn once valid
    assert record.publications == ()
    # The account was registered once and handed to the platform to keep.
    assert len(saved) == 1 and saved[0].uri and saved[0].directory_url == pebble.directory_url

    events = acm.order_events(record)
    assert events == {host: acm.Issued()}
    state = acm.apply(state, events[host], NOW, POLICY)
    assert (state.status, state.reason) == ("cert issued", None)


def test_wildcard_and_apex_are_issued_over_dns01_through_rfc2136(
    make_issuer, pebble, http01, bind9, domain, dns_target, prechecks, rfc2136
):
    wildcard = f"*.{domain}"
    bind9.set(wildcard, "CNAME", dns_target + ".")
    bind9.set(domain, "A", TARGET_IP)  # an apex: ALIAS-style, the target's address
    # The user delegates DNS-01 to Spruce's zone; the check says exactly what to add. (The
    # wildcard CNAME itself answers for _acme-challenge.<domain> until that name has its own.)
    problem = prechecks.problem(wildcard, dns_target, [wildcard, domain])
    assert problem == (
        f"_acme-challenge.{domain} is a CNAME to {dns_target}, not to {domain}.{ACME_ZONE}. "
        f"Add a CNAME record "
        f"_acme-challenge.{domain} pointing to {domain}.{ACME_ZONE} so Spruce can answer the "
        f"DNS-01 challenge for {wildcard}."
    )
    bind9.set(f"_acme-challenge.{domain}", "CNAME", f"{domain}.{ACME_ZONE}.")
    assert prechecks.problem(wildcard, dns_target, [wildcard, domain]) is None
    assert prechecks.problem(domain, dns_target, [wildcard, domain]) is None

    issuer = make_issuer(dns01=rfc2136)  # HTTP-01 is available too, yet DNS-01 is chosen
    requests_before = len(http01.requests)
    published: set[Publication] = set()
    txt_seen: list[list[str]] = []

    def persist(r: OrderRecord) -> None:
        published.update(r.publications)
        if r.publications:
            txt_seen.append(bind9.query(f"_acme-challenge.{domain}", "TXT"))

    record = issuer.complete(issuer.begin([wildcard, domain]), persist=persist, timeout=60)
    assert record.stage == "valid", record.problem
    assert leaf_names(record.certificate_pem) == {wildcard, domain}
    verify_chain(record.certificate_pem, pebble.roots_pem(), [wildcard, domain])
    # Two authorizations for the same identifier, both proven by a TXT in Spruce's zone
    # that the user's CNAME leads to.
    assert {p.kind for p in published} == {"dns-01"}
    assert {p.name for p in published} == {f"{domain}.{ACME_ZONE}"}
    assert len(published) == 2
    assert any(len(seen) == 2 for seen in txt_seen)
    assert len(http01.requests) == requests_before  # no HTTP-01 validation happened
    # Both TXT values were removed from the zone afterwards.
    assert bind9.query(f"{domain}.{ACME_ZONE}", "TXT") == []


def test_a_domain_pointing_elsewhere_fails_with_reasons(
    make_issuer, bind9, domain, dns_target, prechecks
):
    host = f"www.{domain}"
    elsewhere = f"legacy.{domain}"
    bind9.set(host, "CNAME", elsewhere + ".")
    bind9.set(elsewhere, "A", "127.0.0.2")  # nothing answers HTTP-01 there
    try:
        problem = prechecks.problem(host, dns_target)
        assert problem == (
            f"{host} has a CNAME record pointing to {elsewhere}, not to its DNS target "
            f"{dns_target}. Change the CNAME to point to {dns_target}."
        )
        state = acm.apply(acm.DomainAcm("pending"), acm.DnsFailed(problem), NOW, POLICY)
        assert (state.status, state.reason, state.attempts) == ("failing", problem, 1)
        assert state.next_check_at == NOW + POLICY.first_retry

        # Ordered anyway, the CA's own validation fails too, and says why per domain.
        issuer = make_issuer()
        record = issuer.complete(issuer.begin([host]), timeout=60)
    finally:
        bind9.delete(elsewhere)
    assert record.stage == "invalid"
    [(failed_host, reason)] = record.failed
    assert failed_host == host
    assert reason.startswith(f"The certificate authority could not validate {host} over HTTP-01:")
    assert "127.0.0.2" in reason
    events = acm.order_events(record)
    assert events == {host: acm.OrderFailed(reason)}


def test_bad_nonces_are_retried(start_pebble, make_issuer, bind9, domain, dns_target):
    host = f"www.{domain}"
    bind9.set(host, "CNAME", dns_target + ".")
    rejecting = start_pebble(nonce_reject=70)
    issuer = make_issuer(server=rejecting)
    issuer.net.nonce_retries = 40  # 0.7**41 per request: no flake; acme itself retries once
    record = issuer.complete(issuer.begin([host]), timeout=60)
    assert record.stage == "valid", record.problem
    # 70% of good nonces were rejected; with a dozen POSTs some surely were, and each was
    # retried with a fresh nonce.
    assert issuer.net.bad_nonces > 0


def test_an_abandoned_order_withdraws_what_it_published(
    make_issuer, bind9, domain, dns_target, rfc2136
):
    bind9.set(domain, "A", TARGET_IP)
    bind9.set(f"_acme-challenge.{domain}", "CNAME", f"{domain}.{ACME_ZONE}.")
    issuer = make_issuer(dns01=rfc2136, http=False)
    record = issuer.begin([f"*.{domain}"])
    for _ in range(3):  # order, write-ahead, publish + answer
        record = issuer.advance(record)
    assert not record.done and len(record.publications) == 1
    assert len(bind9.query(f"{domain}.{ACME_ZONE}", "TXT")) == 1
    # The app's domain set changed mid-order: the platform abandons it and orders anew.
    record = issuer.abandon(record)
    assert (record.stage, record.publications) == ("invalid", ())
    assert bind9.query(f"{domain}.{ACME_ZONE}", "TXT") == []
